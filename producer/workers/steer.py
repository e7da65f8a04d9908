"""``run --workers N --control``: the parent steers its workers. A new rate is split among them
exactly as at start (Shard.rate_share: the shares add up to the new rate); pause, resume and
stop are forwarded to each worker's own control (every worker runs with --control on
127.0.0.1). The parent keeps a Steering of the whole shape for its status (target now, next,
ahead) and reads the streams' figures from the workers' summed scrapes."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Sequence
from typing import Any

import aiohttp

from producer.control.run import schedule_status, stream_figures
from producer.control.state import ControlError
from producer.schedule import Steering
from producer.sharding import Shard
from producer.telemetry.aggregate import Scrape, value
from producer.telemetry.histogram import StreamHistograms
from producer.telemetry.stats import StreamStats
from producer.workers.merge import apply_scrape
from producer.workers.plan import Worker

FORWARD_TIMEOUT_S = 5.0


def split_rate(rate: float, workers: int) -> list[float]:
    """The new total ``rate`` split over ``workers`` as ``run --workers`` splits at start.

    Example: ``split_rate(801, 2) == [400.0, 401.0]``.
    """
    return [Shard(k, workers).rate_share(rate) for k in range(workers)]


class SteeredWorkers:
    """The Steerable of a ``--workers`` parent (producer/control/state.py)."""

    def __init__(
        self,
        steering: Steering,
        duration_s: float,
        workers: Callable[[], Sequence[Worker]],
        total: Callable[[], Scrape],
        streams: Sequence[str],
        identity: dict[str, Any],
    ) -> None:
        self.steering = steering
        self.duration_s = duration_s
        self.workers = workers
        self.total = total
        self.identity = identity
        self.started = time.monotonic()
        self.stats = [StreamStats(name) for name in streams]
        self.histograms = {name: StreamHistograms() for name in streams}
        self.shares: list[float] = []
        self.stopped = False

    @property
    def rate(self) -> float:
        return self.steering.peak

    @property
    def paused(self) -> bool:
        return self.steering.paused

    def elapsed_s(self) -> float:
        return min(time.monotonic() - self.started, self.duration_s)

    def schedule(self) -> dict[str, Any]:
        """Where the whole run's schedule is, for the parent's live view (the workers generate
        until the end of the duration or a stop)."""
        elapsed = self.elapsed_s()
        generating = elapsed < self.duration_s and not self.stopped
        return schedule_status(self.steering, elapsed, self.duration_s) | {"generating": generating}

    async def _forward(self, method: str, path: str, bodies: Sequence[dict[str, Any] | None]) -> None:
        running = [w for w in self.workers() if w.proc is not None and w.returncode is None]
        async with aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=FORWARD_TIMEOUT_S), headers={"X-Loadgen-Client": "parent"}
        ) as session:

            async def one(w: Worker, body: dict[str, Any] | None) -> str | None:
                base = w.url.removesuffix("/metrics")
                try:
                    async with session.request(method, base + path, json=body) as response:
                        if response.status < 300:
                            return None
                        return f"worker {w.index}: HTTP {response.status}: {await response.text()}"
                except (aiohttp.ClientError, TimeoutError) as exc:
                    if w.proc is not None and w.proc.returncode is not None:
                        return None  # it ended meanwhile: nothing left to steer
                    return f"worker {w.index}: {type(exc).__name__}"

            problems = await asyncio.gather(*(one(w, bodies[w.index]) for w in running))
        failed = [p for p in problems if p]
        if failed:
            raise ControlError("; ".join(failed))

    async def set_rate(self, rate: float) -> None:
        workers = self.workers()
        shares = split_rate(rate, len(workers))
        await self._forward("PATCH", "/v1/status", [{"rate": share} for share in shares])
        self.steering.set_peak(rate, self.elapsed_s())
        self.shares = shares

    async def set_paused(self, paused: bool) -> None:
        await self._forward("PATCH", "/v1/status", [{"paused": paused}] * len(self.workers()))
        self.steering.set_paused(paused, self.elapsed_s())

    async def stop(self, reason: str) -> None:
        self.stopped = True
        with contextlib.suppress(ControlError):  # a worker that cannot hear it is stopped by the deadline
            await self._forward("POST", "/v1/stop", [None] * len(self.workers()))

    def status(self) -> dict[str, Any]:
        total = self.total()
        apply_scrape(total, self.stats, self.histograms)
        for s in self.stats:
            achieved = value(total, "loadgen_stream_achieved_rate_records_per_second", stream=s.name)
            s.rate_probe = lambda achieved=achieved: (None, achieved)
        schedule = schedule_status(self.steering, self.elapsed_s(), self.duration_s)
        shares = self.shares or split_rate(self.steering.peak, len(self.workers()))
        return (
            self.identity
            | schedule
            | {
                "streams": stream_figures(self.stats, self.histograms, schedule["target_now"]),
                "workers": [
                    {"index": w.index, "rate": share, "running": w.returncode is None}
                    for w, share in zip(self.workers(), shares, strict=True)
                ],
            }
        )

"""Composition root of a run: builds the parts, owns start-up and shutdown order."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import random
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO, TypeVar

from producer import pipeline
from producer.checks.figures import Figures
from producer.checks.watch import Watch
from producer.config import Ending, RunConfig, TargetKind
from producer.console import LiveView, print_summary
from producer.control import document
from producer.control.keys import HINT, terminal_keys
from producer.control.run import SteeredRun, schedule_status
from producer.control.server import add_routes
from producer.control.state import RunControl
from producer.delivery.channel import Inlet, StreamChannel
from producer.delivery.packing import PackingStage, unpackable
from producer.delivery.retry import RetryAction, call_failed
from producer.delivery.spool import Spool, check_spool_path
from producer.errors import StreamUnusable, UsageError
from producer.events.registry import build_generator
from producer.firehose.client import ClientSettings, FirehoseClient, open_batch_client, open_client
from producer.firehose.errors import ApiError, TransportError
from producer.generation import Progress, generate
from producer.local.prune import OutputPruner
from producer.local.server import LocalFirehose, LocalOptions
from producer.results.store import AbortMarker, ResultsStore, open_store, publish_shard
from producer.results.url import shard_name
from producer.runtime import Signals, first_done
from producer.schedule import Pacer, SimulatedClock, Steering
from producer.streams.resolution import buffer_hints
from producer.summary import RunSummary, StreamSummary, run_summary_paths
from producer.telemetry import cost
from producer.telemetry.histogram import StreamHistograms
from producer.telemetry.metrics import MetricsServer, RunTelemetry, build_registry, start_metrics
from producer.telemetry.stats import Reason, ScheduleCheck, StreamStats

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class RunResult:
    summary: RunSummary
    exit_code: int


def new_run_id() -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + uuid.uuid4().hex[:6]


async def prepare_streams(
    client: FirehoseClient, streams: Sequence[str], create: bool, where: str, pack: Mapping[str, int]
) -> dict[str, cost.Features]:
    """Create the streams (local target) or check they exist and can be described, and that
    the ones to pack deliver where packed records are split again. Returns each stream's
    separately priced features, read from its description."""
    features: dict[str, cost.Features] = {}
    for name in streams:
        try:
            if create:
                with contextlib.suppress(ApiError):  # already there: ResourceInUseException
                    await client.create(**pipeline.stream_request(name))
            description = await client.describe(name)
            features[name] = cost.features_of(description)
            refused = unpackable(name, description) if name in pack else None
            if refused is not None:
                raise UsageError(refused)
        except TransportError as exc:
            raise UsageError(
                f"cannot reach the Firehose endpoint at {where} ({exc.code}); check --endpoint-url, "
                "or start one with `firehose-loadgen local serve`"
            ) from None
        except ApiError as exc:
            if exc.code == "ResourceNotFoundException":
                raise UsageError(
                    f"delivery stream {name!r} does not exist at {where}; create it "
                    "(see the README's Deploy section) or name existing ones with --stream"
                ) from None
            if call_failed(exc.code, exc.http_status, 0) is not RetryAction.RETRY:
                raise StreamUnusable(
                    f"delivery stream {name!r} cannot be used: {exc.code}: {exc.message}"
                ) from None
            raise UsageError(f"describing {name!r} at {where} failed: {exc.code}: {exc.message}") from None
    return features


async def run_load(config: RunConfig, out: TextIO = sys.stdout) -> RunResult:
    run_id = config.run_id or new_run_id()
    return await with_signals(lambda signals: _run(config, run_id, signals, out))


async def with_signals(body: Callable[[Signals], Awaitable[T]]) -> T:
    """SIGINT/SIGTERM handled for the time of ``body`` (a run or a replay): the first stops
    feeding and starts the grace, a second aborts (runtime.py)."""
    signals = Signals()
    signals.install()
    try:
        return await body(signals)
    finally:
        signals.remove()


def open_spool(path: Path) -> Spool:
    """The dead-letter spool, checked before the first record: exit 2 and one line when it
    cannot be written."""
    problem = check_spool_path(path)
    if problem is not None:
        raise UsageError(
            f"cannot write the dead-letter spool {path}: {problem}; pass a writable file with --dead-letter"
        )
    return Spool(path)


@dataclass(slots=True)
class Steered:
    """The run's schedule as generation and the control share it."""

    steering: Steering
    pacer: Pacer
    progress: Progress
    control: RunControl
    event_clock: Callable[[], float]  # the time events are stamped with
    generating: bool = True
    generation_s: float = 0.0  # wall seconds generation took

    def schedule(self) -> dict[str, Any]:
        """Where the schedule is, for the live view."""
        status = schedule_status(self.steering, self.pacer.elapsed_s(), self.pacer.duration_s)
        return status | {"generating": self.generating}


async def _run(config: RunConfig, run_id: str, signals: Signals, out: TextIO) -> RunResult:
    stats = [StreamStats(name, target_rate=config.rate) for name in config.streams]
    histograms = {s.name: StreamHistograms() for s in stats}
    telemetry = RunTelemetry(
        run_id=run_id,
        profile=config.profile.name,
        target=config.target.describe(),
        target_rate=config.rate,
        streams=stats,
        histograms=histograms,
    )
    steering = Steering(config.profile.rate_shape, config.rate / config.profile.rate)
    if config.sim_start is None:
        pacer = Pacer(steering, config.duration_s, edges=steering.edges)
        event_clock = time.time
    else:  # a backfill: simulated time, as fast as the streams take the events
        simulated = SimulatedClock()
        pacer = Pacer(
            steering, config.duration_s, SIM_TICK_S, simulated, simulated.wait, edges=steering.edges
        )
        sim_start = config.sim_start
        event_clock = lambda: sim_start + simulated.now  # noqa: E731
    progress = Progress(by_source=telemetry.events_by_source, target_rate=config.rate)
    identity = {"run_id": run_id, "profile": config.profile.name, "target": telemetry.target}
    run = SteeredRun(steering, pacer, signals, identity, stats, histograms, lambda: progress.events)
    # One control for the HTTP routes (--control) and the terminal keys alike.
    control = RunControl(run, lambda line: print(line, file=sys.stderr, flush=True))
    steered = Steered(steering, pacer, progress, control, event_clock)
    routes = None
    if config.control:
        routes = functools.partial(add_routes, control=control, token=config.control_token)
    metrics: MetricsServer | None = None
    if config.metrics_port is not None:
        metrics, note = await start_metrics(
            build_registry(telemetry),
            config.metrics_host,
            config.metrics_port,
            config.metrics_port_fallback,
            routes,
        )
        if not config.quiet or note:
            out.write(f"metrics: {metrics.url}{note}\n")
        if config.control and not config.quiet:
            out.write(f"control: {metrics.url.removesuffix('metrics')}\n")
    try:
        async with contextlib.AsyncExitStack() as stores:
            store = None
            if config.results_url is not None:
                store = await stores.enter_async_context(
                    open_store(config.results_url, run_id, config.target.region)
                )
                await store.check()
            result = await _load(config, run_id, signals, out, stats, histograms, telemetry, steered, store)
        if metrics is not None and config.metrics_linger_s > 0:
            # Let Prometheus take one more scrape of the final numbers before the process exits.
            await asyncio.sleep(config.metrics_linger_s)
        return result
    finally:
        if metrics is not None:
            await metrics.stop()


async def _load(
    config: RunConfig,
    run_id: str,
    signals: Signals,
    out: TextIO,
    stats: list[StreamStats],
    histograms: dict[str, StreamHistograms],
    telemetry: RunTelemetry,
    steered: Steered,
    store: ResultsStore | None = None,
) -> RunResult:
    target = config.target
    spool = open_spool(config.dead_letter or config.output_dir / "dead-letter" / f"{run_id}.jsonl")
    started = time.monotonic()
    progress = steered.progress
    telemetry.target_rate_now = lambda: progress.target_rate
    async with AsyncExitStack() as stack:
        endpoint = target.endpoint_url
        if target.kind is TargetKind.LOCAL:
            local = await stack.enter_async_context(
                LocalFirehose(
                    LocalOptions(
                        output_dir=config.output_dir,
                        region=target.region,
                        stream_config=config.local_stream_config,
                        transform_path=config.local_transform,
                    )
                )
            )
            endpoint = local.url
        settings = ClientSettings(
            region=target.region,
            endpoint_url=endpoint,
            allow_local_credentials=target.kind is not TargetKind.AWS,
        )
        client = await stack.enter_async_context(open_client(settings))
        features = await prepare_streams(
            client,
            config.streams,
            create=target.kind is TargetKind.LOCAL,
            where=endpoint or f"AWS {target.region}",
            pack=config.pack,
        )
        batch_client = await stack.enter_async_context(open_batch_client(client, config.sender, settings))
        generator = build_generator(config.profile.mix, config.seed, config.profile.generator_params)
        rng = random.Random(config.seed)
        channels: list[Inlet] = []
        for s in stats:
            stream_rng = random.Random(rng.getrandbits(64))
            channel = StreamChannel(
                s.name,
                batch_client,
                config.retry,
                spool,
                s,
                config.channel,
                stream_rng,
                histograms=histograms[s.name],
            )
            pack_bytes = config.pack.get(s.name)
            # --pack: events are packed into records in front of the stream's channel.
            channels.append(
                channel if pack_bytes is None else PackingStage(channel, pack_bytes, config.channel.linger_s)
            )
        for inlet in channels:
            inlet.start()
        live = LiveView.for_run(config, stats, histograms, out)
        live.schedule = steered.schedule
        keys: contextlib.AbstractContextManager[bool] = contextlib.nullcontext(False)
        if not config.quiet and live.tty and config.log_format == "text":
            keys = terminal_keys(steered.control)
        live_task = None if config.quiet else asyncio.create_task(live.run())
        if config.control_from:
            following = document.follow(
                config.control_from,
                steered.control,
                config.shard.rate_share,
                target.region,
                config.control_every_s,
            )
            stack.push_async_callback(_cancel, asyncio.create_task(following))
        pruner = None
        if config.keep_output_s is not None and target.kind is TargetKind.LOCAL:
            pruner = OutputPruner(config.output_dir, config.keep_output_s)
            stack.push_async_callback(_cancel, asyncio.create_task(pruner.run()))
        # The steered shape: a pause or a new rate changes what the schedule asked for, so it
        # is never counted as a shortfall.
        rate_at = steered.steering.rate_at
        schedule = ScheduleCheck(rate_at, config.duration_s, steered.steering.edges)
        # A failed abort check (here, or another shard's through --results-url) ends the run as a
        # stop asked for does (Signals.finished): generation ends and the run drains normally.
        shard = shard_name(config.shard.index, config.shard.count)
        board = AbortMarker(store) if store is not None else None
        shard_label = shard if store is not None else ""
        with keys as keys_on:
            live.keys_hint = HINT if keys_on else ""
            gen_started = time.monotonic()
            watch = Watch(
                config.checks,
                stats,
                histograms,
                rate_at,
                signals.finished,
                board,
                shard_label,
                started=gen_started,
            )
            watching = asyncio.create_task(watch.run()) if watch.needed else None
            await feed(
                generate(
                    config,
                    generator,
                    channels,
                    signals.stop,
                    progress,
                    run_id,
                    steered.pacer,
                    steered.event_clock,
                ),
                signals,
                spool,
            )
        steered.generating = False
        steered.generation_s = time.monotonic() - gen_started
        # Generation stops at the end of --duration, so every event made is on time: the mark
        # is taken when it ends. (A timer at the deadline raced the pacer's last tick when the
        # loop was busy, and reported a 1-event shortfall that was not one.) Ended early (a
        # signal, a stop asked for, an abort check), the mark is the pacer's last tick, unless a
        # full stream held the pacer back longer than the tolerance: that is a shortfall.
        elapsed, counted = steered.pacer.elapsed_s(), steered.pacer.counter.counted_to_s
        schedule.mark(progress.events, counted if elapsed - counted <= schedule.tolerance_s else elapsed)
        await close(channels, config.ending, signals)
        if watching is not None:
            if watch.halted_at_s is not None:
                # It stopped the run and may still be telling the other shards (one write to
                # the results store): a short drain must not cut that off.
                await asyncio.wait([watching], timeout=MARKER_WRITE_S)
            watching.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watching
        if live_task is not None:
            live_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await live_task
        spool.close()
    # The exit stack has stopped the local Firehose, which delivered everything it buffered.
    summary = _summary(config, run_id, progress.events, time.monotonic() - started, stats, spool, histograms)
    summary.schedule = schedule.summary(progress.events) | {"on_full": config.channel.on_full}
    if pruner is not None:
        summary.output_pruned = pruner.summary()
    if config.sim_start is not None:
        sim_s = min(steered.pacer.elapsed_s(), config.duration_s)
        summary.simulated = simulated_summary(config.sim_start, sim_s, steered.generation_s)
    if config.control or steered.control.changes:
        summary.control = steered.control.summary(steered.steering.paused_s(schedule.marked_at_s))
    summary.cost = cost.run_cost(
        target.region,
        {s.name: s.billed_bytes for s in stats},
        schedule.marked_at_s,
        features,
        sum(s.bytes_sent for s in stats),
    )
    if config.shard.count > 1 or store is not None:
        summary.shard = {"index": config.shard.index, "count": config.shard.count}
    if config.checks:
        # Judged on the whole run's figures on the generation clock the live checks used.
        end = dataclasses.replace(Figures.of_summary(summary.to_dict()), at_s=steered.generation_s)
        summary.checks = [v.to_dict() for v in watch.judge.verdicts(end)]
    summary.aborted = watch.aborted
    summary.write(run_summary_paths(config.output_dir, run_id, config.summary_json))
    if store is not None:
        await publish_shard(
            store, shard, summary.to_dict(), summary.exit_code(), [spool.path] if spool.count else []
        )
    print_summary(summary, out, config.log_format)
    _report_delivery_problems(summary, stats)
    return RunResult(summary, summary.exit_code())


async def feed(feeding: Coroutine[Any, Any, None], signals: Signals, spool: Spool) -> None:
    """Run what offers records to the channels (generation, or a spool being replayed) until it
    ends, a signal comes, a stop is asked for (the control, an abort check: Signals.finished),
    or the dead-letter spool breaks (then nothing more may be taken)."""
    task = asyncio.ensure_future(feeding)
    stopping = asyncio.ensure_future(_first_set(signals.stop, signals.finished, spool.broken))
    await asyncio.wait([task, stopping], return_when=asyncio.FIRST_COMPLETED)
    if not task.done():
        # A signal, a stop asked for (Signals.finished), or a spool that cannot take records any
        # more: the feed may be blocked on a full stream.
        task.cancel()
    stopping.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    if spool.broken.is_set():
        print(
            f"error: {spool.failure}; no new records are taken, records given up from now on are lost",
            file=sys.stderr,
        )


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def _first_set(*events: asyncio.Event) -> None:
    waits = [asyncio.create_task(e.wait()) for e in events]
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waits:
            w.cancel()


async def close(channels: Sequence[Inlet], ending: Ending, signals: Signals) -> None:
    """The end of a run or replay. Without a signal it drains: delivery goes on until every record
    held is accepted or has used its attempts and time-to-live, for --drain-timeout at most. A
    signal (before or during the drain) gives the rest --shutdown-grace; a second one aborts."""
    if signals.stop.is_set():
        wait_s, reason, message = ending.shutdown_grace_s, Reason.SHUTDOWN_DEADLINE, GRACE_OVER
    else:
        wait_s, reason, message = ending.drain_timeout_s, Reason.DRAIN_TIMEOUT, DRAIN_OVER
    closing = asyncio.ensure_future(asyncio.gather(*(c.close(wait_s, reason, message) for c in channels)))
    if reason is Reason.DRAIN_TIMEOUT and not await first_done(closing, signals.stop):
        for c in channels:
            c.cut_short(ending.shutdown_grace_s, Reason.SHUTDOWN_DEADLINE, GRACE_OVER)
    if not await first_done(closing, signals.abort):
        await asyncio.gather(*(c.abort() for c in channels))
    await closing


# Simulated seconds a backfill's pacer moves per tick: events of one tick share a timestamp.
SIM_TICK_S = 0.1


def simulated_summary(sim_start: float, sim_s: float, wall_s: float) -> dict[str, Any]:
    """The summary's ``simulated`` section: the window made, and how fast."""

    def stamp(t: float) -> str:
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))

    return {
        "start": stamp(sim_start),
        "end": stamp(sim_start + sim_s),
        "simulated_s": round(sim_s, 3),
        "wall_s": round(wall_s, 3),
        "simulated_s_per_wall_s": round(sim_s / wall_s, 1) if wall_s > 0 else None,
    }


GRACE_OVER = "shutdown grace period ended before delivery"
# The longest an abort waits for its marker to be written for the other shards.
MARKER_WRITE_S = 30.0
DRAIN_OVER = "--drain-timeout ended before delivery"


def _report_delivery_problems(summary: RunSummary, stats: list[StreamStats]) -> None:
    """One clear stderr line per stopped stream, and the shortfall when streams held generation back."""
    for s in stats:
        if s.stopped_reason:
            print(
                f"error: delivery stream {s.name!r} stopped: {s.stopped_reason} "
                f"({s.dead_lettered:,} records in the dead-letter spool)",
                file=sys.stderr,
            )
    schedule = summary.schedule or {}
    if schedule.get("shortfall_events"):
        print(
            f"behind schedule: {schedule['shortfall_events']:,} of {schedule['target_events']:,} events "
            f"({schedule['shortfall_pct']}%) were not generated on time because a stream could not "
            f"keep up (--on-full {schedule['on_full']})",
            file=sys.stderr,
        )


def _summary(
    config: RunConfig,
    run_id: str,
    generated: int,
    duration_s: float,
    stats: list[StreamStats],
    spool: Spool,
    histograms: Mapping[str, StreamHistograms],
) -> RunSummary:
    return RunSummary(
        kind="run",
        run_id=run_id,
        profile=config.profile.name,
        target=config.target.describe(),
        rate=config.rate,
        duration_s=round(duration_s, 3),
        events_generated=generated,
        streams={
            s.name: dataclasses.replace(StreamSummary.of(s), latency=histograms[s.name].latency())
            for s in stats
        },
        output_dir=str(config.output_dir) if config.target.kind is TargetKind.LOCAL else None,
        # What the embedded Firehose buffered with (None on other targets), for `audit`.
        buffer_hints=buffer_hints(
            config.streams, config.local_stream_config, local=config.target.kind is TargetKind.LOCAL
        ),
        dead_letter_path=str(spool.path) if spool.count else None,
        # A shard's seqs are index, index + count, ... (generation.py); the audit reads this.
        seq_spaces=[{"offset": config.shard.index, "stride": config.shard.count, "events": generated}]
        if config.shard.count > 1
        else [],
    )

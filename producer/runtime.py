"""How the process runs: on uvloop (the event loop the product card fixes), with its own signal
handlers: the first SIGINT/SIGTERM stops gracefully, a second SIGINT aborts.

The program installs its own handlers (no shell in between), so this also works as PID 1 in
a container.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Coroutine
from typing import Any, TypeVar

import uvloop

T = TypeVar("T")


def run_async(main: Coroutine[Any, Any, T]) -> T:
    return uvloop.run(main)


class Signals:
    """First SIGINT/SIGTERM: stop generating and shut down gracefully. Second SIGINT: abort.

    ``finish(reason)`` is the other way a run ends early, asked from inside (the control API's
    stop, a check's abort): generation stops as at the end of --duration and delivery drains
    normally (--drain-timeout); a signal during that drain still cuts it short."""

    def __init__(self) -> None:
        self.stop = asyncio.Event()
        self.abort = asyncio.Event()
        self.finished = asyncio.Event()
        self.finish_reason: str | None = None
        self._installed: list[signal.Signals] = []

    def finish(self, reason: str) -> None:
        """End generation now and drain as a run that reached its end does; the first reason stays."""
        if self.finish_reason is None:
            self.finish_reason = reason
        self.finished.set()

    def install(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(sig, self._on_signal, sig)
                self._installed.append(sig)
            except (NotImplementedError, RuntimeError, ValueError):
                pass  # not the main thread (tests) or no signal support

    def _on_signal(self, sig: signal.Signals) -> None:
        if self.stop.is_set() and sig == signal.SIGINT:
            self.abort.set()
        self.stop.set()

    def remove(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in self._installed:
            loop.remove_signal_handler(sig)


async def first_done(task: asyncio.Future[Any], event: asyncio.Event) -> bool:
    """Wait for ``task`` or ``event``; True when the task finished first."""
    waiter = asyncio.create_task(event.wait())
    try:
        await asyncio.wait([task, waiter], return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiter.cancel()
    return task.done()

"""The embedded local Firehose on its own thread and event loop, for the soak command: the load
runs on the main thread's loop (through the run command's own code path) against its URL, and
the buffers keep flushing on their timers while the soak waits, as they would in AWS."""

from __future__ import annotations

import asyncio
import threading
from types import TracebackType

from producer.local.server import LocalFirehose, LocalOptions

START_TIMEOUT_S = 10
# Stopping delivers every buffered record; a large buffer may take a while to write.
STOP_TIMEOUT_S = 120


class BackgroundLocalFirehose:
    def __init__(self, options: LocalOptions) -> None:
        self.server = LocalFirehose(options)
        self.url = ""
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="local-firehose", daemon=True)

    def __enter__(self) -> BackgroundLocalFirehose:
        self._thread.start()
        try:
            asyncio.run_coroutine_threadsafe(self.server.start(), self._loop).result(START_TIMEOUT_S)
        except BaseException:
            self.stop()
            raise
        self.url = self.server.url
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def stop(self) -> None:
        """Stop serving and deliver what is buffered (idempotent)."""
        if self._loop.is_closed():
            return
        if self._thread.is_alive():
            asyncio.run_coroutine_threadsafe(self.server.stop(), self._loop).result(STOP_TIMEOUT_S)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(START_TIMEOUT_S)
        self._loop.close()

"""Memory is bounded by the buffer size: when full buffers wait for a slow writer, ingest waits."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

from producer import pipeline
from producer.local.delivery import DeliveryLog, ObjectWriter, StreamDelivery
from producer.local.streams import stream_from_request


class SlowWriter(ObjectWriter):
    def __init__(self, output_dir: Path) -> None:
        super().__init__(output_dir, DeliveryLog(output_dir))
        self.release = threading.Event()

    def write(self, relative: str, data: bytes, **kwargs: Any) -> Path:
        self.release.wait(10)
        return super().write(relative, data, **kwargs)


async def test_ingest_waits_while_full_buffers_are_pending(tmp_path: Path) -> None:
    stream = stream_from_request(pipeline.s3_stream_request("bp", size_mib=1), "us-east-1")
    writer = SlowWriter(tmp_path)
    delivery = StreamDelivery(stream, writer, max_pending=1)
    delivery.start()
    full = [b"z" * (1024 * 1024)]
    delivery.add(full, len(full[0]), 1.0)  # one full buffer goes to the (blocked) writer
    assert delivery.backlogged
    waiter = asyncio.create_task(delivery.wait_for_room())
    await asyncio.sleep(0.1)
    assert not waiter.done(), "ingest must wait while the writer is behind"
    writer.release.set()
    await asyncio.wait_for(waiter, 5)
    assert not delivery.backlogged
    await delivery.close()
    assert delivery.counts.delivered_records == 1

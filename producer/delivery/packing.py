"""Packing: several events in one record, newline-delimited, to cut what Firehose bills.

Firehose bills Direct PUT ingestion per record rounded up to 5 KB
(https://aws.amazon.com/firehose/pricing/), so a 400-byte event costs as much as a 5 KB one.
A packed stream joins consecutive events (each one JSON line) into records of at most
``target_bytes``, and the pipeline splits them again:
- the transform Lambda enriches each line of a record and returns them as one record (its
  contract is one record out per record in:
  https://docs.aws.amazon.com/firehose/latest/dev/data-transformation-status-model.html);
- record format conversion turns each JSON document of a record into its own row
  (https://docs.aws.amazon.com/firehose/latest/dev/record-format-conversion.html: "you can
  convert the format of your data even if you aggregate your records").
An OpenSearch destination indexes each record as one document
(https://docs.aws.amazon.com/firehose/latest/dev/basic-deliver.html), and record
de-aggregation exists only with dynamic partitioning, which only S3 destinations have
(https://docs.aws.amazon.com/firehose/latest/dev/dynamic-partitioning-multirecord-deaggergation.html):
a stream that does not deliver to S3 cannot be packed (``unpackable``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Mapping
from typing import Any

from producer.delivery.channel import StreamChannel
from producer.firehose import limits
from producer.firehose.wire import RAW
from producer.telemetry.stats import Reason

# "5 KB" on the pricing page is not defined in bytes (5,000 or 5,120); 5,000 bills one
# increment under either reading.
DEFAULT_TARGET_BYTES = 5_000
# Record de-aggregation splits at most 500 sub-records per record (page above); packing never
# goes past it, so a packed record stays splittable by either means.
MAX_EVENTS_PER_RECORD = 500


class Packer:
    """Joins records (each ending in a newline) into packed records of at most ``target_bytes``
    and ``MAX_EVENTS_PER_RECORD`` events; an event larger than the target is a record alone."""

    def __init__(self, target_bytes: int) -> None:
        if not 0 < target_bytes <= limits.MAX_RECORD_BYTES:
            raise ValueError(f"pack target must be 1..{limits.MAX_RECORD_BYTES} bytes, got {target_bytes}")
        self.target_bytes = target_bytes
        self._parts: list[bytes] = []
        self._size = 0

    @property
    def pending(self) -> int:
        """Events waiting for their record to fill."""
        return len(self._parts)

    def add(self, event: bytes, done: list[tuple[bytes, int]]) -> None:
        """Take one event; completed records are appended to ``done`` as (record, events)."""
        if self._parts and (
            self._size + len(event) > self.target_bytes or len(self._parts) >= MAX_EVENTS_PER_RECORD
        ):
            self._close(done)
        self._parts.append(event if event.endswith(b"\n") else event + b"\n")
        self._size += len(self._parts[-1])

    def take(self, done: list[tuple[bytes, int]]) -> None:
        """The pending events as a record (nothing when there are none)."""
        if self._parts:
            self._close(done)

    def _close(self, done: list[tuple[bytes, int]]) -> None:
        done.append((b"".join(self._parts), len(self._parts)))
        self._parts = []
        self._size = 0


class PackingStage:
    """In front of a stream's plain channel: takes events as they are (``wire`` RAW), packs
    them, and offers the packed records to the channel. The channel's books count records (what
    Firehose takes, bills and throttles); ``stats.packed_events`` counts the events in them.
    Pending events become a record at the channel's linger or when it closes, never later."""

    wire = RAW  # the generator offers events here as they are: nothing to decode

    def __init__(self, channel: StreamChannel, target_bytes: int, linger_s: float) -> None:
        self.channel = channel
        self.name = channel.name
        self.stats = channel.stats
        self.packer = Packer(target_bytes)
        self._encode = channel.wire.encode
        self._linger_s = linger_s
        self._timer: asyncio.TimerHandle | None = None

    @property
    def usable(self) -> bool:
        return self.channel.usable

    def offer(self, data: bytes) -> Awaitable[None] | None:
        if self.offer_many([data], [len(data)]):
            return self.wait_for_space()
        return None

    def offer_many(self, items: list[bytes], sizes: list[int]) -> bool:
        """Events (``sizes`` unused: a record's size is known once it is packed)."""
        done: list[tuple[bytes, int]] = []
        add = self.packer.add
        for item in items:
            add(item, done)
        if self._timer is None and self.packer.pending:
            self._timer = asyncio.get_running_loop().call_later(self._linger_s, self._flush)
        return self._offer_packed(done)

    def _offer_packed(self, done: list[tuple[bytes, int]]) -> bool:
        if not done:
            return False
        self.stats.packed_events += sum(n for _, n in done)
        encode = self._encode
        return self.channel.offer_many([encode(r) for r, _ in done], [len(r) for r, _ in done])

    def _flush(self) -> None:
        """The linger of the record being packed: what waits goes now. Backpressure applies to
        the next offer (the generator's), not to this timer."""
        self._timer = None
        done: list[tuple[bytes, int]] = []
        self.packer.take(done)
        self._offer_packed(done)

    async def wait_for_space(self) -> None:
        await self.channel.wait_for_space()

    def start(self) -> None:
        self.channel.start()

    async def close(
        self,
        wait_s: float,
        reason: Reason = Reason.SHUTDOWN_DEADLINE,
        message: str = "shutdown grace period ended before delivery",
    ) -> None:
        self._flush_now()
        await self.channel.close(wait_s, reason, message)

    def cut_short(self, wait_s: float, reason: Reason, message: str) -> None:
        self.channel.cut_short(wait_s, reason, message)

    async def abort(self) -> None:
        # The events still being packed go to the channel first, which spools them with the
        # rest: abort() does not pass through close() here.
        self._flush_now()
        await self.channel.abort()

    def _flush_now(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._flush()


def unpackable(stream: str, description: Mapping[str, Any]) -> str | None:
    """Why ``stream`` cannot be packed (one line for the user), or None when it can: only a
    stream delivering to S3 splits packed records back into events (module docstring)."""
    destinations = description.get("Destinations") or []
    kinds = {key for d in destinations for key in d if key.endswith("DestinationDescription")}
    if kinds and kinds <= {"ExtendedS3DestinationDescription", "S3DestinationDescription"}:
        return None
    where = ", ".join(sorted(k.removesuffix("DestinationDescription") for k in kinds)) or "unknown"
    return (
        f"--pack {stream}: this stream delivers to {where}, which indexes each record as one "
        "document, and Firehose splits packed records only for S3 destinations "
        "(https://docs.aws.amazon.com/firehose/latest/dev/basic-deliver.html); pack only S3 streams"
    )

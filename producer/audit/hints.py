"""Buffering hints from DescribeDeliveryStream, and whether delivered objects fit them.

Firehose writes an object when the buffer reaches SizeInMBs or its oldest record is
IntervalInSeconds old, whichever comes first:
https://docs.aws.amazon.com/firehose/latest/APIReference/API_BufferingHints.html
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from producer.audit.findings import ObjectStat
from producer.firehose import limits

# Arrival spans a little over the interval are the timer's wake-up jitter, not a broken hint.
SPAN_TOLERANCE_S = 1.0
_DESTINATION_KEYS = (
    "ExtendedS3DestinationDescription",
    "S3DestinationDescription",
    "AmazonopensearchserviceDestinationDescription",
    "ElasticsearchDestinationDescription",
)


@dataclass(frozen=True, slots=True)
class BufferHints:
    interval_s: float
    size_mib: int
    # A Lambda processor's BufferIntervalInSeconds: records wait for it before the transform,
    # then for interval_s at the destination, so one object's arrivals can span both.
    # https://docs.aws.amazon.com/firehose/latest/dev/data-transformation.html
    processor_interval_s: float = 0.0

    @property
    def size_bytes(self) -> int:
        return self.size_mib * 1024 * 1024

    def label(self) -> str:
        return f"{self.interval_s:g}s/{self.size_mib}MiB"


def from_description(description: dict[str, Any]) -> BufferHints | None:
    """The main destination's hints in a DeliveryStreamDescription (not its S3 backup's), with
    its Lambda processor's interval."""
    for destination in description.get("Destinations") or []:
        for key in _DESTINATION_KEYS:
            found = destination.get(key) or {}
            hints = found.get("BufferingHints")
            if hints:
                return BufferHints(
                    float(hints.get("IntervalInSeconds", limits.DEFAULT_BUFFER_INTERVAL_S)),
                    int(hints.get("SizeInMBs", limits.DEFAULT_BUFFER_MIB)),
                    _processor_interval(found.get("ProcessingConfiguration") or {}),
                )
    return None


def _processor_interval(processing: dict[str, Any]) -> float:
    """The Lambda processor's BufferIntervalInSeconds (its default when not given; 0: none)."""
    if not processing.get("Enabled"):
        return 0.0
    for processor in processing.get("Processors") or []:
        if processor.get("Type") == "Lambda":
            for p in processor.get("Parameters") or []:
                if p.get("ParameterName") == "BufferIntervalInSeconds":
                    return float(p.get("ParameterValue"))
            return float(limits.DEFAULT_PROCESSOR_INTERVAL_S)
    return 0.0


@dataclass(frozen=True, slots=True)
class HintCheck:
    expected_min: int
    expected_max: int
    consistent: bool
    problems: list[str]


def check(objects: Sequence[ObjectStat], hints: BufferHints) -> HintCheck | None:
    """Object count and shape against the hints, assuming steady load over the run.

    With steady load each buffer opens at the first record after the previous flush, so a run
    whose arrivals span W seconds makes about W / interval objects, plus one per SizeInMBs of
    data; a buffer can overshoot the size by at most one PutRecordBatch (4 MiB)."""
    spans = [(o.first_arrival, o.last_arrival) for o in objects if o.first_arrival and o.last_arrival]
    if not spans or hints.interval_s <= 0:
        return None
    window = max(last for _, last in spans) - min(first for first, _ in spans)
    total = sum(o.bytes for o in objects)
    by_size = sum(1 for o in objects if o.bytes >= hints.size_bytes)
    # One object holds at most interval + processor interval of arrivals (see BufferHints).
    span = hints.interval_s + hints.processor_interval_s + SPAN_TOLERANCE_S
    low = max(1, math.floor(window / span) if not by_size else 1)
    high = math.ceil(window / hints.interval_s) + 1 + math.ceil(total / hints.size_bytes)
    problems: list[str] = []
    long_spans = [
        o.key
        for o in objects
        if o.first_arrival and o.last_arrival and o.last_arrival - o.first_arrival > span
    ]
    if long_spans:
        problems.append(f"{len(long_spans)} objects hold arrivals longer apart than the interval")
    oversized = [o.key for o in objects if o.bytes > hints.size_bytes + limits.MAX_BATCH_BYTES]
    if oversized:
        problems.append(f"{len(oversized)} objects exceed SizeInMBs by more than one batch")
    if not low <= len(objects) <= high:
        problems.append(f"{len(objects)} objects, expected {low}-{high} for these hints")
    return HintCheck(low, high, not problems, problems)

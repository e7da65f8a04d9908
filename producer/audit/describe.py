"""The buffering hints of a run on the embedded target: as its summary recorded them, or the
reference requests it created its streams with. (The soak reads live streams' hints with
DescribeDeliveryStream: audit/apply.py.)"""

from __future__ import annotations

from collections.abc import Iterable

from producer.audit.hints import BufferHints
from producer.streams.resolution import buffer_hints
from producer.summary import RunSummary


def local_run_hints(summary: RunSummary, streams: Iterable[str]) -> dict[str, BufferHints]:
    """A local run's hints as its summary recorded them (``buffer_hints``: the template's, when the
    embedded Firehose was built from one); summaries from before that field: the reference ones."""
    recorded = summary.buffer_hints
    if not isinstance(recorded, dict):
        return reference_hints(streams)
    return _hints(recorded)


def _hints(recorded: dict[str, dict[str, float]] | None) -> dict[str, BufferHints]:
    """Hints as the run summary records them (``{"interval_s", "size_mib"}`` per stream)."""
    return {
        name: BufferHints(float(h["interval_s"]), int(h["size_mib"]))
        for name, h in (recorded or {}).items()
        if isinstance(h, dict)
    }


def reference_hints(streams: Iterable[str]) -> dict[str, BufferHints]:
    """The reference requests' hints (pipeline.stream_request), which app.prepare_streams uses for
    a stream the embedded Firehose was not given: read where the run reads them
    (streams/resolution.buffer_hints)."""
    return _hints(buffer_hints(list(streams), None))

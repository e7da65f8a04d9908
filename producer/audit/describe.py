"""The streams' buffering hints: DescribeDeliveryStream through the producer's client, or, for a
run on the embedded target, the reference requests it created its streams with."""

from __future__ import annotations

from collections.abc import Iterable

from producer.audit.hints import BufferHints, from_description
from producer.errors import UsageError
from producer.firehose.client import ClientSettings, open_client
from producer.firehose.errors import ApiError, TransportError
from producer.streams.resolution import buffer_hints
from producer.summary import RunSummary


async def describe_hints(settings: ClientSettings, streams: Iterable[str]) -> dict[str, BufferHints]:
    out: dict[str, BufferHints] = {}
    async with open_client(settings) as client:
        for name in streams:
            try:
                description = await client.describe(name)
            except (ApiError, TransportError) as exc:
                where = settings.endpoint_url or f"AWS {settings.region}"
                raise UsageError(f"describing {name!r} at {where} failed: {exc}") from None
            hints = from_description(description)
            if hints is not None:
                out[name] = hints
    return out


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

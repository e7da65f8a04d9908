"""Which streams a run sends to, configured how: the one place that decides.

``resolve`` answers once per run (``run`` calls it; ``run --workers`` hands its answer to the
workers as ``--stream`` names, so a stack is read once); ``requests`` and ``buffer_hints`` read
the embedded Firehose's stream configuration, for the run's summary, the ``--workers`` merge and
the audit. Names come from ``--stream``, else ``--stack``'s outputs, else the template the
embedded Firehose is built from, else the reference pipeline (producer/pipeline.py).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from producer import pipeline
from producer.errors import UsageError
from producer.firehose import limits


@dataclass(frozen=True, slots=True)
class RunStreams:
    """The streams of one run. ``config`` and ``transform``: the files the embedded Firehose
    builds them from (local target; None otherwise). ``pack``: the streams whose events are
    packed (--pack, a profile's ``pack:``), with their target record size."""

    names: tuple[str, ...]
    config: Path | None = None
    transform: Path | None = None
    pack: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Asked:
    """What the command line (and the profile) asked about streams, before resolution."""

    streams: Sequence[str] = ()
    stack: str | None = None
    template: Path | None = None
    params: Sequence[str] = ()
    pack: Sequence[str] = ()
    pack_bytes: int = 5_000
    profile_pack: Mapping[str, int] = field(default_factory=dict)
    record_format: str = "json"
    text_sources: tuple[str, ...] = ()  # the profile's generators that make text records (kind: kdg)
    profile_name: str = ""


def resolve(asked: Asked, local: bool, region: str, state_dir: Path) -> RunStreams:
    """The run's streams, read once. ``local``: the embedded Firehose runs them, built from
    ``asked.template`` (the shipped pipeline template when None), its files under ``state_dir``."""
    _check(asked.streams, asked.stack, local)
    config, transform, from_template = _template(asked.template, asked.params, local, region, state_dir)
    names = stream_names(asked.streams, asked.stack, local, region, from_template)
    return RunStreams(names, config, transform, _pack(asked, names))


def stream_names(
    streams: Sequence[str],
    stack: str | None,
    local: bool,
    region: str,
    from_template: tuple[str, ...] = (),
) -> tuple[str, ...]:
    """The names alone (``resolve`` and ``soak``): ``--stream``, else ``--stack``'s outputs (read
    from CloudFormation), else the template's, else the reference pipeline's."""
    _check(streams, stack, local)
    if streams:
        return tuple(streams)
    if stack:
        from producer.aws.cloudformation import stack_stream_names

        return stack_stream_names(stack, region)
    return from_template or pipeline.DEFAULT_STREAMS


def _check(streams: Sequence[str], stack: str | None, local: bool) -> None:
    if streams and stack:
        raise UsageError("--stream and --stack both name the streams; pass one of them")
    if stack and local:
        raise UsageError("--stack reads a CloudFormation stack in AWS: add --target aws --region R")


def _template(
    template: Path | None, params: Sequence[str], local: bool, region: str, state_dir: Path
) -> tuple[Path | None, Path | None, tuple[str, ...]]:
    """--template/--param: the embedded Firehose's stream config, transform and stream names.

    Without --template the embedded Firehose is built from the shipped deploy/pipeline.yaml, so
    the sandbox runs the pipeline that deploys (one source of truth); another target takes none."""
    if not local:
        if template is not None:
            raise UsageError(
                "--template builds the embedded local Firehose: drop --target aws / --endpoint-url"
            )
        if params:
            raise UsageError("--param needs --template (the embedded local Firehose)")
        return None, None, ()
    from producer.local.template import SHIPPED_TEMPLATE, prepare
    from producer.shipped import shipped_path

    if template is None:
        template = shipped_path(SHIPPED_TEMPLATE)
        if not template.is_file():
            raise UsageError(
                f"the shipped pipeline template {SHIPPED_TEMPLATE} is missing from this installation "
                f"(looked in {template.parent}); pass --template FILE"
            )
    return prepare(template, list(params), region, state_dir)


def _pack(asked: Asked, names: tuple[str, ...]) -> dict[str, int]:
    """Streams to pack and their target record size: the profile's (for the streams of this
    run), then --pack's, each a stream of this run."""
    if not 0 < asked.pack_bytes <= limits.MAX_RECORD_BYTES:
        raise UsageError(f"--pack-bytes must be 1..{limits.MAX_RECORD_BYTES}, got {asked.pack_bytes}")
    pack = {name: size for name, size in asked.profile_pack.items() if name in names}
    pack |= dict.fromkeys(asked.pack, asked.pack_bytes)
    unknown = sorted(set(pack) - set(names))
    if unknown:
        raise UsageError(f"--pack {unknown[0]}: not a stream of this run ({', '.join(names)})")
    if pack and asked.record_format != "json":
        raise UsageError(
            f"--pack needs JSON events (the transform splits JSON lines); profile {asked.profile_name!r} "
            f"makes {asked.record_format}"
        )
    if pack and asked.text_sources:
        raise UsageError(
            f"--pack needs JSON events (the transform splits JSON lines); generator "
            f"{asked.text_sources[0]!r} of profile {asked.profile_name!r} makes text records"
        )
    return pack


def requests(names: Sequence[str], config: Path | None) -> dict[str, dict[str, Any]]:
    """The CreateDeliveryStream request each stream is created from on the embedded Firehose:
    the config file's (a template's), else the reference pipeline's."""
    from producer.local.streams import stream_requests_from_file_data

    given: dict[str, dict[str, Any]] = {}
    if config is not None:
        for request in stream_requests_from_file_data(orjson.loads(config.read_bytes())):
            given[str(request.get("DeliveryStreamName"))] = request
    return {name: given.get(name) or pipeline.stream_request(name) for name in names}


def buffer_hints(
    names: Sequence[str], config: Path | None, local: bool = True
) -> dict[str, dict[str, float]] | None:
    """Each stream's buffering hints on the embedded Firehose ({"interval_s", "size_mib"}), as
    the run created it: what the audit checks delivery against. None when the run was not on
    the embedded Firehose (``local``): the audit asks the service then."""
    if not local:
        return None
    out: dict[str, dict[str, float]] = {}
    for name, request in requests(names, config).items():
        for key, destination in request.items():
            if not (key.endswith("DestinationConfiguration") and isinstance(destination, dict)):
                continue
            hints = destination.get("BufferingHints")
            if isinstance(hints, dict):
                out[name] = {
                    "interval_s": float(hints.get("IntervalInSeconds", limits.DEFAULT_BUFFER_INTERVAL_S)),
                    "size_mib": int(hints.get("SizeInMBs", limits.DEFAULT_BUFFER_MIB)),
                }
                break
    return out

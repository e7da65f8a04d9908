"""The soak's settings, in the names of deploy/pipeline.yaml's Parameters, and the one mapping from
each parameter to the stream and the UpdateDestination field it sets.

A ``--compare`` value is ``PARAM=VALUE,PARAM=VALUE`` (``S3BufferIntervalSeconds=60,
ProcessorBufferIntervalSeconds=10``) or the short ``INTERVAL/SIZE`` (both streams' destination
hints). Every value is checked before anything is sent: first AWS's rules, then the template's
own MinValue/MaxValue (so that a recommended setting can be deployed with ``stack deploy
--param``), then, once the streams are described, the rules that depend on the stream (format
conversion needs 64 MiB, no interval 0 with dynamic partitioning).

AWS's rules, in the pages they come from:
  destination hints (S3 1-128 MiB, 0-900 s):
    https://docs.aws.amazon.com/firehose/latest/APIReference/API_BufferingHints.html
  OpenSearch hints (1-100 MiB, 0-900 s):
    https://docs.aws.amazon.com/firehose/latest/APIReference/API_AmazonopensearchserviceBufferingHints.html
  zero buffering "is not applicable" to the S3 backup; multipart below 60 s:
    https://docs.aws.amazon.com/firehose/latest/dev/buffering-hints.html
  format conversion needs SizeInMBs >= 64:
    https://docs.aws.amazon.com/firehose/latest/dev/record-format-conversion.html
  Lambda processor 0.2-3 MB, 0-900 s:
    https://docs.aws.amazon.com/firehose/latest/dev/data-transformation.html
  no interval 0 with dynamic partitioning:
    https://docs.aws.amazon.com/firehose/latest/dev/dynamic-partitioning.html
UpdateDestination (version id, destination id, merge into the same destination type):
https://docs.aws.amazon.com/firehose/latest/APIReference/API_UpdateDestination.html
"""

from __future__ import annotations

import copy
import difflib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from producer.errors import UsageError
from producer.firehose import limits

Kind = Literal["s3", "opensearch"]
Section = Literal["hints", "backup", "processor"]
S3_DESCRIPTION = "ExtendedS3DestinationDescription"
OPENSEARCH_DESCRIPTION = "AmazonopensearchserviceDestinationDescription"
# Description key -> UpdateDestination key, and where each keeps its S3 backup.
UPDATE_KEY = {
    S3_DESCRIPTION: "ExtendedS3DestinationUpdate",
    OPENSEARCH_DESCRIPTION: "AmazonopensearchserviceDestinationUpdate",
}
BACKUP_KEYS = {OPENSEARCH_DESCRIPTION: ("S3DestinationDescription", "S3Update")}
KIND_OF = {S3_DESCRIPTION: "s3", OPENSEARCH_DESCRIPTION: "opensearch"}


@dataclass(frozen=True, slots=True)
class Param:
    """One template parameter: the streams it sets (``kinds``), the part of the destination
    (``section``), the API field, AWS's range and whether it takes fractions."""

    kinds: tuple[Kind, ...]
    section: Section
    field: str
    low: float
    high: float
    integer: bool = True


_INTERVAL = limits.BUFFER_INTERVAL_S_RANGE
_PROC_MB = limits.PROCESSOR_BUFFER_MIB_RANGE
_S3_MIB = limits.S3_BUFFER_MIB_RANGE
_OS_MIB = limits.OPENSEARCH_BUFFER_MIB_RANGE
_BOTH: tuple[Kind, ...] = ("s3", "opensearch")
# The one mapping (the template sets the same fields: deploy/pipeline.yaml, delivery streams).
PARAMS: dict[str, Param] = {
    "S3BufferIntervalSeconds": Param(("s3",), "hints", "IntervalInSeconds", *_INTERVAL),
    "S3BufferSizeMiB": Param(("s3",), "hints", "SizeInMBs", *_S3_MIB),
    "OpenSearchBufferIntervalSeconds": Param(("opensearch",), "hints", "IntervalInSeconds", *_INTERVAL),
    "OpenSearchBufferSizeMiB": Param(("opensearch",), "hints", "SizeInMBs", *_OS_MIB),
    # Zero buffering is not available for the S3 backup: 1-900 s.
    "OpenSearchBackupBufferIntervalSeconds": Param(("opensearch",), "backup", "IntervalInSeconds", 1, 900),
    "OpenSearchBackupBufferSizeMiB": Param(("opensearch",), "backup", "SizeInMBs", *_S3_MIB),
    "ProcessorBufferIntervalSeconds": Param(_BOTH, "processor", "BufferIntervalInSeconds", *_INTERVAL),
    "ProcessorBufferSizeMB": Param(_BOTH, "processor", "BufferSizeInMBs", *_PROC_MB, integer=False),
}  # fmt: skip
# The short form INTERVAL/SIZE: both streams' destination hints.
SHORT_FORM = (
    ("S3BufferIntervalSeconds", "S3BufferSizeMiB"),
    ("OpenSearchBufferIntervalSeconds", "OpenSearchBufferSizeMiB"),
)
# What a destination uses when the description leaves a field out (the API's defaults).
DEFAULTS = {
    ("hints", "IntervalInSeconds"): float(limits.DEFAULT_BUFFER_INTERVAL_S),
    ("hints", "SizeInMBs"): float(limits.DEFAULT_BUFFER_MIB),
    ("backup", "IntervalInSeconds"): float(limits.DEFAULT_BUFFER_INTERVAL_S),
    ("backup", "SizeInMBs"): float(limits.DEFAULT_BUFFER_MIB),
    ("processor", "BufferIntervalInSeconds"): float(limits.DEFAULT_PROCESSOR_INTERVAL_S),
    ("processor", "BufferSizeInMBs"): limits.DEFAULT_PROCESSOR_BUFFER_MIB,
}


@dataclass(frozen=True, slots=True)
class Setting:
    """One ``--compare`` value: its label (canonical ``K=V,...``) and the values it sets."""

    params: dict[str, float]

    @property
    def label(self) -> str:
        return ",".join(f"{k}={_text(v)}" for k, v in self.params.items())


def _text(value: float) -> str:
    return f"{value:g}"


def template_ranges(template: Path | None) -> dict[str, tuple[float | None, float | None]]:
    """The template's MinValue/MaxValue for the soak's parameters ({} without a template)."""
    if template is None or not template.is_file():
        return {}
    from producer.aws.cloudformation import load_template

    specs = load_template(template.read_text()).get("Parameters") or {}
    out: dict[str, tuple[float | None, float | None]] = {}
    for name in PARAMS:
        spec = specs.get(name) or {}
        low, high = spec.get("MinValue"), spec.get("MaxValue")
        out[name] = (None if low is None else float(low), None if high is None else float(high))
    return out


def parse(text: str, ranges: Mapping[str, tuple[float | None, float | None]] | None = None) -> Setting:
    """A ``--compare`` value, checked against AWS's rules and the template's ``ranges``; a
    UsageError (one line) names the first thing wrong."""
    raw = text.strip()
    if "=" not in raw and "/" in raw:
        return _short_form(raw, ranges or {})
    params: dict[str, float] = {}
    for pair in raw.split(","):
        name, sep, value = (p.strip() for p in pair.partition("="))
        if not sep or not name or not value:
            raise UsageError(
                f"--compare {text!r}: expected PARAM=VALUE[,PARAM=VALUE...] "
                "(like S3BufferIntervalSeconds=60,S3BufferSizeMiB=64) or INTERVAL/SIZE (like 60s/64)"
            )
        if name not in PARAMS:
            close = difflib.get_close_matches(name, PARAMS, n=2, cutoff=0.5)
            hint = f"did you mean {' or '.join(close)}? " if close else ""
            raise UsageError(f"--compare {name}: not a soak parameter; {hint}known: {', '.join(PARAMS)}")
        if name in params:
            raise UsageError(f"--compare {text!r}: {name} is given twice")
        params[name] = check_value(name, value, ranges or {})
    return Setting(params)


def _short_form(text: str, ranges: Mapping[str, tuple[float | None, float | None]]) -> Setting:
    from producer.durations import parse_duration

    interval_text, _, size_text = text.partition("/")
    try:
        interval = parse_duration(interval_text)
    except ValueError:
        raise UsageError(f"--compare {text!r}: {interval_text!r} is not an interval like 60s") from None
    size = size_text.strip().removesuffix("MiB").removesuffix("MB")
    params: dict[str, float] = {}
    for interval_param, size_param in SHORT_FORM:
        params[interval_param] = check_value(interval_param, _text(interval), ranges)
        params[size_param] = check_value(size_param, size, ranges)
    return Setting(params)


def check_value(name: str, text: str, ranges: Mapping[str, tuple[float | None, float | None]]) -> float:
    """``text`` as the value of ``name``, or a UsageError saying which rule it breaks."""
    param = PARAMS[name]
    try:
        value = float(text)
    except ValueError:
        raise UsageError(f"--compare {name}={text}: must be a number") from None
    unit = "MB" if name.endswith("MB") else "MiB" if name.endswith("MiB") else "s"
    if param.integer and not value.is_integer():
        raise UsageError(f"--compare {name}={text}: must be a whole number of {unit}")
    if not param.low <= value <= param.high:
        why = " (zero buffering is not available for the S3 backup)" if param.section == "backup" else ""
        raise UsageError(
            f"--compare {name}={text}: AWS allows {_text(param.low)}-{_text(param.high)} {unit}{why}"
        )
    low, high = ranges.get(name, (None, None))
    if (low is not None and value < low) or (high is not None and value > high):
        raise UsageError(
            f"--compare {name}={text}: the template allows {_text(low or param.low)}-"
            f"{_text(high or param.high)} {unit} (deploy/pipeline.yaml's range for this parameter)"
        )
    return value


# --- Streams: which parameters apply where, and the UpdateDestination requests ----------------


def destination(description: Mapping[str, Any]) -> tuple[str, str, dict[str, Any]]:
    """(DestinationId, description key, destination description) of the stream's one destination."""
    for found in description.get("Destinations") or []:
        for key in UPDATE_KEY:
            if key in found:
                return str(found["DestinationId"]), key, dict(found[key])
    name = description.get("DeliveryStreamName", "?")
    raise UsageError(
        f"stream {name!r}: soak changes Extended S3 and OpenSearch destinations only "
        "(the reference pipeline's); this stream has neither"
    )


def kind_of(description: Mapping[str, Any]) -> Kind:
    return "opensearch" if destination(description)[1] == OPENSEARCH_DESCRIPTION else "s3"


def current(description: Mapping[str, Any]) -> dict[str, float]:
    """The soak parameters' values in this stream as described (API defaults where left out;
    no processor parameters for a stream without a Lambda processor)."""
    _, key, dest = destination(description)
    kind = KIND_OF[key]
    out: dict[str, float] = {}
    for name, param in PARAMS.items():
        if kind not in param.kinds or (param.section == "processor" and not _lambda_processors(dest)):
            continue
        value = _read(dest, key, param)
        out[name] = DEFAULTS[(param.section, param.field)] if value is None else value
    return out


def _read(dest: Mapping[str, Any], key: str, param: Param) -> float | None:
    if param.section == "hints":
        found = (dest.get("BufferingHints") or {}).get(param.field)
    elif param.section == "backup":
        backup_key = BACKUP_KEYS.get(key, ("", ""))[0]
        found = ((dest.get(backup_key) or {}).get("BufferingHints") or {}).get(param.field)
    else:
        found = None
        for processor in _lambda_processors(dest):
            for p in processor.get("Parameters") or []:
                if p.get("ParameterName") == param.field:
                    found = p.get("ParameterValue")
    return None if found is None else float(found)


def _lambda_processors(dest: Mapping[str, Any]) -> list[dict[str, Any]]:
    config = dest.get("ProcessingConfiguration") or {}
    if not config.get("Enabled", False):
        return []
    return [p for p in config.get("Processors") or [] if p.get("Type") == "Lambda"]


def applies(setting: Setting, descriptions: Mapping[str, Mapping[str, Any]]) -> None:
    """The checks that need the streams: each parameter sets some stream of the soak, format
    conversion's 64 MiB, no interval 0 with dynamic partitioning, a processor to set."""
    kinds = {name: kind_of(d) for name, d in descriptions.items()}
    for name, value in setting.params.items():
        param = PARAMS[name]
        targets = [s for s, k in kinds.items() if k in param.kinds]
        if not targets:
            raise UsageError(
                f"--compare {name}: none of the soak's streams ({', '.join(kinds)}) is "
                f"{' or '.join(param.kinds)}"
            )
        for stream in targets:
            dest = destination(descriptions[stream])[2]
            conversion = (dest.get("DataFormatConversionConfiguration") or {}).get("Enabled")
            partitioning = (dest.get("DynamicPartitioningConfiguration") or {}).get("Enabled")
            if name == "S3BufferSizeMiB" and conversion and value < limits.FORMAT_CONVERSION_MIN_BUFFER_MIB:
                raise UsageError(
                    f"--compare {name}={_text(value)}: {stream} converts to Parquet/ORC, which needs "
                    f"at least {limits.FORMAT_CONVERSION_MIN_BUFFER_MIB} MiB"
                )
            if param.field == "IntervalInSeconds" and value == 0 and partitioning:
                raise UsageError(
                    f"--compare {name}=0: {stream} partitions dynamically, which rules out zero buffering"
                )
            if param.section == "processor" and not _lambda_processors(dest):
                raise UsageError(f"--compare {name}: {stream} has no Lambda processor to set")


def apply_request(
    stream: str, description: Mapping[str, Any], params: Mapping[str, float]
) -> dict[str, Any] | None:
    """The UpdateDestination request setting ``params`` on this stream (None: none apply). Only
    the sections the parameters touch are sent, each copied whole from the description."""
    destination_id, key, dest = destination(description)
    kind = KIND_OF[key]
    mine = {n: v for n, v in params.items() if kind in PARAMS[n].kinds}
    if not mine:
        return None
    update: dict[str, Any] = {}
    for name, value in mine.items():
        param = PARAMS[name]
        number: float | int = int(value) if param.integer else value
        if param.section == "hints":
            hints = update.setdefault("BufferingHints", _hints(dest, key, "hints"))
            hints[param.field] = number
        elif param.section == "backup":
            backup_update = BACKUP_KEYS[key][1]
            section = update.setdefault(backup_update, {"BufferingHints": _hints(dest, key, "backup")})
            section["BufferingHints"][param.field] = number
        else:
            processing = update.setdefault("ProcessingConfiguration", _processing(dest))
            for processor in processing["Processors"]:
                if processor.get("Type") == "Lambda":
                    _set_parameter(processor, param.field, _text(value))
    return _request(stream, description, destination_id, key, update)


def restore_request(
    stream: str, original: Mapping[str, Any], now: Mapping[str, Any]
) -> dict[str, Any] | None:
    """The UpdateDestination request putting back every section the soak may have changed, copied
    whole from the ``original`` description, with the version id of ``now`` (None: unchanged)."""
    _, key, before = destination(original)
    _, _, after = destination(now)
    update: dict[str, Any] = {}
    for section in ("hints", "backup", "processor"):
        if _section(before, key, section) != _section(after, key, section):
            if section == "hints":
                update["BufferingHints"] = _hints(before, key, "hints")
            elif section == "backup":
                update[BACKUP_KEYS[key][1]] = {"BufferingHints": _hints(before, key, "backup")}
            else:
                update["ProcessingConfiguration"] = _processing(before)
    if not update:
        return None
    return _request(stream, now, destination(now)[0], key, update)


def shows(description: Mapping[str, Any], params: Mapping[str, float]) -> bool:
    """Whether the description shows every value of ``params`` that applies to this stream."""
    values = current(description)
    return all(values[n] == v for n, v in params.items() if n in values)


def _section(dest: Mapping[str, Any], key: str, section: str) -> Any:
    if section == "hints":
        return dest.get("BufferingHints")
    if section == "backup":
        backup_key = BACKUP_KEYS.get(key, ("", ""))[0]
        return (dest.get(backup_key) or {}).get("BufferingHints")
    return dest.get("ProcessingConfiguration")


def _hints(dest: Mapping[str, Any], key: str, section: str) -> dict[str, Any]:
    found = _section(dest, key, section) or {}
    return {
        "SizeInMBs": int(found.get("SizeInMBs", limits.DEFAULT_BUFFER_MIB)),
        "IntervalInSeconds": int(found.get("IntervalInSeconds", limits.DEFAULT_BUFFER_INTERVAL_S)),
    }


def _processing(dest: Mapping[str, Any]) -> dict[str, Any]:
    return copy.deepcopy(dict(dest.get("ProcessingConfiguration") or {"Enabled": False, "Processors": []}))


def _set_parameter(processor: dict[str, Any], name: str, value: str) -> None:
    parameters: list[dict[str, Any]] = processor.setdefault("Parameters", [])
    for p in parameters:
        if p.get("ParameterName") == name:
            p["ParameterValue"] = value
            return
    parameters.append({"ParameterName": name, "ParameterValue": value})


def _request(
    stream: str, description: Mapping[str, Any], destination_id: str, key: str, update: dict[str, Any]
) -> dict[str, Any]:
    return {
        "DeliveryStreamName": stream,
        "CurrentDeliveryStreamVersionId": str(description["VersionId"]),
        "DestinationId": destination_id,
        UPDATE_KEY[key]: update,
    }

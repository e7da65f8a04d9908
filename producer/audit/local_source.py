"""The embedded local Firehose's output: its delivery log and the objects it names.

The log (OUTPUT_DIR/_firehose/delivery-log.jsonl) has one line per object written, with the
stream, destination label, key, size and delivery time, so freshness and object sizes are
exact. An object named in the log but gone from disk is reported; its records count as missing.
One that ``run --keep-output`` deleted is logged as ``{"pruned": KEY}`` (local/prune.py): the
audit says how many objects and records it could no longer check instead.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import orjson

from producer.audit import objects, trace
from producer.audit.findings import ObjectStat, StreamFindings
from producer.audit.runinfo import RunInfo
from producer.errors import UsageError

DELIVERY_LOG = Path("_firehose") / "delivery-log.jsonl"
ERROR_LABEL = "s3-error:"
DELIVERED_LABELS = frozenset({"s3", "opensearch"})


# Untraced error records (cut short before their run_id) count for a run when their object's
# arrivals fall inside its window, widened by this much for clock steps and the last flush.
WINDOW_SLACK_S = 2.0


def read_local(output_dir: Path, run: RunInfo, streams: Iterable[str]) -> dict[str, StreamFindings]:
    log = output_dir / DELIVERY_LOG
    if not log.is_file():
        raise UsageError(f"{log}: no delivery log; was this output folder written by the local Firehose?")
    wanted = set(streams)
    found: dict[str, StreamFindings] = {}
    pruned = {str(e["pruned"]) for e in _entries(log) if "pruned" in e}
    for entry in _entries(log):
        stream = entry.get("stream")
        if stream not in wanted:
            continue
        label = str(entry.get("destination", ""))
        key = str(entry.get("key", ""))
        if label in DELIVERED_LABELS:
            findings = found.setdefault(stream, StreamFindings(stream, label))
            findings.destination = label
            _read_delivered(output_dir, run.run_id, entry, key, findings, key in pruned)
        elif label.startswith(ERROR_LABEL):
            findings = found.setdefault(stream, StreamFindings(stream, "s3"))
            in_window = _in_window(entry, run.window)
            _read_errors(output_dir / key, run.run_id, label.removeprefix(ERROR_LABEL), findings, in_window)
        # "s3-backup" (AllDocuments copies of OpenSearch documents) is neither delivery nor error.
    for name in wanted - found.keys():
        found[name] = StreamFindings(name, "opensearch" if name.endswith("-opensearch") else "s3")
    return found


def _entries(log: Path) -> Iterable[dict[str, Any]]:
    with log.open("rb") as f:
        for line in f:
            if not line.strip():
                continue
            try:
                entry = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue  # a line cut by a crash mid-append; the objects themselves are atomic
            if isinstance(entry, dict):
                yield entry


def _read_delivered(
    output_dir: Path, run_id: str, entry: dict[str, Any], key: str, findings: StreamFindings, pruned: bool
) -> None:
    path = output_dir / key
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        if pruned:
            findings.pruned_objects += 1
            findings.pruned_records += int(entry.get("records", 0))
        else:
            findings.objects_gone.append(key)
        return
    delivered_at = _float(entry.get("delivered_at"))
    mine, oldest = objects.tally(findings, data, run_id, delivered_at)
    if mine:
        findings.objects.append(
            ObjectStat(
                key=key,
                records=mine,
                bytes=int(entry.get("bytes", len(data))),
                delivered_at=delivered_at,
                first_arrival=_float(entry.get("first_arrival")),
                last_arrival=_float(entry.get("last_arrival")),
                oldest_event=oldest,
            )
        )


def _in_window(entry: dict[str, Any], window: tuple[float, float] | None) -> bool:
    first, last = _float(entry.get("first_arrival")), _float(entry.get("last_arrival"))
    if window is None or first is None or last is None:
        return False
    return first <= window[1] + WINDOW_SLACK_S and last >= window[0] - WINDOW_SLACK_S


def _read_errors(path: Path, run_id: str, error_type: str, findings: StreamFindings, in_window: bool) -> None:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return
    for _code, raw in objects.error_envelopes(data):
        found = trace.from_record(raw, run_id)
        if found is None:
            if in_window:
                findings.errored(error_type, None)
        elif found.run_id == run_id:
            findings.errored(error_type, found.seq)


def _float(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) else None

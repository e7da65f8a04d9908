"""``firehose-loadgen merge``: the shards' summaries under ``--results-url`` turned into the run's
one summary, as ``run --workers`` does for its workers (workers/merge.merge_parts): counters
summed, latency histograms merged, cost priced again, checks judged on the whole, and every
shard that is missing (killed, never started) or failed named. A missing shard makes the run
``complete: false`` and the exit code 4: its records are unaccounted for.

The merged summary goes to ``RUN_ID/summary.json`` in the store and to
``OUTPUT_DIR/runs/RUN_ID.json``, where ``audit --run-id`` reads it; the shards' spools are
copied next to it (``OUTPUT_DIR/dead-letter/RUN_ID.shard-I-of-N.jsonl``) for the audit.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from producer.checks.expr import Check
from producer.errors import EXIT_CHECK_FAILED, EXIT_DEAD_LETTERED, EXIT_OK, UsageError
from producer.results.store import MERGED_KEY, SHARDS, SPOOLS, ResultsStore, open_store
from producer.results.summing import merge_parts, merged_checks, reprice
from producer.results.url import ResultsUrl, parse_shard_name, shard_name
from producer.summary import RunSummary, run_summary_paths

# A shard's own exit code that the merge reports as a failure of that shard (2: it refused
# its options, 3: it could not use its streams, 4: its own books did not balance).
_FINE_CODES = (EXIT_OK, EXIT_DEAD_LETTERED, EXIT_CHECK_FAILED)


@dataclass(frozen=True, slots=True)
class MergeRequest:
    run_id: str
    url: ResultsUrl
    region: str
    output_dir: Path
    expect: int | None = None
    checks: tuple[Check, ...] = ()
    summary_json: Path | None = None


async def merge_run(request: MergeRequest) -> RunSummary:
    async with open_store(request.url, request.run_id, request.region) as store:
        shards = await _read_shards(store)
        counts = {count for _, count in shards}
        if not shards and request.expect is None:
            raise UsageError(
                f"no shard of run {request.run_id!r} under {store.where}{SHARDS}/; check --run-id and "
                "--results-url (or pass --expect N to report the missing shards)"
            )
        if len(counts) > 1:
            raise UsageError(
                f"the shards under {store.where}{SHARDS}/ were started with different --shard-count "
                f"({', '.join(map(str, sorted(counts)))}); merge one run at a time"
            )
        started_as = counts.pop() if counts else None
        if request.expect is not None and started_as is not None and request.expect != started_as:
            raise UsageError(
                f"--expect {request.expect}, but the shards were started with --shard-count {started_as}"
            )
        expected = request.expect or started_as or 0
        parts = [shards[key] for key in sorted(shards)]
        spools = [await _copy_spool(store, request, index, count) for index, count in sorted(shards)]
        summary = _summary(request, parts, [p for p in spools if p is not None])
        found = sorted(index for index, _ in shards)
        missing = [i for i in range(expected) if i not in found]
        failed: list[dict[str, Any]] = [
            {"shard": index, "exit_code": data.get("exit_code")}
            for (index, _), data in sorted(shards.items())
            if data.get("exit_code") not in _FINE_CODES
        ]
        summary.shards = {"expected": expected, "found": found, "missing": missing, "failed": failed}
        # A shard that was itself a --workers run may be incomplete (a worker died).
        summary.complete = not missing and all(p.get("complete") is not False for p in parts)
        summary.checks = merged_checks(request.checks, summary, parts)
        body = summary.to_json()
        await store.put(MERGED_KEY, body)
    summary.write(run_summary_paths(request.output_dir, request.run_id, request.summary_json))
    for index in missing:
        print(
            f"error: {shard_name(index, expected)} of run {request.run_id} left no summary under "
            f"{request.url.describe(request.run_id)}{SHARDS}/ (killed, or still running): its records "
            "are unaccounted for",
            file=sys.stderr,
        )
    for entry in failed:
        print(
            f"error: {shard_name(int(entry['shard']), expected)} of run {request.run_id} ended with "
            f"exit code {entry['exit_code']}",
            file=sys.stderr,
        )
    return summary


async def _read_shards(store: ResultsStore) -> dict[tuple[int, int], dict[str, Any]]:
    out: dict[tuple[int, int], dict[str, Any]] = {}
    for name in await store.names(SHARDS):
        if not name.endswith(".json"):
            continue
        key = parse_shard_name(name[: -len(".json")])
        if key is None:
            continue
        body = await store.get(f"{SHARDS}/{name}")
        try:
            data = orjson.loads(body or b"")
            RunSummary.from_dict(data)
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise UsageError(f"{store.where}{SHARDS}/{name}: not a run summary ({exc})") from None
        out[key] = data
    return out


async def _copy_spool(store: ResultsStore, request: MergeRequest, index: int, count: int) -> Path | None:
    """The shard's spool as a local file the audit can read, when it left one."""
    name = shard_name(index, count)
    body = await store.get(f"{SPOOLS}/{name}.jsonl")
    if body is None:
        return None
    path = request.output_dir / "dead-letter" / f"{request.run_id}.{name}.jsonl"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body)
    except OSError as exc:
        raise UsageError(
            f"cannot write {path}: {exc.strerror or exc}; pass a writable --output-dir"
        ) from None
    return path


def _summary(request: MergeRequest, parts: Sequence[dict[str, Any]], spools: Sequence[Path]) -> RunSummary:
    summed = merge_parts(parts)
    first = parts[0] if parts else {}
    # The shards ran side by side: the run lasted as long as its longest shard.
    window = max((float((p.get("cost") or {}).get("rate_window_s") or 0) for p in parts), default=0.0)
    region = next(
        (str(p["cost"]["region"]) for p in parts if (p.get("cost") or {}).get("region")), request.region
    )
    summed["cost"] = reprice(region, summed, parts, window) if parts else None
    head = {
        "run_id": request.run_id,
        "profile": first.get("profile"),
        "target": first.get("target") or "",
        "duration_s": max((float(p.get("duration_s") or 0) for p in parts), default=0.0),
        "buffer_hints": first.get("buffer_hints"),
    }
    summary = RunSummary.from_dict(
        {k: v for k, v in summed.items() if k not in head}
        | head
        | {
            "dead_letter_path": str(spools[0]) if len(spools) == 1 else None,
            "dead_letter_paths": [str(p) for p in spools],
        }
    )
    summary.aborted = next((p["aborted"] for p in parts if (p.get("aborted") or {}).get("check")), None)
    return summary

"""``run --keep-output``: delivered objects older than D are deleted (only those the delivery
log names), each recorded in the log, and the audit says what it could no longer check instead
of calling the objects gone."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from producer.audit.runner import AuditRequest, run_audit
from producer.local.prune import OutputPruner
from tests.integration.audit_support import delivery_log, traced_run


def test_old_objects_are_pruned_and_the_audit_says_what_it_could_not_check(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with traced_run(out) as run:
        for _ in range(3):
            run.generate(200, pause_s=1.2)  # an object a second per stream
    bystander = out / "notes.txt"  # not the Firehose's: never touched
    bystander.write_text("mine")
    delivered = [e for e in delivery_log(out) if e["destination"] in ("s3", "opensearch")]
    assert len(delivered) >= 6
    newest = max(e["delivered_at"] for e in delivered)
    # Keep 2 s of output, as seen 1.5 s after the last delivery: the first objects go.
    pruner = OutputPruner(out, keep_s=2.0, clock=lambda: newest + 1.5)
    gone = pruner.prune_once()
    older = [e for e in delivery_log(out) if "key" in e and e["delivered_at"] < newest - 0.5]
    assert gone == len(older) > 0
    assert all(not (out / e["key"]).exists() for e in older)
    assert all((out / e["key"]).exists() for e in delivered if e["delivered_at"] >= newest - 0.5)
    assert bystander.read_text() == "mine"
    assert pruner.prune_once() == 0  # nothing twice
    totals = pruner.summary()
    assert totals["objects"] == gone and totals["records"] == sum(e["records"] for e in older)
    pruned_lines = [e for e in delivery_log(out) if "pruned" in e]
    assert sorted(e["pruned"] for e in pruned_lines) == sorted(e["key"] for e in older)

    report = asyncio.run(run_audit(AuditRequest(run_id=run.run_id, output_dir=out)))
    for stream in report.streams:
        assert stream.objects_gone == []  # pruned, not gone
        assert stream.missing > 0
        assert any("run --keep-output deleted" in note for note in stream.notes), stream.notes


def test_a_running_pruner_keeps_up_with_the_log(tmp_path: Path) -> None:
    """Objects logged after a pass are read on the next one (the log is read from where it
    stopped, a line being written is left for later)."""
    out = tmp_path / "out"
    with traced_run(out) as run:
        run.generate(50, pause_s=1.2)
        pruner = OutputPruner(out, keep_s=0.5)
        time.sleep(0.6)
        first = pruner.prune_once()
        run.generate(50, pause_s=1.2)
        time.sleep(0.6)
        second = pruner.prune_once()
    assert first >= 2 and second >= 2

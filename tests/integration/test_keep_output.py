"""``run --keep-output``: delivered objects older than D are deleted (only those the delivery
log names), each recorded in the log, and the audit says what it could no longer check instead
of calling the objects gone."""

from __future__ import annotations

import asyncio
from pathlib import Path

from producer.audit.runner import AuditRequest, run_audit
from producer.local.delivery import DeliveryLog
from producer.local.prune import OutputPruner
from tests.integration.audit_support import S3, delivery_log, traced_run


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
    # An object logged after a pass is read on the next: the log is read on from where it stopped.
    late = out / "realtime-data-bucket" / "late" / "object.gz"
    late.parent.mkdir(parents=True)
    late.write_bytes(b"x" * 10)
    DeliveryLog(out).append({"stream": S3, "destination": "s3", "key": "realtime-data-bucket/late/object.gz"}
                            | {"records": 1, "bytes": 10, "delivered_at": newest - 10})  # fmt: skip
    assert pruner.prune_once() == 1 and not late.exists() and not late.parent.exists()
    totals = pruner.summary()
    assert totals["objects"] == gone + 1 and totals["records"] == sum(e["records"] for e in older) + 1
    pruned_lines = [e for e in delivery_log(out) if "pruned" in e]
    expected = [e["key"] for e in older] + ["realtime-data-bucket/late/object.gz"]
    assert sorted(e["pruned"] for e in pruned_lines) == sorted(expected)

    report = asyncio.run(run_audit(AuditRequest(run_id=run.run_id, output_dir=out)))
    for stream in report.streams:
        assert stream.objects_gone == []  # pruned, not gone
        assert stream.missing > 0
        assert any("run --keep-output deleted" in note for note in stream.notes), stream.notes

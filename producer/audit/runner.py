"""One audit: pick a source per stream, read it, reconcile, and collect the report."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from producer.audit.findings import StreamFindings
from producer.audit.hints import BufferHints
from producer.audit.local_source import DELIVERY_LOG, read_local
from producer.audit.opensearch_source import READ_METHOD, read_opensearch
from producer.audit.reconcile import StreamAudit, reconcile
from producer.audit.runinfo import RunInfo, load_run
from producer.audit.s3_source import read_s3
from producer.aws import clients as aws
from producer.aws.sigv4 import default_signer
from producer.errors import UsageError


@dataclass(frozen=True, slots=True)
class AuditRequest:
    run_id: str
    output_dir: Path
    s3_bucket: str | None = None
    s3_prefix: str = ""
    aws: aws.AwsSettings = field(default_factory=lambda: aws.AwsSettings("us-east-1"))
    opensearch_url: str | None = None
    opensearch_index: str = "realtime-events*"
    hints: dict[str, BufferHints] = field(default_factory=dict)


@dataclass(slots=True)
class AuditReport:
    run_id: str
    profile: str
    target: str
    events_generated: int
    duration_s: float
    streams: list[StreamAudit]
    skipped: dict[str, str] = field(default_factory=dict)  # stream -> why it was not audited
    cloudwatch: dict[str, dict[str, list[list[float]]]] | None = None
    label: str | None = None  # the buffer setting, in a comparison
    # soak: the run's Firehose charges with the objects this setting made (audit/soak.py)
    cost: dict[str, Any] | None = None
    audited_at: float = field(default_factory=time.time)

    @property
    def clean(self) -> bool:
        return all(s.clean for s in self.streams)

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "profile": self.profile,
            "target": self.target,
            "label": self.label,
            "events_generated": self.events_generated,
            "duration_s": self.duration_s,
            "audited_at": self.audited_at,
            "clean": self.clean,
            "streams": {s.stream: s.to_dict() for s in self.streams},
            "skipped": self.skipped,
            "cloudwatch": self.cloudwatch,
            "cost": self.cost,
        }


def is_opensearch(stream: str) -> bool:
    # The project's naming convention: the OpenSearch stream is the S3 stream's name + "-opensearch".
    return stream.endswith("-opensearch")


async def run_audit(request: AuditRequest, run: RunInfo | None = None) -> AuditReport:
    run = run or load_run(request.output_dir, request.run_id)
    names = list(run.streams)
    found: dict[str, StreamFindings] = {}
    s3_streams = [n for n in names if not is_opensearch(n)]
    if request.s3_bucket and s3_streams:
        found |= await read_s3(request.aws, request.s3_bucket, request.s3_prefix, run.run_id, s3_streams)
    if request.opensearch_url:
        signer = await default_signer(request.opensearch_url, request.aws.region, READ_METHOD)
        for name in (n for n in names if is_opensearch(n)):
            found[name] = await read_opensearch(
                request.opensearch_url, request.opensearch_index, run.run_id, name, signer
            )
    rest = [n for n in names if n not in found]
    skipped: dict[str, str] = {}
    if rest and (request.output_dir / DELIVERY_LOG).is_file():
        found |= read_local(request.output_dir, run, rest)
    else:
        for name in rest:
            skipped[name] = "no source: pass --s3-bucket or --opensearch-url, or audit a local output folder"
    if not found:
        raise UsageError(
            f"nothing to audit for run {run.run_id}: {request.output_dir} has no {DELIVERY_LOG}; "
            "pass --s3-bucket and/or --opensearch-url"
        )
    audits = [reconcile(run, found[name], request.hints.get(name)) for name in names if name in found]
    return AuditReport(
        run_id=run.run_id,
        profile=run.summary.profile or "",
        target=run.summary.target,
        events_generated=run.events_generated,
        duration_s=run.summary.duration_s,
        streams=audits,
        skipped=skipped,
    )

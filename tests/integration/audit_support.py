"""Traced runs made by hand for the audit tests, until `run` stamps run_id/seq on every event:
records with the trace fields are sent through a real local Firehose (botocore client), and a
run summary is written the way producer/app.py writes one."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from producer import pipeline
from producer.audit.local_endpoint import BackgroundLocalFirehose
from producer.local.server import LocalOptions

S3 = "audit-s3"
OPENSEARCH = "audit-s3-opensearch"
# A Lambda processor: the local Firehose runs deploy/lambda/transform.py for it.
LAMBDA = {
    "Enabled": True,
    "Processors": [
        {
            "Type": "Lambda",
            "Parameters": [
                {
                    "ParameterName": "LambdaArn",
                    "ParameterValue": "arn:aws:lambda:us-east-1:000000000000:function:transform",
                }
            ],
        }
    ],
}


def new_run_id() -> str:
    # The producer's format (producer/app.py new_run_id): the audit reads the start time from it.
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-test01"


def event(run_id: str, seq: int, **extra: Any) -> bytes:
    now = time.time()
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now * 1000) % 1000:03d}Z"
    body: dict[str, Any] = {
        "run_id": run_id,
        "seq": seq,
        "event_id": f"{seq:08d}-0000-4000-8000-000000000000",
        "user_id": "u1",
        "event_type": "purchase",
        "amount": 12.5,
        "timestamp": stamp,
        "source": "web",
    }
    body.update(extra)
    return orjson.dumps(body, option=orjson.OPT_APPEND_NEWLINE)


@dataclass
class TracedRun:
    output_dir: Path
    run_id: str
    streams: tuple[str, ...]
    url: str = ""
    client: Any = None
    generated: int = 0
    accepted: dict[str, int] = field(default_factory=dict)

    def send(self, records: list[bytes], streams: Iterable[str] | None = None, resend: bool = False) -> None:
        """PutRecordBatch in 500s; fails the test if the endpoint refuses any record. A resend is
        not counted as accepted again (the producer counts each record once)."""
        for name in streams or self.streams:
            for i in range(0, len(records), 500):
                chunk = records[i : i + 500]
                answer = self.client.put_record_batch(
                    DeliveryStreamName=name, Records=[{"Data": r} for r in chunk]
                )
                assert answer["FailedPutCount"] == 0
                if not resend:
                    self.accepted[name] = self.accepted.get(name, 0) + len(chunk)

    def generate(self, count: int, pause_s: float = 0.0, **extra: Any) -> list[bytes]:
        """``count`` new events (the next seqs), sent to every stream."""
        records = [event(self.run_id, self.generated + i, **extra) for i in range(count)]
        self.generated += count
        self.send(records)
        if pause_s:
            time.sleep(pause_s)
        return records

    def write_summary(self, dead_letters: Sequence[tuple[str, bytes]] = ()) -> None:
        streams = {
            name: {
                "sent": self.accepted.get(name, 0) + sum(1 for s, _ in dead_letters if s == name),
                "accepted": self.accepted.get(name, 0),
                "dead_lettered": sum(1 for s, _ in dead_letters if s == name),
                "retried_records": 0,
                "throttled_records": 0,
                "failed_requests": 0,
                "possible_duplicates": 0,
            }
            for name in self.streams
        }
        spool = self.output_dir / "dead-letter" / f"{self.run_id}.jsonl"
        if dead_letters:
            spool.parent.mkdir(parents=True, exist_ok=True)
            spool.write_bytes(
                b"".join(
                    orjson.dumps(
                        {"stream": s, "reason": "RetriesExhausted", "data": base64.b64encode(d).decode()}
                    )
                    + b"\n"
                    for s, d in dead_letters
                )
            )
        summary = {
            "run_id": self.run_id,
            "profile": "hand-made",
            "target": f"endpoint {self.url}",
            "duration_s": 1.0,
            "events_generated": self.generated,
            "streams": streams,
            "dead_letter_path": str(spool) if dead_letters else None,
        }
        path = self.output_dir / "runs" / f"{self.run_id}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(orjson.dumps(summary))


def stream_requests(interval_s: int = 1, size_mib: int = 1, transform: bool = False) -> list[dict[str, Any]]:
    s3 = pipeline.s3_stream_request(S3, interval_s, size_mib)
    if transform:
        s3["ExtendedS3DestinationConfiguration"]["ProcessingConfiguration"] = LAMBDA
    return [s3, pipeline.opensearch_stream_request(OPENSEARCH, interval_s, size_mib)]


@contextmanager
def traced_run(output_dir: Path, interval_s: int = 1, transform: bool = False) -> Iterator[TracedRun]:
    """A local Firehose with the two test streams; stopping it delivers every buffered record."""
    config = output_dir / "_test-streams.json"
    output_dir.mkdir(parents=True, exist_ok=True)
    config.write_bytes(orjson.dumps(stream_requests(interval_s, transform=transform)))
    import botocore.session

    with BackgroundLocalFirehose(LocalOptions(output_dir=output_dir, stream_config=config)) as local:
        client = botocore.session.get_session().create_client(
            "firehose",
            region_name="us-east-1",
            endpoint_url=local.url,
            aws_access_key_id="test",
            aws_secret_access_key="test",
        )
        run = TracedRun(output_dir, new_run_id(), (S3, OPENSEARCH), local.url, client)
        yield run
    if not (output_dir / "runs" / f"{run.run_id}.json").exists():
        run.write_summary()


def delivery_log(output_dir: Path) -> list[dict[str, Any]]:
    path = output_dir / "_firehose" / "delivery-log.jsonl"
    return [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]

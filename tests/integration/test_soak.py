"""`firehose-loadgen soak` end to end on 127.0.0.1: each setting applied with UpdateDestination
to a `local serve` built from the shipped template, the streams left exactly as found (also
after SIGINT), bad settings refused before anything changes, a stale version handled, and the
local soak running the shipped pipeline."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import botocore.session
import orjson
import pytest

from producer import pipeline
from producer.audit import apply
from producer.audit import settings as vocabulary
from producer.audit.parquet import rows_as_json
from producer.errors import StreamUnusable
from producer.firehose.client import ClientSettings, open_client
from producer.local.process import ready_url
from tests.helpers import REPO, SilentServer, run_cli

TEMPLATE = REPO / "deploy" / "pipeline.yaml"
# The shipped template with short intervals, so that a soak takes seconds.
SHORT = [
    f"--param={name}=1"
    for name in (
        "S3BufferIntervalSeconds",
        "OpenSearchBufferIntervalSeconds",
        "ProcessorBufferIntervalSeconds",
    )
]
S3, OPENSEARCH = pipeline.DEFAULT_STREAMS


def _client(url: str) -> Any:
    return botocore.session.get_session().create_client(
        "firehose",
        region_name="us-east-1",
        endpoint_url=url,
        aws_access_key_id="t",
        aws_secret_access_key="t",
    )


def _describe(url: str) -> dict[str, dict[str, Any]]:
    client = _client(url)
    return {
        name: client.describe_delivery_stream(DeliveryStreamName=name)["DeliveryStreamDescription"]
        for name in pipeline.DEFAULT_STREAMS
    }


def _as_found(before: dict[str, dict[str, Any]], after: dict[str, dict[str, Any]]) -> None:
    """Equal apart from what every update changes (VersionId and, as in AWS, LastUpdateTimestamp)."""
    changing = ("VersionId", "LastUpdateTimestamp")
    for name in before:
        was = {k: v for k, v in before[name].items() if k not in changing}
        now = {k: v for k, v in after[name].items() if k not in changing}
        assert now == was, name


class Serve:
    def __init__(self, out: Path, *options: str) -> None:
        command = [sys.executable, "-m", "producer", "local", "serve", "--port", "0", "--output", str(out)]
        command += ["--template", str(TEMPLATE), *SHORT, *options]
        self.out = out
        self.proc = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        url = ready_url(line)
        assert url is not None, self.proc.stderr.read() if self.proc.stderr else line
        self.url = url

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Serve]:
    server = Serve(tmp_path / "out")
    try:
        yield server
    finally:
        server.stop()


def _soak_args(serve: Serve, *compare: str, duration: str = "2s") -> list[str]:
    args = ["soak", "--endpoint-url", serve.url, "--output-dir", str(serve.out), "--profile", "mixed"]
    args += ["--duration", duration, "--rate", "100", "--flush-margin", "1s", "--quiet"]
    for setting in compare:
        args += ["--compare", setting]
    return args


A = "S3BufferIntervalSeconds=2,OpenSearchBufferSizeMiB=2"
B = "S3BufferIntervalSeconds=3,ProcessorBufferSizeMB=0.5,OpenSearchBufferIntervalSeconds=2"


@pytest.fixture
def moto_cloudwatch(moto_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """moto's CloudWatch, where botocore (so the soak) reads CloudWatch."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_CLOUDWATCH", moto_url)
    return moto_url


def test_soak_applies_each_setting_and_leaves_the_streams_as_found(
    moto_cloudwatch: str, tmp_path: Path
) -> None:
    """A then B through UpdateDestination on a `local serve` that publishes its AWS/Firehose
    metrics to moto's CloudWatch every second; the soak reads them back."""
    serve = Serve(tmp_path / "out", f"--cloudwatch-endpoint-url={moto_cloudwatch}", "--cloudwatch-period=1s")
    try:
        before = _describe(serve.url)
        stem = tmp_path / "report"
        result = run_cli(
            *_soak_args(serve, A, B),
            "--max-freshness", "60s", "--min-object-size", "0.001", "--report", str(stem), "--json",
            "--cloudwatch-wait", "30s",
            timeout=120,
        )  # fmt: skip
        after = _describe(serve.url)
    finally:
        serve.stop()
    assert result.returncode == 0, result.stderr
    assert "warning" not in result.stderr, result.stderr
    _as_found(before, after)
    # Each stream was changed (and changed back): its version moved on.
    assert all(int(after[n]["VersionId"]) > int(before[n]["VersionId"]) for n in before)
    assert "restored:" in result.stderr and "are as the soak found them" in result.stderr
    report = orjson.loads(result.stdout)
    assert report == orjson.loads(stem.with_suffix(".json").read_bytes())
    assert [e["params"] for e in report["settings"]] == [
        vocabulary.parse(A).params,
        vocabulary.parse(B).params,
    ]
    assert [e["setting"] for e in report["settings"]] == [A, B]
    # The audit saw each setting on the streams while its load ran.
    audits = report["reports"]
    assert [a["streams"][S3]["hints"]["interval_s"] for a in audits] == [2, 3]
    assert [a["streams"][OPENSEARCH]["hints"]["size_mib"] for a in audits] == [2, 5]
    for entry, audit in zip(report["settings"], audits, strict=True):
        assert audit["clean"] is True
        for name in pipeline.DEFAULT_STREAMS:
            s = audit["streams"][name]
            assert s["accepted"] == s["delivered_unique"] == audit["events_generated"] > 0
        assert entry["targets"]["max_freshness_s"]["met"] is True
        assert entry["cost_per_hour_usd"] > 0 and entry["s3_put_requests"] >= 1
        # CloudWatch's figures, read back from moto: the sandbox published them.
        assert entry["lambda_invocations_source"] == "cloudwatch" and entry["lambda_invocations"] >= 2
        for name in pipeline.DEFAULT_STREAMS:
            figures = entry["streams"][name]["cloudwatch"]
            assert figures["freshness_max_s"] is not None and figures["freshness_max_s"] >= 0, figures
            assert figures["bytes_per_second_limit"] > 0 and figures["incoming_bytes_per_s_peak"] > 0, figures
        assert entry["streams"][OPENSEARCH]["cloudwatch"]["backup_freshness_max_s"] is not None
        assert audit["cloudwatch"][S3]["IncomingRecords"], audit["cloudwatch"]
    assert report["recommendation"]["setting"] in ("#1", "#2")
    assert report["restored"] is True
    html = stem.with_suffix(".html").read_text()
    assert html.count("<svg") >= 3 and "(recommended)" in html and "--max-freshness 60 s" in html


def test_sigint_during_the_second_setting_restores_too(serve: Serve) -> None:
    before = _describe(serve.url)
    proc = subprocess.Popen(
        [sys.executable, "-m", "producer", *_soak_args(serve, A, B, duration="3s")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    assert proc.stderr is not None
    seen: list[str] = []
    applied_b = 0
    deadline = time.monotonic() + 90
    while applied_b < 2 and time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        seen.append(line)
        if ": applied " + B.split(",")[0] in line:
            applied_b += 1
    assert applied_b == 2, "".join(seen)
    assert _describe(serve.url)[S3]["Destinations"][0]["ExtendedS3DestinationDescription"]["BufferingHints"][
        "IntervalInSeconds"
    ] == 3  # fmt: skip
    os.kill(proc.pid, signal.SIGINT)  # B is on the streams, its load about to start
    _, rest = proc.communicate(timeout=60)
    err = "".join(seen) + rest
    assert proc.returncode == 130, err
    assert "interrupted by SIGINT" in err and "are as the soak found them" in err, err
    _as_found(before, _describe(serve.url))


def test_sigterm_restores_and_exits_143(serve: Serve) -> None:
    before = _describe(serve.url)
    proc = subprocess.Popen(
        [sys.executable, "-m", "producer", *_soak_args(serve, A, duration="20s")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    assert proc.stderr is not None
    seen = [proc.stderr.readline() for _ in range(3)]  # the setting, then each stream applied
    assert sum(": applied " in line for line in seen) == 2, seen
    proc.send_signal(signal.SIGTERM)
    _, rest = proc.communicate(timeout=60)
    err = "".join(seen) + rest
    assert proc.returncode == 143, err
    assert "interrupted by SIGTERM" in err and "are as the soak found them" in err, err
    _as_found(before, _describe(serve.url))


@pytest.mark.parametrize(
    ("extra", "says"),
    [
        (["--compare", "S3BufferIntervalSecs=2"], "did you mean S3BufferIntervalSeconds"),
        # A good first setting is not applied when the second is bad.
        (["--compare", "S3BufferIntervalSeconds=2", "--compare", "S3BufferSizeMiB=1"], "S3BufferSizeMiB=1"),
        # Only known once the streams are described.
        (["--stream", S3, "--compare", "OpenSearchBufferSizeMiB=2"], "none of the soak's streams"),
    ],
)
def test_bad_settings_are_one_line_and_change_nothing(serve: Serve, extra: list[str], says: str) -> None:
    before = _describe(serve.url)
    result = run_cli(*_soak_args(serve), *extra, timeout=60)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and says in lines[0], result.stderr
    after = _describe(serve.url)
    assert {n: d["VersionId"] for n, d in after.items()} == {n: d["VersionId"] for n, d in before.items()}


class _Meddler:
    """The soak's client, with another client updating the stream just before each of the
    soak's first ``times`` UpdateDestination calls (a real stale version on the server)."""

    def __init__(self, inner: Any, url: str, times: int) -> None:
        self.inner = inner
        self.other = _client(url)
        self.times = times

    async def describe(self, stream: str) -> dict[str, Any]:
        result: dict[str, Any] = await self.inner.describe(stream)
        return result

    async def update_destination(self, **params: Any) -> None:
        if self.times > 0:
            self.times -= 1
            name = params["DeliveryStreamName"]
            now = self.other.describe_delivery_stream(DeliveryStreamName=name)["DeliveryStreamDescription"]
            meddle = vocabulary.apply_request(name, now, {"S3BufferSizeMiB": 100})
            assert meddle is not None
            self.other.update_destination(**meddle)
        await self.inner.update_destination(**params)


def _apply_with(url: str, times: int, interval: float, lines: list[str]) -> dict[str, dict[str, Any]]:
    async def go() -> dict[str, dict[str, Any]]:
        async with open_client(ClientSettings("us-east-1", url, allow_local_credentials=True)) as client:
            meddler = _Meddler(client, url, times)
            wanted = {S3: {"S3BufferIntervalSeconds": interval}}
            return await apply.apply(meddler, wanted, f"S3BufferIntervalSeconds={interval:g}", lines.append)

    return asyncio.run(go())


def test_a_stale_version_is_read_again_once_then_refused(serve: Serve) -> None:
    lines: list[str] = []
    done = _apply_with(serve.url, 1, 5, lines)
    hints = done[S3]["Destinations"][0]["ExtendedS3DestinationDescription"]["BufferingHints"]
    # Applied over the other client's change, which it kept (UpdateDestination merges).
    assert hints == {"IntervalInSeconds": 5, "SizeInMBs": 100}
    assert any("is stale (changed elsewhere); reading it again" in line for line in lines), lines
    lines.clear()
    with pytest.raises(StreamUnusable, match="went stale twice"):
        _apply_with(serve.url, 2, 7, lines)


def test_local_soak_runs_the_shipped_pipeline_and_latency_follows_the_intervals(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No endpoint: the embedded Firehose built from deploy/pipeline.yaml (Lambda transform,
    Parquet, AllDocuments backup), each setting applied with UpdateDestination. A record waits
    up to the processor's interval, then up to the destination's after the transform
    (data-transformation.html), so p99 latency grows by about the intervals' growth. CloudWatch
    here never answers: one warning, figures missing, the soak goes on."""
    stalled = SilentServer("stall")
    monkeypatch.setenv("AWS_ENDPOINT_URL_CLOUDWATCH", stalled.url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "t")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "t")
    out = tmp_path / "out"
    fast = "S3BufferIntervalSeconds=1,ProcessorBufferIntervalSeconds=1,OpenSearchBufferIntervalSeconds=1"
    slow = "S3BufferIntervalSeconds=4,ProcessorBufferIntervalSeconds=3,OpenSearchBufferIntervalSeconds=1"
    result = run_cli(
        "soak", "--output-dir", str(out), "--profile", "mixed", "--duration", "4s", "--rate", "100",
        "--flush-margin", "1s", "--compare", fast, "--compare", slow, "--json", "--quiet",
        "--cloudwatch-wait", "2s", "--max-freshness", "1s",
        timeout=120,
    )  # fmt: skip
    stalled.close()
    # No setting delivers within 1 s at these intervals: no recommendation, exit 5.
    assert result.returncode == 5, result.stderr
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning: CloudWatch")]
    assert len(warnings) == 1 and "unreachable" in warnings[0], result.stderr
    assert stalled.calls >= 1
    assert "(the shipped pipeline)" in result.stderr and "are as the soak found them" in result.stderr
    report = orjson.loads(result.stdout)
    assert report["recommendation"]["setting"] is None and report["recommendation"]["unmet"] == [
        "max_freshness_s"
    ]
    assert "no setting met --max-freshness (closest: p99 latency" in report["recommendation"]["line"]
    p99 = [
        {n: a["streams"][n]["latency_s"]["p99"] for n in pipeline.DEFAULT_STREAMS} for a in report["reports"]
    ]
    for audit, entry in zip(report["reports"], report["settings"], strict=True):
        assert audit["clean"] is True, audit
        assert all(row["cloudwatch"] is None for row in entry["streams"].values())
        assert "unreachable" in entry["cloudwatch_note"] and entry["lambda_invocations_source"] == "estimated"
    # S3: processor 1 -> 3 s and destination 1 -> 4 s; OpenSearch: the processor's 2 s alone.
    assert p99[1][S3] >= p99[0][S3] + 3.0, p99
    assert p99[1][S3] <= 3 + 4 + 3.0, p99  # plus the transform, on a busy machine
    assert p99[1][OPENSEARCH] >= p99[0][OPENSEARCH] + 1.2, p99
    # The S3 stream wrote Parquet, with the fields the transform adds.
    parquet = [p for p in out.rglob("*") if p.is_file() and p.read_bytes()[:4] == b"PAR1"]
    assert parquet, sorted(str(p) for p in out.rglob("*"))
    row = orjson.loads(next(rows_as_json(parquet[0].read_bytes())))
    assert {"run_id", "seq", "processing_status", "user_category", "processed_timestamp"} <= set(row)

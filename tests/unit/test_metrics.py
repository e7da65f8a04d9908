"""The Prometheus view of a run: names, labels, pre-touched series, values read live."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from producer import __version__
from producer.firehose.wire import RAW
from producer.telemetry.histogram import StreamHistograms
from producer.telemetry.metrics import DEAD_LETTER_REASONS, OUTCOMES, RunTelemetry, build_registry
from producer.telemetry.stats import StreamStats

STREAMS = ("s3-stream", "search-stream")


def _telemetry() -> RunTelemetry:
    stats = [StreamStats(name) for name in STREAMS]
    return RunTelemetry(
        run_id="run-1",
        profile="mixed",
        target="local",
        target_rate=250.0,
        streams=stats,
        histograms={n: StreamHistograms() for n in STREAMS},
    )


def _samples(telemetry: RunTelemetry) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = generate_latest(build_registry(telemetry)).decode()
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def _value(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


def test_every_series_exists_at_zero_before_anything_happens() -> None:
    samples = _samples(_telemetry())
    for stream in STREAMS:
        for outcome in OUTCOMES:
            assert _value(samples, "loadgen_records_total", stream=stream, outcome=outcome) == 0
        for reason in DEAD_LETTER_REASONS:
            assert _value(samples, "loadgen_dead_lettered_records_total", stream=stream, reason=reason) == 0
        assert _value(samples, "loadgen_throttled_records_total", stream=stream) == 0
        assert _value(samples, "loadgen_billed_bytes_total", stream=stream) == 0
        assert _value(samples, "loadgen_put_record_batch_duration_seconds_count", stream=stream) == 0
        assert (
            _value(samples, "loadgen_failures_total", stream=stream, error_code="ServiceUnavailableException")
            == 0
        )
    for source in ("web", "mobile", "iot"):
        assert _value(samples, "loadgen_events_generated_total", source=source) == 0
    assert _value(samples, "loadgen_target_rate_events_per_second") == 250.0
    assert (
        _value(samples, "loadgen_info", version=__version__, run_id="run-1", profile="mixed", target="local")
        == 1
    )


def test_scrape_reads_the_counters_as_they_move() -> None:
    telemetry = _telemetry()
    s3 = telemetry.streams[0]
    s3.sent, s3.accepted, s3.throttled_records, s3.retried_records = 1000, 990, 40, 40
    s3.dead_lettered = 10
    s3.dead_by_reason["RetriesExhausted"] = 10
    s3.failures_by_code["ServiceUnavailableException"] = 50
    s3.failures_by_code["SomethingNew"] = 2
    s3.requests, s3.failed_requests, s3.held = 7, 1, 123
    s3.bytes_sent, s3.billed_bytes = 400_000, 5_120 * 990
    telemetry.histograms["s3-stream"].request_seconds.observe(0.003)
    telemetry.histograms["s3-stream"].request_seconds.observe(0.2)
    telemetry.events_by_source["web"] = 600
    samples = _samples(telemetry)
    assert _value(samples, "loadgen_records_total", stream="s3-stream", outcome="accepted") == 990
    assert _value(samples, "loadgen_records_total", stream="s3-stream", outcome="dead_lettered") == 10
    assert _value(samples, "loadgen_records_total", stream="search-stream", outcome="accepted") == 0
    assert (
        _value(samples, "loadgen_dead_lettered_records_total", stream="s3-stream", reason="RetriesExhausted")
        == 10
    )
    assert _value(samples, "loadgen_failures_total", stream="s3-stream", error_code="other") == 2
    assert _value(samples, "loadgen_put_record_batch_requests_total", stream="s3-stream", result="ok") == 6
    assert _value(samples, "loadgen_stream_queue_records", stream="s3-stream") == 123
    assert _value(samples, "loadgen_billed_bytes_total", stream="s3-stream") == 5_120 * 990
    assert _value(samples, "loadgen_sent_bytes_total", stream="s3-stream") == 400_000
    assert (
        _value(samples, "loadgen_put_record_batch_duration_seconds_bucket", stream="s3-stream", le="0.005")
        == 1
    )
    assert (
        _value(samples, "loadgen_put_record_batch_duration_seconds_bucket", stream="s3-stream", le="+Inf")
        == 2
    )
    assert _value(
        samples, "loadgen_put_record_batch_duration_seconds_sum", stream="s3-stream"
    ) == pytest.approx(0.203)
    assert _value(samples, "loadgen_events_generated_total", source="web") == 600
    # Moving a counter after the scrape shows in the next one: nothing is cached.
    s3.accepted += 5
    assert _value(_samples(telemetry), "loadgen_records_total", stream="s3-stream", outcome="accepted") == 995


def test_promtool_accepts_the_exposition() -> None:
    promtool = shutil.which("promtool")
    assert promtool, "promtool is missing: `make deps` installs Debian's prometheus package"
    telemetry = _telemetry()
    telemetry.streams[0].accepted = 5
    text = generate_latest(build_registry(telemetry))
    result = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert not result.stdout.strip() and not result.stderr.strip(), result.stdout + result.stderr


class _HalfFailing:
    """Answers every call; the first attempt of every other record is throttled."""

    wire = RAW

    def __init__(self) -> None:
        self.seen: set[bytes] = set()

    async def put_record_batch(self, stream: str, data: list[bytes]) -> dict[str, object]:
        entries: list[dict[str, str]] = []
        for i, d in enumerate(data):
            if d not in self.seen and i % 2:
                self.seen.add(d)
                entries.append({"ErrorCode": "ServiceUnavailableException", "ErrorMessage": "Slow down."})
            else:
                entries.append({"RecordId": f"r{i}"})
        failed = sum("ErrorCode" in e for e in entries)
        return {"FailedPutCount": failed, "Encrypted": False, "RequestResponses": entries}


async def test_series_follow_a_real_channel(tmp_path: Path) -> None:
    import random as _random

    from producer.delivery.channel import ChannelSettings, StreamChannel
    from producer.delivery.retry import RetryPolicy
    from producer.delivery.spool import Spool

    telemetry = _telemetry()
    stats = telemetry.streams[0]
    channel = StreamChannel(
        stats.name,
        _HalfFailing(),
        RetryPolicy(base_s=0.001, cap_s=0.01),
        Spool(tmp_path / "dl.jsonl"),
        stats,
        ChannelSettings(linger_s=0.01),
        _random.Random(1),
        histograms=telemetry.histograms[stats.name],
    )
    channel.start()
    for i in range(1200):
        wait = channel.offer(b'{"n":%d}\n' % i)
        if wait is not None:
            await wait
    await channel.close(5.0)
    samples = _samples(telemetry)
    name = stats.name
    assert stats.accepted == 1200
    assert _value(samples, "loadgen_records_total", stream=name, outcome="accepted") == 1200
    assert (
        _value(samples, "loadgen_records_total", stream=name, outcome="failed_attempt")
        == stats.failed_record_attempts
        == 600
    )
    assert _value(samples, "loadgen_throttled_records_total", stream=name) == stats.throttled_records == 600
    assert (
        _value(samples, "loadgen_failures_total", stream=name, error_code="ServiceUnavailableException")
        == 600
    )
    calls = _value(samples, "loadgen_put_record_batch_duration_seconds_count", stream=name)
    assert calls == stats.requests >= 4  # 1200 records in batches of <= 500, plus the resends
    assert _value(samples, "loadgen_batch_records_sum", stream=name) == 1800  # 1200 + 600 resent
    assert _value(samples, "loadgen_ack_latency_seconds_count", stream=name) == 1200
    # Billed once per accepted record (each under 5 KB: 5,120 bytes), not per attempt.
    assert _value(samples, "loadgen_billed_bytes_total", stream=name) == stats.billed_bytes == 1200 * 5_120


def test_target_rate_gauge_follows_the_shape() -> None:
    telemetry = _telemetry()
    telemetry.target_rate_now = lambda: 1234.5
    assert _value(_samples(telemetry), "loadgen_target_rate_events_per_second") == 1234.5


def test_clock_gauge_is_the_monotonic_time_of_the_scrape() -> None:
    telemetry = _telemetry()
    before = time.monotonic()
    first = _value(_samples(telemetry), "loadgen_clock_seconds")
    second = _value(_samples(telemetry), "loadgen_clock_seconds")
    after = time.monotonic()
    assert before <= first <= second <= after

"""The --workers supervisor's pure parts: option passing, summing summaries and scrapes."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import generate_latest

from producer import pipeline
from producer.audit.runinfo import RunInfo
from producer.cli.main import OnFull, TargetChoice
from producer.config import RunConfig, Target, TargetKind
from producer.delivery.channel import ChannelSettings
from producer.delivery.retry import RetryPolicy
from producer.errors import EXIT_INCOMPLETE, UsageError
from producer.profile.loading import resolve_profile
from producer.sharding import Shard
from producer.summary import RunSummary, StreamSummary
from producer.telemetry.aggregate import build_aggregate_registry, parse_scrape, sum_scrapes, value
from producer.telemetry.histogram import StreamHistograms
from producer.telemetry.metrics import RunTelemetry, build_registry
from producer.telemetry.stats import COUNTS, StreamStats
from producer.workers.merge import apply_scrape, combine, exit_code, merge, scraped_counts
from producer.workers.plan import Worker, WorkerPlan, option_args, parse_workers, spool_path, worker_argv

STREAMS = ("a", "b")


def _config(tmp_path: Path, **changes: Any) -> RunConfig:
    base: dict[str, Any] = {
        "profile": resolve_profile("mixed"),
        "rate": 600.0,
        "duration_s": 4.0,
        "streams": STREAMS,
        "target": Target(TargetKind.LOCAL, "us-east-1"),
        "output_dir": tmp_path,
        "dead_letter": None,
        "summary_json": None,
        "seed": None,
        "channel": ChannelSettings(),
        "retry": RetryPolicy(),
        "shutdown_grace_s": 1.0,
        "live_interval_s": 1.0,
        "quiet": True,
    }
    return RunConfig(**(base | changes))


def _summary(sent: int, dead: int = 0, reason: str | None = None) -> dict[str, Any]:
    stream = {
        "sent": sent,
        "accepted": sent - dead,
        "dead_lettered": dead,
        "failures_by_code": {"ThrottlingException": 1},
        "dead_lettered_by_reason": {reason: dead} if reason else {},
        "target_rate": 300.0,
        "rate_limit": None,
        "stopped_reason": None,
    }
    return {
        "run_id": "r",
        "events_generated": sent,
        "streams": {name: dict(stream) for name in STREAMS},
        "schedule": {"target_events": 10, "shortfall_events": 1, "shortfall_pct": 10.0, "on_full": "block"},
    }


def _worker(tmp_path: Path, index: int, **fields: Any) -> Worker:
    return Worker(
        index=index,
        shard=Shard(index, 2),
        port=1,
        summary_path=tmp_path / f"w{index}.json",
        dead_letter=tmp_path / f"w{index}.jsonl",
        log_dir=tmp_path / f"w{index}",
        **fields,
    )


def _scrape_of(accepted: int, sent: int) -> str:
    stats = StreamStats("a", target_rate=300.0, sent=sent, accepted=accepted, held=sent - accepted)
    histograms = StreamHistograms()
    histograms.request_seconds.observe(0.003, accepted)
    telemetry = RunTelemetry("r", "mixed", "local", 300.0, [stats], {"a": histograms})
    return generate_latest(build_registry(telemetry)).decode()


def test_merge_adds_numbers_and_merges_mappings() -> None:
    merged = merge(
        [{"n": 1, "f": 0.5, "d": {"x": 1}, "s": "a", "z": None}, {"n": 2, "f": 1, "d": {"y": 2}, "s": "b"}]
    )
    assert merged == {"n": 3, "f": 1.5, "d": {"x": 1, "y": 2}, "s": "a; b", "z": None}
    assert merge([None, None]) is None
    assert merge([True, False]) is True
    assert merge([[1], [2]]) == [1, 2]


def test_combine_sums_the_workers_and_keeps_the_books_balanced(tmp_path: Path) -> None:
    workers = [
        _worker(tmp_path, 0, summary=_summary(1200), returncode=0),
        _worker(tmp_path, 1, summary=_summary(1200, dead=5, reason="Dropped"), returncode=1),
    ]
    summary = combine(_config(tmp_path), "run-1", workers, 4.2).to_dict()
    assert summary["run_id"] == "run-1" and summary["rate"] == 600.0 and summary["target"] == "local"
    assert summary["events_generated"] == 2400
    for name in STREAMS:
        s = summary["streams"][name]
        assert s["sent"] == s["accepted"] + s["dead_lettered"] == 2400
        assert s["dead_lettered_by_reason"] == {"Dropped": 5}
        assert s["failures_by_code"] == {"ThrottlingException": 2}
        assert s["target_rate"] == 600.0
    assert summary["schedule"] == {
        "target_events": 20,
        "shortfall_events": 2,
        "shortfall_pct": 10.0,
        "on_full": "block",
    }
    assert summary["seq_spaces"] == [
        {"offset": 0, "stride": 2, "events": 1200},
        {"offset": 1, "stride": 2, "events": 1200},
    ]
    assert summary["complete"] is True and summary["workers"] == {"count": 2, "failed": []}
    assert exit_code(workers) == 1  # the worst worker's: records were dead-lettered


def test_a_dead_worker_counts_with_its_last_scrape_and_fails_the_run(tmp_path: Path) -> None:
    dead = _worker(tmp_path, 1, scrape=parse_scrape(_scrape_of(accepted=90, sent=100)), returncode=-9)
    dead.scraped_at, dead.ended_at = 100.0, 101.5
    workers = [_worker(tmp_path, 0, summary=_summary(1200), returncode=0), dead]
    summary = combine(_config(tmp_path, streams=("a",)), "run-1", workers, 4.0).to_dict()
    assert summary["complete"] is False
    (failed,) = summary["workers"]["failed"]
    assert failed["signal"] == "SIGKILL" and failed["index"] == 1
    assert failed["last_seen"]["streams"]["a"]["accepted"] == 90
    assert failed["last_seen"]["age_s"] == 1.5
    assert summary["streams"]["a"]["sent"] == 1300 and summary["streams"]["a"]["accepted"] == 1290
    assert summary["events_generated"] == 1300
    # The dead worker's 10 unsettled records are lost, under its name and in the stream's books.
    assert failed["lost"] == {"a": 10} and summary["streams"]["a"]["lost"] == 10
    assert exit_code(workers) == EXIT_INCOMPLETE


def test_exit_codes_when_nothing_is_usable(tmp_path: Path) -> None:
    assert exit_code([_worker(tmp_path, 0, returncode=-9), _worker(tmp_path, 1, returncode=1)]) == 3
    assert exit_code([_worker(tmp_path, 0, returncode=2), _worker(tmp_path, 1, returncode=2)]) == 2
    assert exit_code([_worker(tmp_path, 0, returncode=0, summary=_summary(1))]) == 0


def test_scrapes_sum_series_by_series_and_info_stays_one(tmp_path: Path) -> None:
    scrapes = [parse_scrape(_scrape_of(10, 12)), parse_scrape(_scrape_of(5, 5))]
    total = sum_scrapes(scrapes)
    assert value(total, "loadgen_records", stream="a", outcome="accepted") == 15
    # A clock reading is not a part of a whole: the newest worker reading stands.
    assert value(total, "loadgen_clock_seconds") == max(value(s, "loadgen_clock_seconds") for s in scrapes)
    assert value(total, "loadgen_records", stream="a", outcome="sent") == 17
    assert value(total, "loadgen_target_rate_events_per_second") == 600
    assert [v for (n, _), v in total["loadgen_info"].samples.items() if n == "loadgen_info"] == [1.0]
    assert not any(name.startswith("process_") for name in total)
    # Re-exposed, the sums parse back to the same numbers.
    again = parse_scrape(generate_latest(build_aggregate_registry(lambda: total)).decode())
    assert value(again, "loadgen_records", stream="a", outcome="accepted") == 15
    assert (
        value(
            again,
            "loadgen_put_record_batch_duration_seconds",
            "loadgen_put_record_batch_duration_seconds_count",
            stream="a",
        )
        == 15
    )


def test_the_live_view_reads_the_summed_scrape() -> None:
    stats = [StreamStats("a")]
    histograms = {"a": StreamHistograms()}
    apply_scrape(parse_scrape(_scrape_of(10, 12)), stats, histograms)
    assert (stats[0].accepted, stats[0].sent, stats[0].held) == (10, 12, 2)
    assert histograms["a"].request_seconds.count == 10
    assert histograms["a"].request_seconds.quantile(0.5) == 0.005


def test_parse_workers() -> None:
    assert parse_workers("3", Shard(0, 1)) == 3
    assert parse_workers("auto", Shard(0, 1)) >= 1
    for bad in ("0", "abc", "-1", ""):
        with pytest.raises(UsageError, match="--workers must be a whole number >= 1 or auto"):
            parse_workers(bad, Shard(0, 1))
    with pytest.raises(UsageError, match="exceeds 65536"):
        parse_workers("2", Shard(0, 40000))


def test_worker_arguments_pass_options_on_and_set_their_own(tmp_path: Path) -> None:
    given = {
        "profile": "mixed",
        "rate": 600.0,
        "stream": ["a", "b"],
        "target": TargetChoice.local,
        "on_full": OnFull.drop,
        "no_trace_fields": False,
        "quiet": False,
        "seed": None,
        "workers": "2",
        "metrics_port": 9450,
        "output_dir": tmp_path,
    }
    options = option_args(given)
    assert options["stream"] == ["--stream", "a", "--stream", "b"]
    assert options["on_full"] == ["--on-full", "drop"]
    assert "no_trace_fields" not in options and "seed" not in options
    config = _config(tmp_path)
    w = _worker(tmp_path, 1)
    argv = worker_argv(WorkerPlan(config, 2, options), w, "run-1", "http://127.0.0.1:1")
    text = " ".join(argv)
    assert "--workers 1 " in text and "--shard-index 1 --shard-count 2" in text and "--run-id run-1" in text
    assert "--target" not in text and "--endpoint-url http://127.0.0.1:1" in text
    assert argv.count("--metrics-port") == 1 and argv.count("--output-dir") == 1
    assert "--rate 600.0" in text  # the total: each worker takes its share of it


def test_workers_send_to_the_template_streams_of_the_parents_firehose(tmp_path: Path) -> None:
    # The parent's local serve is built from the template (with its --param); a worker told
    # --template with an --endpoint-url would refuse, and without --stream it would pick the
    # reference names instead of the template's.
    options = option_args({"template": tmp_path / "t.yaml", "param": ["StreamPrefix=x"], "workers": "2"})
    config = replace(_config(tmp_path), streams=("x", "x-opensearch"))
    argv = worker_argv(WorkerPlan(config, 2, options), _worker(tmp_path, 0), "run-1", "http://127.0.0.1:1")
    assert "--template" not in argv and "--param" not in argv
    assert " ".join(argv).count("--stream ") == 2 and "--stream x --stream x-opensearch" in " ".join(argv)


def test_spool_paths_are_distinct_per_worker(tmp_path: Path) -> None:
    config = _config(tmp_path)
    assert spool_path(config, "r", 3) == tmp_path / "dead-letter" / "r.w3.jsonl"
    custom = _config(tmp_path, dead_letter=tmp_path / "dl.jsonl")
    assert spool_path(custom, "r", 0) == tmp_path / "dl.w0.jsonl"


def test_the_audit_expects_the_interleaved_seqs() -> None:
    info = RunInfo(
        "r",
        5,
        RunSummary(kind="run", target="", duration_s=0.0, streams={}),
        {},
        seq_spaces=[(0, 2, 3), (1, 2, 2)],
    )
    assert list(info.expected_seqs()) == [0, 1, 2, 3, 4]
    uneven = RunInfo(
        "r",
        5,
        RunSummary(kind="run", target="", duration_s=0.0, streams={}),
        {},
        seq_spaces=[(0, 2, 4), (1, 2, 1)],
    )
    assert list(uneven.expected_seqs()) == [0, 1, 2, 4, 6]
    assert uneven.made(6) and not uneven.made(3) and not uneven.made(8)
    plain = RunInfo("r", 3, RunSummary(kind="run", target="", duration_s=0.0, streams={}), {})
    assert list(plain.expected_seqs()) == [0, 1, 2] and not plain.made(3)


def test_stream_requests_exist_for_the_default_streams() -> None:
    assert all(
        pipeline.stream_request(name)["DeliveryStreamName"] == name for name in pipeline.DEFAULT_STREAMS
    )


def test_billed_bytes_are_summed_and_the_cost_is_priced_again_on_the_sums(tmp_path: Path) -> None:
    parts = []
    for billed in (5_120 * 1_000, 5_120 * 3_000):
        part = _summary(1200)
        for s in part["streams"].values():
            s["billed_bytes"] = billed
            s["bytes_sent"] = billed // 10
        part["cost"] = {"streams": {"a": {"features": ["format_conversion"]}, "b": {"features": []}}}
        parts.append(part)
    workers = [_worker(tmp_path, i, summary=part, returncode=0) for i, part in enumerate(parts)]
    summary = combine(_config(tmp_path), "run-1", workers, 6.0).to_dict()
    for name in STREAMS:
        assert summary["streams"][name]["billed_bytes"] == 5_120 * 4_000
    c = summary["cost"]
    # Priced on the merged bytes over the generation window (--duration 4s), not the workers'
    # own projections added up, and with the features the workers read once, not twice.
    assert c["billed_bytes"] == 2 * 5_120 * 4_000 and c["rate_window_s"] == 4.0
    assert c["billed_to_sent"] == 10.0
    assert c["streams"]["a"]["features"] == ["format_conversion"] and c["streams"]["b"]["features"] == []
    assert c["streams"]["a"]["estimated_cost_usd"] > c["streams"]["b"]["estimated_cost_usd"]


def test_a_dead_worker_s_billed_bytes_come_from_its_last_scrape(tmp_path: Path) -> None:
    stats = StreamStats("a", sent=10, accepted=10, billed_bytes=51_200, packed_events=80)
    telemetry = RunTelemetry("r", "mixed", "local", 300.0, [stats], {"a": StreamHistograms()})
    scrape = parse_scrape(generate_latest(build_registry(telemetry)).decode())
    dead = _worker(tmp_path, 1, scrape=scrape, returncode=-9)
    summary = combine(_config(tmp_path, streams=("a",)), "run-1", [dead], 4.0).to_dict()
    assert summary["streams"]["a"]["billed_bytes"] == 51_200 and summary["cost"]["billed_bytes"] == 51_200
    assert summary["streams"]["a"]["packed_events"] == 80  # --pack: the audit counts events by it
    live = [StreamStats("a")]
    apply_scrape(scrape, live, {"a": StreamHistograms()})
    assert live[0].billed_bytes == 51_200


def test_an_unknown_region_leaves_the_merged_cost_unpriced(tmp_path: Path) -> None:
    workers = [_worker(tmp_path, 0, summary=_summary(10), returncode=0)]
    config = _config(tmp_path, target=Target(TargetKind.AWS, "ap-nowhere-1"))
    error = combine(config, "run-1", workers, 4.0).to_dict()["cost"]["error"]
    assert error.startswith("no price table for ap-nowhere-1")


# The summary JSON's per-stream keys, a public contract (README, Summary): the counters table
# may not rename or drop one.
SUMMARY_KEYS = {
    "sent", "accepted", "dead_lettered", "lost", "retried_records", "failed_record_attempts",
    "throttled_records", "failed_requests", "possible_duplicates", "requests", "bytes_sent",
    "billed_bytes", "packed_events", "failures_by_code", "dead_lettered_by_reason", "target_rate",
    "rate_limit", "rate_cuts", "blocked_s", "not_taken_after_stop", "stopped_reason",
}  # fmt: skip


def test_every_counter_is_summarised_exposed_and_scraped_back_from_its_one_declaration() -> None:
    # Each counter of the table a different value: the summary, the summary read back, /metrics
    # and the --workers scrape (a dead worker's part and the live view) must all carry it.
    values = {c.name: 1_000 + 7 * i for i, c in enumerate(COUNTS)}
    values["failed_requests"] = 3  # requests counts every call, the failed ones among them
    stats = StreamStats("a")
    for name, v in values.items():
        setattr(stats, name, v)
    summary = stats.summary()
    assert set(summary) == SUMMARY_KEYS
    assert {c.name: summary[c.name] for c in COUNTS} == values
    assert StreamSummary.from_dict(summary).to_dict() == summary
    telemetry = RunTelemetry("r", "mixed", "local", 1.0, [stats], {"a": StreamHistograms()})
    scrape = parse_scrape(generate_latest(build_registry(telemetry)).decode())
    shown = {c.name: values[c.name] for c in COUNTS if c.metric is not None}
    assert len(shown) >= 13  # only rate_cuts and not_taken_after_stop are summary-only
    live = StreamStats("a")
    apply_scrape(scrape, [live], {"a": StreamHistograms()})
    assert {name: getattr(live, name) for name in shown} == shown
    dead = scraped_counts(scrape, ["a"])["streams"]["a"]
    assert {name: dead[name] for name in shown if name != "lost"} == {
        name: v for name, v in shown.items() if name != "lost"
    }


def test_workers_get_the_parent_s_stream_names_and_read_no_stack_again(tmp_path: Path) -> None:
    # The parent read the stack once (streams/resolution.py); each worker re-reading it would be
    # one CloudFormation call per worker, and a stack changed in between would split the run.
    options = option_args(
        {"stack": "pipe", "target": TargetChoice.aws, "region": "eu-west-1", "workers": "2"}
    )
    config = replace(_config(tmp_path), streams=("pipe-s3", "pipe-os"))
    argv = worker_argv(WorkerPlan(config, 2, options), _worker(tmp_path, 0), "run-1", None)
    text = " ".join(argv)
    assert "--stack" not in argv and "--stream pipe-s3 --stream pipe-os" in text
    assert "--target aws" in text and "--region eu-west-1" in text

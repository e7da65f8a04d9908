"""Every bad --check, --results-url and merge input: one line on stderr, exit 2, no traceback.
The CLI's own entry point, in this process (nothing is started before these checks)."""

from __future__ import annotations

import sys
from pathlib import Path

import orjson
import pytest

from producer.cli.main import main


def _fails(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, *args: str) -> str:
    monkeypatch.setattr(sys, "argv", ["firehose-loadgen", *args])
    with pytest.raises(SystemExit) as ended:
        main()
    err = capsys.readouterr().err
    assert ended.value.code == 2, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err, err
    return lines[0]


RUN = ("run", "--no-metrics", "--quiet", "--duration", "1s")


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--check", "nope<1"], "unknown metric 'nope'; metrics: accepted_ratio, dead_lettered_ratio"),
        (["--check", "accepted_ratio>0.9 for"], "'for' needs a duration"),
        (["--check", "accepted_ratio{stream=other}>0.9"], "'other' is not a stream of this run"),
        (["--check", "shortfall<1% abort"], "shortfall is known only at the end of the run"),
        (["--results-url", "ftp://bucket/x"], "use file://DIR or s3://BUCKET/PREFIX"),
        (["--results-url", "s3://Bad_Bucket"], "is not an S3 bucket name"),
        (["--results-url", "file://"], "name a folder"),
        (["--run-id", "has space"], "--run-id 'has space' must be 1-128 letters"),
    ],
)
def test_bad_run_options(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    args: list[str],
    says: str,
) -> None:
    assert says in _fails(capsys, monkeypatch, *RUN, "--output-dir", str(tmp_path), *args)


def test_a_results_folder_that_cannot_be_written(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "a-file").write_text("x")
    url = f"file://{tmp_path / 'a-file' / 'results'}"
    line = _fails(capsys, monkeypatch, *RUN, "--output-dir", str(tmp_path), "--results-url", url)
    assert f"cannot write {tmp_path / 'a-file' / 'results'}" in line


def test_checks_from_the_environment_and_a_profile(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("LOADGEN_CHECK", "accepted_ratio>0.9 for 3s; bad<1")
    assert "--check 'bad<1': unknown metric" in _fails(
        capsys, monkeypatch, *RUN, "--output-dir", str(tmp_path)
    )
    monkeypatch.delenv("LOADGEN_CHECK")
    profile = tmp_path / "p.yaml"
    profile.write_text("mix: {web: 1}\nchecks: ['accepted_ratio >> 2']\n")
    line = _fails(capsys, monkeypatch, *RUN, "--output-dir", str(tmp_path), "--profile", str(profile))
    assert f"{profile}: checks.0 'accepted_ratio >> 2': " in line
    # `profiles validate` says the same.
    assert f"{profile}: checks.0 'accepted_ratio >> 2': " in _fails(
        capsys, monkeypatch, "profiles", "validate", str(profile)
    )


def _shard_file(results: Path, run_id: str, name: str, body: bytes) -> None:
    folder = results / run_id / "shards"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(body)


SHARD = orjson.dumps({"run_id": "r", "target": "local", "duration_s": 1.0, "streams": {}, "exit_code": 0})


@pytest.mark.parametrize(
    ("setup", "args", "says"),
    [
        ({}, [], "no shard of run 'r' under file://"),
        ({}, ["--expect", "0"], "--expect must be at least 1, got 0"),
        (
            {"shard-0-of-3.json": SHARD},
            ["--expect", "2"],
            "--expect 2, but the shards were started with --shard-count 3",
        ),
        (
            {"shard-0-of-3.json": SHARD, "shard-0-of-2.json": SHARD},
            [],
            "were started with different --shard-count (2, 3)",
        ),
        ({"shard-0-of-1.json": b"{not json"}, [], "shard-0-of-1.json: not a run summary"),
        ({}, ["--check", "accepted_ratio>0.9 for 3s"], "for/after/abort are judged during the run"),
        ({}, ["--check", "latency<1"], "unknown metric 'latency'"),
        ({}, ["--run-id", "../up"], "--run-id '../up' must be 1-128 letters"),
        ({}, ["--results-url", "http://x"], "use file://DIR or s3://BUCKET/PREFIX"),
        ({}, ["--log-format", "xml"], "--log-format must be text or json"),
    ],
)
def test_bad_merge_input(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    setup: dict[str, bytes],
    args: list[str],
    says: str,
) -> None:
    results = tmp_path / "results"
    for name, body in setup.items():
        _shard_file(results, "r", name, body)
    base = [
        "merge",
        "--run-id",
        "r",
        "--results-url",
        f"file://{results}",
        "--output-dir",
        str(tmp_path / "o"),
    ]
    assert says in _fails(capsys, monkeypatch, *base, *args)

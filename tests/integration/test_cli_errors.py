"""Bad input: one clear line on stderr, the documented exit code, never a traceback."""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from producer.telemetry.metrics import DEFAULT_METRICS_PORT
from tests.helpers import ThreadedLocalFirehose, run_cli


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _one_error_line(stderr: str) -> str:
    assert "Traceback" not in stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert lines[0].startswith("error: ")
    return lines[0]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--rate", "-1"], "--rate must be a number of events per second > 0"),
        (["--rate", "abc"], "Invalid value for '--rate'"),
        (["--duration", "5x"], "--duration: '5x' is not a duration"),
        (["--profile", "no-such-profile"], "unknown profile 'no-such-profile'; choose one of:"),
        (["--profile", "missing.yaml"], "profile file missing.yaml does not exist"),
        (["--no-such-flag"], "No such option: --no-such-flag"),
        (["--endpoint-url", "ftp://x"], "must start with http:// or https://"),
        (["--target", "aws"], "--target aws needs a region"),
    ],
)
def test_bad_flags(tmp_path: Path, args: list[str], expected: str) -> None:
    result = run_cli("run", *args, "--output-dir", str(tmp_path))
    assert result.returncode == 2
    assert expected in _one_error_line(result.stderr)


def test_refused_endpoint(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{_closed_port()}"
    result = run_cli("run", "--endpoint-url", url, "--output-dir", str(tmp_path))
    assert result.returncode == 2
    line = _one_error_line(result.stderr)
    assert f"cannot reach the Firehose endpoint at {url}" in line


def test_missing_stream(tmp_path: Path, local_firehose: ThreadedLocalFirehose) -> None:
    result = run_cli(
        "run",
        "--endpoint-url",
        local_firehose.url,
        "--stream",
        "not-there",
        "--output-dir",
        str(tmp_path),
    )
    assert result.returncode == 2
    assert "delivery stream 'not-there' does not exist" in _one_error_line(result.stderr)


def test_aws_target_without_credentials(tmp_path: Path) -> None:
    result = run_cli("run", "--target", "aws", "--region", "eu-central-1", "--output-dir", str(tmp_path))
    assert result.returncode == 2
    assert "no AWS credentials found" in _one_error_line(result.stderr)


def test_bad_profile_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("mix: {web: 1}\nrate: {shape: constant, rate: -5}\n")
    result = run_cli("run", "--profile", str(bad), "--output-dir", str(tmp_path))
    assert result.returncode == 2
    assert f"{bad}: rate.rate: must be a number of events per second > 0" in _one_error_line(result.stderr)


@pytest.fixture
def default_metrics_port_taken() -> Iterator[None]:
    """The default metrics port held by someone else (this test, or whoever already has it)."""
    holder = socket.socket()
    try:
        holder.bind(("127.0.0.1", DEFAULT_METRICS_PORT))
        holder.listen()
    except OSError:
        pass  # already taken by another process: just as good
    try:
        yield
    finally:
        holder.close()


def test_quick_start_moves_off_a_taken_default_metrics_port(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, default_metrics_port_taken: None
) -> None:
    monkeypatch.delenv("LOADGEN_METRICS_PORT")  # as on a fresh machine: the port is only the default
    result = run_cli("run", "--rate", "20", "--duration", "1s", "--quiet", "--output-dir", str(tmp_path))
    assert result.returncode == 0, result.stderr
    found = re.search(
        r"^metrics: http://127\.0\.0\.1:(\d+)/metrics \(port (\d+) is taken", result.stdout, re.M
    )
    assert found, result.stdout
    assert int(found[2]) == DEFAULT_METRICS_PORT and int(found[1]) != DEFAULT_METRICS_PORT


@pytest.mark.parametrize("how", ["flag", "env"])
def test_an_explicit_taken_metrics_port_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, default_metrics_port_taken: None, how: str
) -> None:
    monkeypatch.delenv("LOADGEN_METRICS_PORT")
    args = ["run", "--rate", "20", "--duration", "1s", "--output-dir", str(tmp_path)]
    if how == "flag":
        args += ["--metrics-port", str(DEFAULT_METRICS_PORT)]
    else:
        monkeypatch.setenv("LOADGEN_METRICS_PORT", str(DEFAULT_METRICS_PORT))
    result = run_cli(*args)
    assert result.returncode == 2
    line = _one_error_line(result.stderr)
    assert f"cannot serve metrics on 127.0.0.1:{DEFAULT_METRICS_PORT}" in line

"""``run --control``: a real run steered live through the HTTP API, ``ctl`` and ``--workers 2``;
the accepted rate read back from /metrics follows each change. Also the token rules and
``--duration forever`` ending on SIGTERM with balanced books."""

from __future__ import annotations

import asyncio
import contextlib
import os
import pty
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import botocore.session
import orjson
import pytest
from moto.server import ThreadedMotoServer
from prometheus_client.parser import text_string_to_metric_families

from producer import pipeline
from producer.audit import objects
from producer.cli.main import main
from tests.browser import open_page
from tests.helpers import REPO, run_cli

STREAM = pipeline.S3_STREAM


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "LOADGEN_"))}
    return env | {"AWS_EC2_METADATA_DISABLED": "true", "AWS_CONFIG_FILE": os.devnull} | extra


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def request(url: str, method: str = "GET", body: object = None, token: str | None = None) -> Any:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = None if body is None else orjson.dumps(body)
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    with urllib.request.urlopen(req, timeout=10) as response:
        return orjson.loads(response.read())


@dataclass
class Controlled:
    proc: subprocess.Popen[str]
    port: int
    tmp: Path
    token: str | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def status(self) -> Any:
        return request(self.base + "/v1/status", token=self.token)

    def patch(self, body: dict[str, Any]) -> Any:
        return request(self.base + "/v1/status", "PATCH", body, self.token)

    def target_rate(self) -> float:
        """What the run's schedule asks for now (loadgen_target_rate_events_per_second)."""
        with urllib.request.urlopen(self.base + "/metrics", timeout=5) as response:
            text = response.read().decode()
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                if s.name == "loadgen_target_rate_events_per_second":
                    return float(s.value)
        raise AssertionError("no target rate in /metrics")

    def accepted(self) -> tuple[float, float]:
        """(producer clock, records accepted by the S3 stream) from one scrape."""
        with urllib.request.urlopen(self.base + "/metrics", timeout=5) as response:
            text = response.read().decode()
        clock = accepted = 0.0
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                if s.name == "loadgen_clock_seconds":
                    clock = s.value
                elif s.name == "loadgen_records_total" and s.labels == {
                    "outcome": "accepted",
                    "stream": STREAM,
                }:
                    accepted = s.value
        return clock, accepted

    def rate_over(self, window_s: float) -> float:
        """Accepted records/s over at least ``window_s`` of the producer's clock (a --workers
        parent's clock moves only when it scrapes its workers, once a second)."""
        (c0, a0) = self.accepted()
        time.sleep(window_s)
        (c1, a1) = self.accepted()
        while c1 - c0 < window_s / 2:
            time.sleep(0.05)
            (c1, a1) = self.accepted()
        return (a1 - a0) / (c1 - c0)

    def wait_up(self, timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.proc.communicate()
            try:
                if self.accepted()[1] > 0:
                    return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.2)
        raise AssertionError("the run never accepted a record")

    def finish(self, timeout_s: float = 60.0) -> tuple[int, dict[str, Any], str]:
        out, err = self.proc.communicate(timeout=timeout_s)
        summary = orjson.loads((self.tmp / "summary.json").read_bytes())
        return self.proc.returncode, summary, out + err


def start_run(tmp: Path, *extra: str, env: dict[str, str] | None = None, rate: str = "200") -> Controlled:
    port = free_port()
    args = [
        sys.executable, "-m", "producer", "run",
        "--control",
        "--rate", rate,
        "--linger", "50ms",
        "--metrics-port", str(port),
        "--output-dir", str(tmp / "out"),
        "--summary-json", str(tmp / "summary.json"),
        "--quiet",
        *extra,
    ]  # fmt: skip
    if "--duration" not in extra:
        args += ["--duration", "5m"]
    proc = subprocess.Popen(
        args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env or _env(), cwd=REPO
    )
    return Controlled(proc, port, tmp)


@pytest.fixture
def controlled(tmp_path: Path) -> Iterator[Callable[..., Controlled]]:
    runs: list[Controlled] = []

    def start(*extra: str, env: dict[str, str] | None = None, rate: str = "200") -> Controlled:
        run = start_run(tmp_path, *extra, env=env, rate=rate)
        runs.append(run)
        return run

    yield start
    for run in runs:
        if run.proc.poll() is None:
            run.proc.kill()
            run.proc.communicate()


def until(check: Callable[[], bool], timeout_s: float) -> float:
    """Seconds until ``check()`` held; fails after ``timeout_s``."""
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        if check():
            return time.monotonic() - started
    raise AssertionError(f"not within {timeout_s}s")


def steer_and_check(
    run: Controlled,
    set_rate: Callable[[float], object],
    pause: Callable[[bool], object],
    window_s: float = 0.5,
    follow_s: float = 3.0,
    stop_s: float = 1.0,
) -> None:
    """200 -> 800 events/s within ``follow_s``, 0 within ``stop_s`` of a pause, 800 again after
    resume (rates over ``window_s`` of the producer's clock)."""
    run.wait_up()
    # Steady at the start rate first (a --workers run's workers start one after the other).
    until(lambda: run.rate_over(1.0) == pytest.approx(200, rel=0.2), 10.0)
    set_rate(800)
    until(lambda: run.rate_over(window_s) > 0.85 * 800, follow_s)
    assert run.rate_over(window_s) == pytest.approx(800, rel=0.15)
    pause(True)
    until(lambda: run.rate_over(min(window_s, 0.3)) == 0.0, stop_s)
    assert run.rate_over(window_s) == 0.0  # and it stays there
    pause(False)
    until(lambda: run.rate_over(window_s) > 0.85 * 800, follow_s)


def check_books(code: int, summary: dict[str, Any], output: str) -> None:
    assert code == 0, output
    for s in summary["streams"].values():
        assert s["sent"] == s["accepted"] > 0 and s["dead_lettered"] == 0
    assert summary["schedule"]["shortfall_events"] == 0, summary["schedule"]


def _ctl(capsys: pytest.CaptureFixture[str], run: Controlled, *args: str, code: int = 0) -> str:
    """``firehose-loadgen ctl ARGS --url`` through the console entry point, in this process (a
    new interpreter per call would cost a second each)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(sys, "argv", ["firehose-loadgen", "ctl", *args, "--url", run.base])
        with pytest.raises(SystemExit) as ended:
            main()
    out, err = capsys.readouterr()
    assert ended.value.code == code, err
    return out if code == 0 else err


def test_the_api_and_ctl_steer_rate_and_pause_and_stop_with_a_drain(
    controlled: Callable[..., Controlled], capsys: pytest.CaptureFixture[str]
) -> None:
    """One run steered by both clients in turn: the rate through PATCH, pause and resume through
    ``ctl``, a bad change through each (refused with the reason, nothing changed), a new rate
    through ``ctl`` and the stop through POST."""
    run = controlled()
    steer_and_check(
        run,
        lambda rate: run.patch({"rate": rate}),
        lambda paused: _ctl(capsys, run, "pause" if paused else "resume"),
    )
    status = run.status()
    assert status["rate"] == 800 and status["state"] == "running" and status["paused_s"] >= 0.5
    assert status["streams"][STREAM]["accepted"] > 0
    shown = _ctl(capsys, run, "status")
    assert "running, rate 800/s" in shown and f"{STREAM}:" in shown
    bad = _ctl(capsys, run, "rate", "0", code=2)  # one line, exit 2
    assert "HTTP 400: rate must be a number of events per second > 0" in bad and bad.count("\n") == 1
    with pytest.raises(urllib.error.HTTPError) as refused:
        run.patch({"paused": "yes"})
    assert refused.value.code == 400 and b"paused must be true or false" in refused.value.read()
    assert run.status()["rate"] == 800 and not run.status()["paused"]
    _ctl(capsys, run, "rate", "900")
    until(lambda: run.target_rate() == 900, 2.0)
    assert request(run.base + "/v1/stop", "POST")["state"] == "stopping"
    code, summary, output = run.finish()
    check_books(code, summary, output)
    changes = [(c["change"], c["who"].split()[0]) for c in summary["control"]["changes"]]
    assert changes == [
        ("rate 200 -> 800 events/s", "api"),
        ("pause", "ctl"),
        ("resume", "ctl"),
        ("rate 800 -> 900 events/s", "ctl"),
        ("stop", "api"),
    ]
    assert all(c["who"].endswith(" 127.0.0.1") for c in summary["control"]["changes"])
    assert summary["control"]["paused_s"] >= 0.5
    assert "control: rate 200 -> 800 events/s (api 127.0.0.1" in output


def test_workers_split_a_new_rate_exactly_and_follow_pause_and_stop(
    controlled: Callable[..., Controlled],
) -> None:
    run = controlled("--workers", "2")
    # The parent's /metrics sums its workers' scrapes, taken once a second: rates over 1 s
    # windows, a second more to follow.
    steer_and_check(
        run,
        lambda rate: run.patch({"rate": rate + 1}),
        lambda paused: run.patch({"paused": paused}),
        window_s=1.0,
        follow_s=4.0,
        stop_s=2.5,
    )
    status = run.status()
    shares = [w["rate"] for w in status["workers"]]
    assert shares == [400.0, 401.0] and sum(shares) == status["rate"] == 801
    request(run.base + "/v1/stop", "POST")
    code, summary, output = run.finish(90)
    check_books(code, summary, output)
    assert [c["change"] for c in summary["control"]["changes"]] == [
        "rate 200 -> 801 events/s",
        "pause",
        "resume",
        "stop",
    ]


def test_control_off_the_loopback_needs_a_token(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "producer", "run", "--control", "--metrics-host", "0.0.0.0"],
        capture_output=True, text=True, env=_env(), cwd=REPO, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "LOADGEN_CONTROL_TOKEN" in lines[0], done.stderr


def test_forever_with_a_token_refuses_strangers_and_drains_on_sigterm(
    controlled: Callable[..., Controlled],
) -> None:
    token = "s3cret-demo-token"
    run = controlled(
        "--duration", "forever", "--metrics-host", "0.0.0.0", env=_env(LOADGEN_CONTROL_TOKEN=token)
    )
    run.wait_up()
    for token_given in (None, "wrong"):
        for method, path, body in (
            ("PATCH", "/v1/status", {"rate": 900}),
            ("POST", "/v1/stop", None),
            ("GET", "/", None),
        ):
            with pytest.raises(urllib.error.HTTPError) as refused:
                request(run.base + path, method, body, token_given)
            assert refused.value.code == 401
    run.token = token
    status = run.status()
    assert status["rate"] == 200 and status["state"] == "running" and status["duration_s"] is None
    assert status["changes"] == []
    time.sleep(1.0)
    run.proc.send_signal(signal.SIGTERM)
    code, summary, output = run.finish()
    check_books(code, summary, output)
    assert summary["control"] == {"paused_s": 0.0, "changes": []}


def _click(element: str) -> str:
    return f"document.getElementById({element!r}).click()"


async def test_the_page_steers_the_run_in_headless_chromium(
    controlled: Callable[..., Controlled], tmp_path: Path
) -> None:
    run = controlled()
    await asyncio.to_thread(run.wait_up)
    async with open_page(run.base + "/", tmp_path / "chromium") as page:
        await page.wait_for("document.getElementById('state').textContent === 'running'")
        loop = asyncio.get_running_loop()

        def on_page(script: str) -> None:
            asyncio.run_coroutine_threadsafe(page.evaluate(script), loop).result(10)

        def set_rate(rate: float) -> None:
            on_page(f"document.getElementById('rate').value = '{rate:g}'; {_click('apply')}")

        await asyncio.to_thread(steer_and_check, run, set_rate, lambda _paused: on_page(_click("pause")))
        # What the page shows is the run's: its rate, and a row per stream with the achieved rate.
        await page.wait_for("document.getElementById('rate').value === '800'")
        rows = await page.wait_for(
            "Array.from(document.querySelectorAll('#streams tr')).map(r => r.cells[0].textContent)"
        )
        assert sorted(rows) == sorted(pipeline.DEFAULT_STREAMS)
        # The achieved rate is a 2 s average the page reads once a second: back up after the pause.
        achieved = "Number(document.querySelector('#streams tr').cells[1].textContent.replace(',', ''))"
        await page.wait_for(f"{achieved} >= 680", timeout_s=5)
        assert await page.evaluate(achieved) <= 1000
        shot = await page.screenshot()
        assert shot.startswith(b"\x89PNG") and len(shot) > 20_000
        if os.environ.get("LOADGEN_PAGE_SCREENSHOT"):  # how producer/control/page-screenshot.png is made
            await asyncio.to_thread(Path(os.environ["LOADGEN_PAGE_SCREENSHOT"]).write_bytes, shot)
        await page.evaluate(_click("stop"))
        await page.wait_for("document.getElementById('state').textContent === 'stopping'")
        # Self-contained: the page fetched nothing but the run's own address.
        assert page.requests and all(u.startswith(run.base) for u in page.requests), page.requests
    code, summary, output = await asyncio.to_thread(run.finish)
    check_books(code, summary, output)
    changes = summary["control"]["changes"]
    assert [c["change"] for c in changes] == ["rate 200 -> 800 events/s", "pause", "resume", "stop"]
    assert all(c["who"] == "page 127.0.0.1" for c in changes)


def test_terminal_keys_steer_the_run_and_the_view_says_where_it_is(tmp_path: Path) -> None:
    """On a terminal (a pseudo-terminal here): + raises the rate 10%, p pauses, q stops with a
    drain; the live view shows elapsed of total, the target now, PAUSED, and the keys."""
    main_fd, child_fd = pty.openpty()
    os.set_blocking(main_fd, False)
    proc = subprocess.Popen(
        [sys.executable, "-m", "producer", "run", "--rate", "200", "--duration", "5m", "--no-metrics",
         "--output-dir", str(tmp_path / "out"), "--summary-json", str(tmp_path / "summary.json")],
        stdin=child_fd, stdout=child_fd, stderr=child_fd, env=_env(COLUMNS="160"), cwd=REPO,
    )  # fmt: skip
    os.close(child_fd)
    seen = b""

    def screen_until(text: bytes, timeout_s: float = 30.0) -> None:
        nonlocal seen
        deadline = time.monotonic() + timeout_s
        while text not in seen:
            assert time.monotonic() < deadline, seen[-2000:]
            with contextlib.suppress(BlockingIOError, OSError):
                seen += os.read(main_fd, 65536)
            time.sleep(0.05)

    try:
        screen_until(b"keys: + / - rate 10%")
        screen_until(b"of 5m00s  target now 200 events/s")
        os.write(main_fd, b"+")
        screen_until(b"control: rate 200 -> 220 events/s (keys")
        screen_until(b"target now 220 events/s")
        os.write(main_fd, b"p")
        screen_until(b"PAUSED (rate 220 events/s on resume)")
        os.write(main_fd, b"q")
        assert proc.wait(60) == 0, seen[-3000:]
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(main_fd)
    summary = orjson.loads((tmp_path / "summary.json").read_bytes())
    check_books(0, summary, "")
    changes = summary["control"]["changes"]
    assert [(c["change"], c["who"]) for c in changes] == [
        ("rate 200 -> 220 events/s", "keys"),
        ("pause", "keys"),
        ("stop", "keys"),
    ]


def test_shards_follow_a_control_document_in_s3(
    controlled: Callable[..., Controlled], tmp_path: Path
) -> None:
    """Shard 1 of 2 reads s3://demo-control/run.json (a moto server): it takes its share of the
    document's rate, pauses, and stops with a drain when the document says so."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        credentials = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
        s3 = botocore.session.get_session().create_client(
            "s3",
            region_name="us-east-1",
            endpoint_url=f"http://{host}:{port}",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        s3.create_bucket(Bucket="demo-control")
        run = controlled(
            "--shard-index", "1", "--shard-count", "2",
            "--control-from", "s3://demo-control/run.json", "--control-every", "200ms",
            env=_env(AWS_ENDPOINT_URL_S3=f"http://{host}:{port}", **credentials),
        )  # fmt: skip
        run.wait_up()
        assert run.target_rate() == 100  # its half of --rate 200
        s3.put_object(Bucket="demo-control", Key="run.json", Body=b'{"rate": 801}')
        until(lambda: run.target_rate() == 401, 3.0)  # Shard(1, 2)'s exact share of 801
        until(lambda: run.rate_over(0.5) > 0.85 * 401, 3.0)
        s3.put_object(Bucket="demo-control", Key="run.json", Body=b'{"rate": 801, "paused": true}')
        until(lambda: run.target_rate() == 0, 3.0)
        s3.put_object(Bucket="demo-control", Key="run.json", Body=b'{"rate": 801, "stop": true}')
        code, summary, output = run.finish()
    finally:
        server.stop()
    check_books(code, summary, output)
    who = "document s3://demo-control/run.json"
    # Before the document existed: said once, not every 200 ms, and nothing changed.
    assert output.count(f"control: {who}: ") == 1 and "NoSuchKey" in output, output
    assert [(c["change"], c["who"]) for c in summary["control"]["changes"]] == [
        ("rate 100 -> 401 events/s", who),
        ("pause", who),
        ("stop", who),
    ]


def test_a_backfill_makes_a_past_window_in_simulated_time(tmp_path: Path) -> None:
    """Ten simulated minutes at 20 events/s: every event, stamped inside the window, made far
    faster than real time, and reported as simulated seconds per wall second."""
    out = tmp_path / "out"
    done = run_cli(
        "run", "--rate", "20", "--sim-start", "2026-11-30T08:00:00Z", "--sim-end", "2026-11-30T08:10:00Z",
        "--no-metrics", "--quiet", "--output-dir", str(out), "--summary-json", str(tmp_path / "s.json"),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    summary = orjson.loads((tmp_path / "s.json").read_bytes())
    assert summary["events_generated"] == 20 * 600
    check_books(0, summary, "")
    simulated = summary["simulated"]
    assert simulated["start"] == "2026-11-30T08:00:00Z" and simulated["end"] == "2026-11-30T08:10:00Z"
    assert simulated["simulated_s"] == 600 and simulated["simulated_s_per_wall_s"] > 20
    stamps = sorted(
        orjson.loads(r)["timestamp"]
        for path in (out / "opensearch").rglob("*.json")
        for r in objects.records(path.read_bytes())
    )
    assert len(stamps) == 20 * 600
    # Some events carry an earlier time on purpose (a phone that was offline, a sensor's skewed
    # clock: producer/events), never a later one.
    inside = [s for s in stamps if s >= "2026-11-30T08:00:00"]
    assert len(inside) > 0.9 * len(stamps) and stamps[-1] == "2026-11-30T08:10:00.000Z"
    assert inside[0].startswith("2026-11-30T08:00:00")

"""A real Prometheus scrapes a real run; the shipped config, rules and dashboard are checked."""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.helpers import REPO

PROMETHEUS_DIR = REPO / "deploy" / "prometheus"
DASHBOARD = REPO / "deploy" / "grafana" / "loadgen-dashboard.json"


def _tool(name: str) -> str:
    path = shutil.which(name)
    assert path, f"{name} is missing: `make deps` installs Debian's prometheus package"
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as response:  # 127.0.0.1 only
        return json.load(response)


def _query(base: str, expr: str) -> list[dict[str, Any]]:
    body = _get(f"{base}/api/v1/query?" + urllib.parse.urlencode({"query": expr}))
    assert body["status"] == "success", body
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


def _dashboard_exprs() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [t["expr"] for p in dashboard["panels"] for t in p["targets"]]


def _concrete(expr: str) -> str:
    # Grafana's variables, as Grafana would substitute them.
    return expr.replace("$__rate_interval", "1m").replace("$stream", ".*")


def test_shipped_config_and_rules_pass_promtool() -> None:
    promtool = _tool("promtool")
    config = subprocess.run(
        [promtool, "check", "config", str(PROMETHEUS_DIR / "prometheus.yml")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert config.returncode == 0, config.stdout + config.stderr
    rules = subprocess.run(
        [promtool, "check", "rules", str(PROMETHEUS_DIR / "loadgen-rules.yml")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert rules.returncode == 0, rules.stdout + rules.stderr
    assert "SUCCESS: 3 rules found" in rules.stdout


@pytest.fixture
def prometheus_for(tmp_path: Path) -> Iterator[tuple[str, int]]:
    """A real Prometheus on 127.0.0.1 with the shipped config, scraping a port we choose."""
    producer_port = _free_port()
    web_port = _free_port()
    config = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text())
    config["global"]["evaluation_interval"] = "1s"
    job = config["scrape_configs"][0]
    job["scrape_interval"] = "1s"
    job["static_configs"] = [{"targets": [f"127.0.0.1:{producer_port}"]}]
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    shutil.copy(PROMETHEUS_DIR / "loadgen-rules.yml", tmp_path / "loadgen-rules.yml")
    proc = subprocess.Popen(
        [
            _tool("prometheus"),
            f"--config.file={tmp_path / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{web_port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=(tmp_path / "prometheus.log").open("wb"),
    )
    base = f"http://127.0.0.1:{web_port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if _get(f"{base}/api/v1/status/buildinfo")["status"] == "success":
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, (tmp_path / "prometheus.log").read_text()
            assert proc.poll() is None, (tmp_path / "prometheus.log").read_text()
            time.sleep(0.2)
        yield base, producer_port
    finally:
        proc.terminate()
        proc.wait(10)


def test_prometheus_scrapes_a_run_and_matches_its_summary(
    tmp_path: Path, prometheus_for: tuple[str, int]
) -> None:
    base, port = prometheus_for
    summary_path = tmp_path / "summary.json"
    producer = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "producer",
            "run",
            "--duration",
            "8s",
            "--rate",
            "300",
            "--quiet",
            "--metrics-port",
            str(port),
            "--metrics-linger",
            "4s",
            "--output-dir",
            str(tmp_path / "out"),
            "--summary-json",
            str(summary_path),
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    accepted_rate = 'sum(rate(loadgen_records_total{outcome="accepted"}[5s]))'
    saw_rate = 0.0
    while producer.poll() is None:
        result = _query(base, accepted_rate)
        if result:
            saw_rate = max(saw_rate, float(result[0]["value"][1]))
        time.sleep(1)
    _, err = producer.communicate(timeout=30)
    assert producer.returncode == 0, err.decode()
    assert saw_rate > 0, "Prometheus never saw accepted records moving"

    summary = json.loads(summary_path.read_text())
    for stream, counts in summary["streams"].items():
        scraped = _query(
            base, f'max_over_time(loadgen_records_total{{outcome="accepted",stream="{stream}"}}[2m])'
        )
        assert scraped, f"no series for {stream}"
        # The linger after the run gives Prometheus a scrape of the final numbers.
        assert float(scraped[0]["value"][1]) == counts["accepted"] > 0

    # The shipped rules loaded, and every dashboard query parses and names exported series.
    groups = _get(f"{base}/api/v1/rules")["data"]["groups"]
    assert {r["name"] for g in groups for r in g["rules"]} == {
        "LoadgenSustainedThrottling",
        "LoadgenRecordsDeadLettered",
        "LoadgenBelowTarget",
    }
    exported = {m for m in _get(f"{base}/api/v1/label/__name__/values")["data"]}
    for expr in _dashboard_exprs():
        _query(base, _concrete(expr))  # raises on a parse error (status "error", HTTP 400)
        for name in re.findall(r"\b(?:loadgen_[a-z_]+|process_[a-z_]+)\b", expr):
            assert name in exported, f"dashboard names {name}, which the producer does not export"

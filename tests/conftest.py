"""Shared fixtures. Every test runs with AWS_* and LOADGEN_* removed and AWS config files
pointed at an empty folder, so a developer's ~/.aws never changes an outcome."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import ThreadedLocalFirehose


@pytest.fixture(autouse=True)
def clean_aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    for name in list(os.environ):
        if name.startswith(("AWS_", "LOADGEN_")):
            monkeypatch.delenv(name, raising=False)
    empty = tmp_path_factory.mktemp("empty-aws")
    (empty / "config").touch()
    (empty / "credentials").touch()
    monkeypatch.setenv("AWS_CONFIG_FILE", str(empty / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(empty / "credentials"))
    # Never let a credential lookup reach an instance metadata address.
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    # Runs started by tests serve /metrics on a free port, never on the fixed default.
    monkeypatch.setenv("LOADGEN_METRICS_PORT", "0")


@pytest.fixture
def local_firehose(tmp_path: Path) -> Iterator[ThreadedLocalFirehose]:
    """A local Firehose on 127.0.0.1 in its own thread and event loop, with no streams."""
    server = ThreadedLocalFirehose(tmp_path / "endpoint-output")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def moto_url(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """moto's server (S3, CloudWatch, ...) on 127.0.0.1 in a thread. Code under test signs with
    the usual credential chain, so the environment gets keys moto accepts."""
    from moto.server import ThreadedMotoServer

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()

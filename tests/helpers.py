"""Test helpers: a local Firehose in a thread, running the CLI, reading delivered output."""

from __future__ import annotations

import asyncio
import importlib.util
import os
import select
import socket
import subprocess
import sys
import threading
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import orjson

from producer.audit import objects
from producer.local.server import LocalFirehose, LocalOptions

REPO = Path(__file__).resolve().parent.parent


def load_transform(name: str = "loadgen_transform") -> ModuleType:
    """deploy/lambda/transform.py, the file the template embeds, as a module. deploy/ is not a
    package ("lambda" is a keyword, and producer/ never imports deploy/)."""
    spec = importlib.util.spec_from_file_location(name, REPO / "deploy" / "lambda" / "transform.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class ThreadedLocalFirehose:
    """Runs LocalFirehose on its own loop so sync clients and subprocesses can use it."""

    def __init__(self, output_dir: Path, options: LocalOptions | None = None) -> None:
        self.output_dir = output_dir
        self.url = ""
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self.server = LocalFirehose(options or LocalOptions(output_dir=output_dir))

    def call(self, fn: Any, *args: Any) -> Any:
        """Run ``fn(*args)`` on the server's loop (e.g. set_faults) and return its result."""

        async def run() -> Any:
            return fn(*args)

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(30)

    def start(self) -> None:
        self._thread.start()
        # Generous deadlines: on a loaded machine start-up (a template's transform, pyarrow) is slow.
        asyncio.run_coroutine_threadsafe(self.server.start(), self._loop).result(60)
        self.url = self.server.url

    def stop(self) -> None:
        """Stop serving and deliver everything buffered (idempotent)."""
        if self._loop.is_closed():
            return
        asyncio.run_coroutine_threadsafe(self.server.stop(), self._loop).result(120)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    def botocore_client(self) -> Any:
        import botocore.session

        session = botocore.session.get_session()
        return session.create_client(
            "firehose",
            region_name="us-east-1",
            endpoint_url=self.url,
            aws_access_key_id="test",
            aws_secret_access_key="test",
        )


@dataclass
class CliResult:
    returncode: int
    stdout: str
    stderr: str


def run_cli(
    *args: str, timeout: float = 120, env: dict[str, str] | None = None, cwd: Path | None = None
) -> CliResult:
    """``python -m producer ARGS`` in a subprocess with the test's (cleaned) environment."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    proc = subprocess.run(
        [sys.executable, "-m", "producer", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=full_env,
        cwd=cwd or REPO,
    )
    return CliResult(proc.returncode, proc.stdout, proc.stderr)


def delivered_event_ids(root: Path) -> Counter[str]:
    """event_id of every record in every file under ``root``: JSON lines, gzip, or the Parquet
    rows the shipped template's S3 stream writes (read the way the audit reads them)."""
    ids: Counter[str] = Counter()
    for path in sorted(root.rglob("*")):
        if path.is_file():
            for record in objects.records(path.read_bytes()):
                ids[orjson.loads(record)["event_id"]] += 1
    return ids


def start_cli(*args: str, prefix: tuple[str, ...] = (), cwd: Path | None = None) -> subprocess.Popen[str]:
    """``python -m producer ARGS`` started in the background (for signals and RSS sampling);
    ``prefix`` runs it under another command (``unshare ...`` to make it PID 1)."""
    return subprocess.Popen(
        [*prefix, sys.executable, "-m", "producer", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ),
        cwd=cwd or REPO,
    )


def rss_kib(pid: int) -> tuple[int, int]:
    """(current RSS, peak RSS) of a live process in KiB, from /proc."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        fields[key] = value.strip()
    return int(fields["VmRSS"].split()[0]), int(fields["VmHWM"].split()[0])


class SilentServer:
    """Accepts connections on 127.0.0.1 and either never answers (``stall``) or resets them once
    the request is read (``reset``): an AWS endpoint that cannot be reached, for any service."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.held: list[socket.socket] = []
        self.calls = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.calls += 1
            conn.recv(65536)
            if self.mode == "reset":
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                conn.close()
            else:
                self.held.append(conn)

    def close(self) -> None:
        self.sock.close()
        for conn in self.held:
            conn.close()


# How long `local serve` may take to print its ready line: a loaded machine starts Python and
# pyarrow slowly.
READY_DEADLINE_S = 60.0


def start_local_serve(*options: str) -> tuple[subprocess.Popen[str], str]:
    """`local serve OPTIONS` on an ephemeral port; its URL from the ready line, waited for with a
    generous deadline rather than forever."""
    from producer.local.process import ready_url

    proc = subprocess.Popen(
        [sys.executable, "-m", "producer", "local", "serve", "--port", "0", *options],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO,
    )  # fmt: skip
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], READY_DEADLINE_S)
    url = ready_url(proc.stdout.readline()) if ready else None
    if url is None:
        proc.kill()
        raise AssertionError(f"local serve not ready: {proc.communicate(timeout=30)[1]}")
    return proc, url


def parquet_rows(out: Path) -> list[dict[str, Any]]:
    """The rows of every Parquet object the S3 stream wrote under ``out`` (raw-data/)."""
    import pyarrow.parquet as pq  # type: ignore[import-untyped,import-not-found,unused-ignore]

    files = [p for p in (out / "realtime-data-bucket" / "raw-data").rglob("*") if p.is_file()]
    assert files and all(p.read_bytes().startswith(b"PAR1") for p in files)
    return [r for p in files for r in pq.read_table(p).to_pylist()]

"""The lean send path works wherever botocore's works: one matrix of cases, run on both
``--sender lean`` and ``--sender botocore`` against servers on 127.0.0.1, must give the same
outcome counts. TLS with a private CA (made here) trusted through AWS_CA_BUNDLE, an HTTP
forward proxy and an HTTPS CONNECT proxy (a small one here, which counts what it carries),
NO_PROXY, a 200 that is an HTML page, truncated and over-long RequestResponses, 413, a
credential_process that fails for a while, an expired token, resets and a stall."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import os
import ssl
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from producer.delivery.retry import RetryPolicy
from tests.faultserver import Faults, FaultServer, deliver_to_one_stream

STREAM = "realtime-data-stream"
LOOPBACK = "127.0.0.1"
EVENTS = 120
Sender = Literal["lean", "botocore"]


# -- a private CA and a certificate for 127.0.0.1 -----------------------------------------------


@dataclass
class Pki:
    ca_file: Path
    server: ssl.SSLContext


def _name(text: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, text)])


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    folder = tmp_path_factory.mktemp("pki")
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("loadgen test CA"))
        .issuer_name(_name("loadgen test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("127.0.0.1"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), False)
        .sign(ca_key, hashes.SHA256())
    )
    ca_file = folder / "ca.pem"
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    (folder / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(folder / "cert.pem", folder / "key.pem")
    return Pki(ca_file, server)


# -- a forward and CONNECT proxy ------------------------------------------------------------------


class Proxy:
    """An HTTP proxy on 127.0.0.1: CONNECT tunnels (HTTPS) and absolute-form forwarding (HTTP).
    ``requests`` counts what it carried: CONNECTs, and forwarded request heads."""

    def __init__(self) -> None:
        self.connects = 0
        self.forwarded = 0
        self.url = ""
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def __enter__(self) -> Proxy:
        self._thread.start()
        server = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._serve, "127.0.0.1", 0), self._loop
        ).result(10)
        self.url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
        return self

    def __exit__(self, *_: object) -> None:
        async def cancel_pipes() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(cancel_pipes(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            method, target, _ = head.split(b"\r\n", 1)[0].decode().split(" ", 2)
            if method == "CONNECT":
                self.connects += 1
                host, port = target.rsplit(":", 1)
                up_reader, up_writer = await asyncio.open_connection(host, int(port))
                writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
                await writer.drain()
            else:
                self.forwarded += 1
                address = target.split("://", 1)[1].split("/", 1)[0]
                host, port = address.rsplit(":", 1)
                up_reader, up_writer = await asyncio.open_connection(host, int(port))
                up_writer.write(head)  # the fault server ignores the request target's form
            await asyncio.gather(_pipe(reader, up_writer, self), _pipe(up_reader, writer, None))
        except (ConnectionError, asyncio.IncompleteReadError, ValueError):
            pass
        finally:
            writer.close()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, proxy: Proxy | None) -> None:
    try:
        while data := await reader.read(65536):
            if proxy is not None and b"x-amz-target:" in data.lower() and not data.startswith(b"\x16"):
                proxy.forwarded += data.lower().count(b"x-amz-target:")
            writer.write(data)
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()


# -- one run of the matrix -------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    accepted: int
    dead_lettered: int
    reasons: frozenset[str]
    stopped: bool
    endpoint_accepted: int


async def _deliver(url: str, sender: Sender, tmp_path: Path, max_attempts: int = 20) -> Outcome:
    policy = RetryPolicy(base_s=0.01, cap_s=0.05, max_attempts=max_attempts)
    stats, reasons = await deliver_to_one_stream(
        url,
        sender,
        tmp_path / f"dead-{sender}.jsonl",
        EVENTS,
        policy,
        40,
        read_timeout_s=1.0,
        call_timeout_s=3.0,
    )
    return Outcome(stats.accepted, stats.dead_lettered, frozenset(reasons), bool(stats.stopped_reason), 0)


def _both(url: str, tmp_path: Path, server: FaultServer | None = None, max_attempts: int = 20) -> Outcome:
    """Run the case on both senders; they must agree. Returns the (common) outcome."""
    outcomes = {}
    senders: list[Sender] = ["botocore", "lean"]
    for sender in senders:
        before = server.total(STREAM) if server else 0
        got = asyncio.run(_deliver(url, sender, tmp_path, max_attempts))
        taken = (server.total(STREAM) - before) if server else 0
        outcomes[sender] = Outcome(got.accepted, got.dead_lettered, got.reasons, got.stopped, taken)
    assert outcomes["lean"] == outcomes["botocore"], outcomes
    return outcomes["lean"]


ALL_ACCEPTED = Outcome(EVENTS, 0, frozenset(), False, EVENTS)


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_https_with_a_private_ca_from_aws_ca_bundle(
    pki: Pki, aws_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Before: every lean call failed SSLCertVerificationError and all records were spooled.
    aws_env.setenv("AWS_CA_BUNDLE", str(pki.ca_file))
    with FaultServer(tls=pki.server) as server:
        assert server.url.startswith("https://")
        assert _both(server.url, tmp_path, server) == ALL_ACCEPTED


def test_https_without_the_ca_fails_the_same_on_both(
    pki: Pki, aws_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # The negative twin: neither path trusts a private CA it was not given.
    with FaultServer(tls=pki.server) as server:
        outcome = _both(server.url, tmp_path, server, max_attempts=2)
    assert outcome.accepted == 0 and outcome.dead_lettered == EVENTS


def test_an_http_proxy_from_the_environment(aws_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # Before: DescribeDeliveryStream (botocore) went through the proxy, PutRecordBatch (lean) not.
    with FaultServer() as server, Proxy() as proxy:
        aws_env.setenv("HTTP_PROXY", proxy.url)
        botocore_only = asyncio.run(_deliver(server.url, "botocore", tmp_path))
        through = proxy.forwarded
        assert botocore_only.accepted == EVENTS and through > 0
        lean = asyncio.run(_deliver(server.url, "lean", tmp_path))
        assert lean.accepted == EVENTS and proxy.forwarded >= 2 * through - 1
        assert server.total(STREAM) == 2 * EVENTS


def test_https_through_a_connect_proxy(pki: Pki, aws_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    aws_env.setenv("AWS_CA_BUNDLE", str(pki.ca_file))
    with FaultServer(tls=pki.server) as server, Proxy() as proxy:
        aws_env.setenv("HTTPS_PROXY", proxy.url)
        assert asyncio.run(_deliver(server.url, "botocore", tmp_path)).accepted == EVENTS
        botocore_connects = proxy.connects
        assert botocore_connects > 0
        assert asyncio.run(_deliver(server.url, "lean", tmp_path)).accepted == EVENTS
        assert proxy.connects > botocore_connects  # the lean calls tunnelled too


def test_no_proxy_is_honoured(aws_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    with FaultServer() as server, Proxy() as proxy:
        aws_env.setenv("HTTP_PROXY", proxy.url)
        aws_env.setenv("NO_PROXY", "127.0.0.1")
        assert _both(server.url, tmp_path, server) == ALL_ACCEPTED
        assert proxy.forwarded == 0 and proxy.connects == 0


@pytest.mark.parametrize(
    ("faults", "expected"),
    [
        (Faults(html_rate=0.3), ALL_ACCEPTED),  # a 200 HTML page: retried, not dead-lettered
        (Faults(max_records=10, status=413, status_code="RequestEntityTooLarge"), ALL_ACCEPTED),
        (Faults(reset_rate=0.3), ALL_ACCEPTED),
        (Faults(record_fail_rate=0.3), ALL_ACCEPTED),
    ],
    ids=["html-200", "413", "reset", "record-failures"],
)
def test_odd_answers_end_the_same(
    aws_env: pytest.MonkeyPatch, tmp_path: Path, faults: Faults, expected: Outcome
) -> None:
    with FaultServer(faults) as server:
        assert _both(server.url, tmp_path, server) == expected


@pytest.mark.parametrize("fault", ["truncated", "overlong"])
def test_wrong_length_answers_are_retried_then_given_up_the_same(
    aws_env: pytest.MonkeyPatch, tmp_path: Path, fault: str
) -> None:
    faults = Faults(truncate=fault == "truncated", overlong=fault == "overlong")
    with FaultServer(faults) as server:
        outcome = _both(server.url, tmp_path, server, max_attempts=3)
    assert outcome == Outcome(0, EVENTS, frozenset({"RetriesExhausted"}), False, 0)


def test_an_expired_token_stops_the_stream_the_same(aws_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    with FaultServer(Faults(expired_token=True)) as server:
        outcome = _both(server.url, tmp_path, server)
    assert outcome.stopped and outcome.accepted == 0 and outcome.dead_lettered == EVENTS
    assert outcome.reasons <= {"NonRetryable", "StreamStopped"}


def test_a_stall_longer_than_the_read_timeout(aws_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    with FaultServer(Faults(stall=True)) as server:
        outcome = _both(server.url, tmp_path, server, max_attempts=2)
    assert outcome == Outcome(0, EVENTS, frozenset({"RetriesExhausted"}), False, 0)


@pytest.fixture
def flaky_credential_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A profile whose credential_process works, then fails its next three runs, then works
    again; its credentials expire within botocore's mandatory refresh window, so every signing
    asks it again."""
    state = tmp_path / "calls"
    script = tmp_path / "creds.py"
    script.write_text(
        "import datetime, json, pathlib, sys\n"
        f"state = pathlib.Path({str(state)!r})\n"
        "n = int(state.read_text()) if state.exists() else 0\n"
        "state.write_text(str(n + 1))\n"
        "if 1 <= n % 100 <= 3:\n"
        "    sys.exit('refresh failed')\n"
        "exp = datetime.datetime.now(datetime.UTC) + datetime.timedelta(minutes=2)\n"
        "print(json.dumps({'Version': 1, 'AccessKeyId': 'AKIDEXAMPLE', 'SecretAccessKey': 's',\n"
        "    'SessionToken': 't', 'Expiration': exp.isoformat()}))\n"
    )
    config = tmp_path / "config"
    config.write_text(f"[default]\ncredential_process = {sys.executable} {script}\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    yield state


def test_a_credential_refresh_that_fails_then_recovers(
    flaky_credential_process: Path, tmp_path: Path
) -> None:
    # Before: the lean path spooled the batch at attempt 1 (signing ran outside error handling).
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        os.environ.pop(name, None)
    with FaultServer() as server:
        senders: list[Sender] = ["botocore", "lean"]
        for sender in senders:
            flaky_credential_process.unlink(missing_ok=True)
            outcome = asyncio.run(_deliver(server.url, sender, tmp_path))
            assert (outcome.accepted, outcome.dead_lettered) == (EVENTS, 0), sender
            assert int(flaky_credential_process.read_text()) > 4, "the refresh never failed"

"""How a stream reads answers that are not the plain ones, on both send paths, against the fault
server on 127.0.0.1: a 413 or an unknown 4xx is about one call, not the stream; per-entry
ErrorCodes count even when FailedPutCount says 0; a truncated RequestResponses is a failed call;
a connect timeout sends nothing, so duplicates nothing."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import pytest

from producer.delivery.retry import RetryPolicy
from producer.firehose.client import ClientSettings, open_client
from producer.telemetry.stats import StreamStats
from tests.faultserver import Faults, FaultServer, deliver_to_one_stream

STREAM = "realtime-data-stream"
Sender = Literal["lean", "botocore"]
SENDERS: list[Sender] = ["lean", "botocore"]


async def _send(
    url: str,
    tmp_path: Path,
    sender: Sender,
    events: int = 200,
    policy: RetryPolicy | None = None,
    batch_records: int = 100,
    connect_timeout_s: float = 2.0,
) -> tuple[StreamStats, list[str]]:
    policy = policy or RetryPolicy(base_s=0.01, cap_s=0.05, max_attempts=20)
    spool = tmp_path / f"dead-{sender}.jsonl"
    return await deliver_to_one_stream(url, sender, spool, events, policy, batch_records, connect_timeout_s)


@pytest.mark.parametrize("sender", SENDERS)
async def test_a_413_splits_the_batch_instead_of_stopping_the_stream(tmp_path: Path, sender: Sender) -> None:
    # Something in front of the endpoint refuses calls of more than 30 records with a 413.
    with FaultServer(Faults(max_records=30, status=413, status_code="RequestEntityTooLarge")) as server:
        stats, reasons = await _send(server.url, tmp_path, sender)
        assert stats.accepted == 200 and not reasons and not stats.stopped_reason
        assert server.total(STREAM) == 200 and len(server.accepted[STREAM]) == 200


@pytest.mark.parametrize("sender", SENDERS)
async def test_an_unknown_4xx_spools_that_call_and_the_stream_goes_on(tmp_path: Path, sender: Sender) -> None:
    # A third of the calls get a 4xx no retry can fix; they are given up, the rest delivered.
    faults = Faults(status_rate=0.33, status=400, status_code="SomethingNewException")
    with FaultServer(faults) as server:
        stats, reasons = await _send(server.url, tmp_path, sender, events=600, batch_records=50)
        assert not stats.stopped_reason
        assert stats.dead_lettered > 0 and set(reasons) == {"NonRetryable"}
        assert stats.accepted == server.total(STREAM) > 0


@pytest.mark.parametrize("sender", SENDERS)
async def test_entry_error_codes_count_even_when_failed_put_count_says_zero(
    tmp_path: Path, sender: Sender
) -> None:
    with FaultServer(Faults(record_fail_rate=0.3, zero_failed_count=True)) as server:
        stats, reasons = await _send(server.url, tmp_path, sender)
        # Each refused record was resent; none was taken for accepted on the count's word.
        assert stats.accepted == 200 == server.total(STREAM) and not reasons
        assert stats.retried_records > 0 and stats.failures_by_code["InternalFailure"] > 0


@pytest.mark.parametrize("sender", SENDERS)
async def test_a_truncated_answer_is_a_failed_call(tmp_path: Path, sender: Sender) -> None:
    with FaultServer(Faults(truncate=True)) as server:
        stats, reasons = await _send(
            server.url,
            tmp_path,
            sender,
            events=20,
            policy=RetryPolicy(base_s=0.01, cap_s=0.02, max_attempts=3),
        )
        assert stats.accepted == 0 and stats.dead_lettered == 20 and set(reasons) == {"RetriesExhausted"}
        assert stats.failed_requests == stats.requests == stats.failures_by_code["MalformedResponse"] > 0
        # Counted once per record, not once per attempt.
        assert stats.possible_duplicates == 20


@pytest.fixture
def unanswered_connect() -> Iterator[str]:
    """An address whose connections never complete: a listening socket with a full backlog."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(0)
    fillers = []
    try:
        # Fill the accept queue so that further SYNs are dropped and connects hang.
        for _ in range(8):
            f = socket.socket()
            f.setblocking(False)
            f.connect_ex(sock.getsockname())
            fillers.append(f)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        for f in fillers:
            f.close()
        sock.close()


@pytest.mark.parametrize("sender", SENDERS)
async def test_a_connect_timeout_is_named_so_and_duplicates_nothing(
    tmp_path: Path, sender: Sender, unanswered_connect: str
) -> None:
    stats, reasons = await _send(
        unanswered_connect,
        tmp_path,
        sender,
        events=10,
        policy=RetryPolicy(base_s=0.01, cap_s=0.02, max_attempts=2),
        connect_timeout_s=0.3,
    )
    assert stats.dead_lettered == 10 and set(reasons) == {"RetriesExhausted"}
    assert stats.failures_by_code["ConnectTimeout"] == stats.failed_requests > 0
    assert stats.possible_duplicates == 0


async def test_the_fault_server_answers_describe(tmp_path: Path) -> None:
    # The fault server is a target for `run --endpoint-url` (and a missing stream is refused).
    with FaultServer() as server:
        settings = ClientSettings(region="us-east-1", endpoint_url=server.url, allow_local_credentials=True)
        async with open_client(settings) as client:
            assert (await client.describe(STREAM))["DeliveryStreamStatus"] == "ACTIVE"
            with pytest.raises(Exception, match="ResourceNotFoundException"):
                await client.describe("nope")
    await asyncio.sleep(0)

"""StreamChannel against a scripted client: partial resend by index, give-up paths, ordering,
backpressure and shutdown. Every test checks the books: sent == accepted + dead_lettered."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from producer.delivery.channel import ChannelSettings, StreamChannel
from producer.delivery.packing import PackingStage
from producer.delivery.ratecontrol import RateControlSettings
from producer.delivery.retry import RetryPolicy
from producer.delivery.spool import Spool, SpoolEntry, read_spool
from producer.firehose import limits
from producer.firehose.errors import ApiError, TransportError
from producer.firehose.wire import BASE64, RAW, WireFormat
from producer.telemetry.stats import StreamStats

Reply = Callable[[list[bytes]], dict[str, Any]]
FAST = RetryPolicy(base_s=0.001, cap_s=0.005, max_attempts=10, record_ttl_s=60.0)


@pytest.fixture(autouse=True, params=[RAW, BASE64], ids=lambda w: w.name)
def wire(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> WireFormat:
    """Every test runs with records held as given (the stock client) and as base64 (lean)."""
    chosen: WireFormat = request.param
    monkeypatch.setattr(FakeClient, "wire", chosen)
    return chosen


class FakeClient:
    """Answers each call with ``reply(data)``; records every call and every accepted record.
    Takes records in ``wire`` form, as the real clients do, and decodes them first."""

    wire: WireFormat = RAW

    def __init__(self, reply: Reply | None = None, delay_s: float = 0.0) -> None:
        self.reply = reply or accept_all
        self.delay_s = delay_s
        self.calls: list[list[bytes]] = []
        self.accepted: Counter[bytes] = Counter()
        self.gate: asyncio.Event | None = None
        self.called = asyncio.Event()

    async def wait_for_calls(self, count: int) -> None:
        async with asyncio.timeout(5):
            while len(self.calls) < count:
                self.called.clear()
                await self.called.wait()

    def total(self) -> int:
        return sum(self.accepted.values())

    async def put_record_batch(self, stream: str, data: list[bytes]) -> dict[str, Any]:
        data = [self.wire.decode(d) for d in data]
        self.calls.append(list(data))
        self.called.set()
        if self.gate is not None:
            await self.gate.wait()
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        response = self.reply(data)
        for item, entry in zip(data, response.get("RequestResponses", []), strict=False):
            if "ErrorCode" not in entry:
                self.accepted[item] += 1
        return response


def accept_all(data: list[bytes]) -> dict[str, Any]:
    return {"FailedPutCount": 0, "RequestResponses": [{"RecordId": f"r{i}"} for i in range(len(data))]}


def fail_where(predicate: Callable[[bytes], bool], code: str = "ServiceUnavailableException") -> Reply:
    def reply(data: list[bytes]) -> dict[str, Any]:
        entries: list[dict[str, str]] = [
            {"ErrorCode": code, "ErrorMessage": "Slow down."} if predicate(d) else {"RecordId": "x"}
            for d in data
        ]
        return {"FailedPutCount": sum("ErrorCode" in e for e in entries), "RequestResponses": entries}

    return reply


def _channel(
    tmp_path: Path,
    client: Any,
    policy: RetryPolicy = FAST,
    **settings: Any,
) -> tuple[StreamChannel, Spool]:
    spool = Spool(tmp_path / "dead.jsonl")
    defaults: dict[str, Any] = {"linger_s": 0.01, "max_in_flight": 4}
    channel = StreamChannel(
        "s1",
        client,
        policy,
        spool,
        StreamStats("s1"),
        ChannelSettings(**(defaults | settings)),
        random.Random(1),
    )
    return channel, spool


def _books(channel: StreamChannel) -> None:
    s = channel.stats
    assert s.sent == s.accepted + s.dead_lettered, s.summary()
    assert s.held == 0


def _spooled(spool: Spool) -> list[SpoolEntry]:
    spool.close()
    return list(read_spool(spool.path)) if spool.path.exists() else []


async def _offer_all(channel: StreamChannel, items: list[bytes]) -> None:
    for item in items:
        wait = channel.offer(item)
        if wait is not None:
            await wait


def _items(n: int) -> list[bytes]:
    return [b'{"event_id":"%d"}' % i for i in range(n)]


async def test_only_failed_indexes_are_resent(tmp_path: Path) -> None:
    failing = {b'{"event_id":"1"}', b'{"event_id":"3"}'}
    seen: Counter[bytes] = Counter()

    def reply(data: list[bytes]) -> dict[str, Any]:
        for d in data:
            seen[d] += 1
        # Each of the two fails on its first attempt only.
        return fail_where(lambda d: d in failing and seen[d] == 1)(data)

    client = FakeClient(reply)
    channel, spool = _channel(tmp_path, client)
    channel.start()
    await _offer_all(channel, _items(5))
    await channel.close(5.0)
    assert client.calls[0] == _items(5)
    assert client.calls[1] == [b'{"event_id":"1"}', b'{"event_id":"3"}']
    assert len(client.calls) == 2
    assert all(n == 1 for n in client.accepted.values()) and len(client.accepted) == 5
    s = channel.stats
    assert s.accepted == 5 and s.retried_records == 2 and s.throttled_records == 2
    assert s.failures_by_code == Counter({"ServiceUnavailableException": 2})
    assert _spooled(spool) == []
    _books(channel)


async def test_random_partial_failures_deliver_each_record_exactly_once(tmp_path: Path) -> None:
    rng = random.Random(5)
    client = FakeClient(fail_where(lambda _d: rng.random() < 0.3))
    channel, _ = _channel(tmp_path, client, policy=RetryPolicy(0.001, 0.002, max_attempts=50))
    channel.start()
    items = _items(3_000)
    await _offer_all(channel, items)
    await channel.close(20.0)
    assert client.accepted == Counter(dict.fromkeys(items, 1))
    # A record is resent only after it failed: attempts == records + failures.
    assert (
        sum(len(c) for c in client.calls)
        == 3_000 + channel.stats.failures_by_code["ServiceUnavailableException"]
    )
    assert channel.stats.failed_record_attempts == channel.stats.throttled_records > 500
    _books(channel)


async def test_internal_failure_is_retried_not_counted_as_throttling(tmp_path: Path) -> None:
    seen: Counter[bytes] = Counter()

    def reply(data: list[bytes]) -> dict[str, Any]:
        for d in data:
            seen[d] += 1
        return fail_where(lambda d: seen[d] == 1, "InternalFailure")(data)

    channel, _ = _channel(tmp_path, FakeClient(reply))
    channel.start()
    await _offer_all(channel, _items(10))
    await channel.close(5.0)
    s = channel.stats
    assert s.accepted == 10 and s.throttled_records == 0
    assert s.failures_by_code["InternalFailure"] == 10
    assert channel.rate.cuts == 0
    _books(channel)


async def test_exhausted_records_are_spooled_with_their_last_error(tmp_path: Path) -> None:
    client = FakeClient(fail_where(lambda d: d == b'{"event_id":"2"}'))
    channel, spool = _channel(tmp_path, client, policy=RetryPolicy(0.001, 0.001, max_attempts=3))
    channel.start()
    await _offer_all(channel, _items(4))
    await channel.close(5.0)
    [entry] = _spooled(spool)
    assert entry.data == b'{"event_id":"2"}'
    assert entry.reason == "RetriesExhausted" and entry.error_code == "ServiceUnavailableException"
    assert entry.attempts == 3 and "Slow down." in entry.message
    assert 0 < entry.first_attempt_at <= entry.last_attempt_at
    assert channel.stats.dead_by_reason == Counter({"RetriesExhausted": 1})
    _books(channel)


async def test_records_past_their_ttl_are_spooled(tmp_path: Path) -> None:
    now = [0.0]
    # InternalFailure, not throttling: the frozen clock must not have to pace anything.
    client = FakeClient(fail_where(lambda _d: True, "InternalFailure"))
    spool = Spool(tmp_path / "dead.jsonl")
    channel = StreamChannel(
        "s1",
        client,
        RetryPolicy(0.001, 0.001, max_attempts=100, record_ttl_s=5.0),
        spool,
        StreamStats("s1"),
        ChannelSettings(linger_s=0.01),
        random.Random(1),
        clock=lambda: now[0],
    )
    channel.start()
    await _offer_all(channel, _items(3))
    await client.wait_for_calls(3)
    now[0] = 10.0  # the records are now older than their time-to-live
    await channel.close(5.0)
    entries = _spooled(spool)
    assert [e.reason for e in entries] == ["RecordExpired"] * 3
    _books(channel)


async def test_non_retryable_error_stops_the_stream_and_spools_the_rest(tmp_path: Path) -> None:
    calls = 0

    def reply(data: list[bytes]) -> dict[str, Any]:
        nonlocal calls
        calls += 1
        if calls >= 2:
            raise ApiError("ResourceNotFoundException", "Firehose s1 under account 0 not found.", 400)
        return accept_all(data)

    client = FakeClient(reply)
    channel, spool = _channel(tmp_path, client, max_batch_records=10, max_in_flight=1)
    channel.start()
    await _offer_all(channel, _items(50))
    await channel.close(5.0)
    s = channel.stats
    assert s.stopped_reason.startswith("ResourceNotFoundException: Firehose s1")
    assert not channel.usable
    assert s.accepted == 10 and s.dead_lettered == 40
    entries = _spooled(spool)
    assert len(entries) == 40
    assert {e.reason for e in entries} <= {"NonRetryable", "StreamStopped"}
    assert {e.error_code for e in entries} == {"ResourceNotFoundException"}
    assert calls == 2  # nothing more was sent once the stream was known to be gone
    assert channel.offer(b"late") is None
    assert s.not_taken_after_stop == 1 and s.sent == 50
    _books(channel)


async def test_whole_call_5xx_and_transport_errors_are_retried(tmp_path: Path) -> None:
    script: list[Exception | None] = [
        ApiError("ServiceUnavailableException", "Slow down.", 503),
        ApiError("InternalFailure", "oops", 500),
        TransportError("ReadTimeout", "read timed out", maybe_sent=True),
        TransportError("ConnectionError", "refused", maybe_sent=False),
        None,
    ]

    def reply(data: list[bytes]) -> dict[str, Any]:
        step = script.pop(0)
        if isinstance(step, ApiError):
            raise step
        return accept_all(data)

    class Raising(FakeClient):
        async def put_record_batch(self, stream: str, data: list[bytes]) -> dict[str, Any]:
            if script and isinstance(script[0], TransportError):
                self.calls.append([self.wire.decode(d) for d in data])
                raise script.pop(0)  # type: ignore[misc]
            return await super().put_record_batch(stream, data)

    client = Raising(reply)
    channel, _ = _channel(tmp_path, client)
    channel.start()
    await _offer_all(channel, _items(7))
    await channel.close(5.0)
    s = channel.stats
    assert len(client.calls) == 5 and all(c == _items(7) for c in client.calls)
    assert s.accepted == 7 and s.failed_requests == 4 and s.retried_records == 28
    assert s.throttled_records == 7  # only the 503 is throttling
    assert s.possible_duplicates == 7  # only the read timeout may have been accepted
    assert set(s.failures_by_code) == {
        "ServiceUnavailableException",
        "InternalFailure",
        "ReadTimeout",
        "ConnectionError",
    }
    _books(channel)


async def test_malformed_response_resends_all_and_flags_duplicates(tmp_path: Path) -> None:
    answers = [{"FailedPutCount": 1, "RequestResponses": []}]

    def reply(data: list[bytes]) -> dict[str, Any]:
        return answers.pop(0) if answers else accept_all(data)

    channel, _ = _channel(tmp_path, FakeClient(reply))
    channel.start()
    await _offer_all(channel, _items(3))
    await channel.close(5.0)
    s = channel.stats
    assert s.accepted == 3 and s.possible_duplicates == 3 and s.failures_by_code["MalformedResponse"] == 1
    _books(channel)


async def test_retries_go_before_new_batches(tmp_path: Path) -> None:
    attempts: Counter[bytes] = Counter()

    def reply(data: list[bytes]) -> dict[str, Any]:
        first = data[0]
        attempts[first] += 1
        if first == b'{"event_id":"0"}' and attempts[first] == 1:
            raise ApiError("ServiceUnavailableException", "Slow down.", 503)
        return accept_all(data)

    client = FakeClient(reply, delay_s=0.02)
    channel, _ = _channel(
        tmp_path, client, policy=RetryPolicy(0.0, 0.0), max_batch_records=2, max_in_flight=1
    )
    channel.start()
    await _offer_all(channel, _items(10))  # five batches queued at once
    await channel.close(5.0)
    firsts = [c[0] for c in client.calls]
    assert firsts.count(b'{"event_id":"0"}') == 2
    retry_at = firsts.index(b'{"event_id":"0"}', 1)
    # The retry of batch 0 went out at the first free slot, before the later new batches.
    assert retry_at <= 2 and len(firsts) == 6
    _books(channel)


async def test_linger_sends_a_partial_batch_once(tmp_path: Path) -> None:
    client = FakeClient()
    channel, _ = _channel(tmp_path, client, linger_s=0.05)
    channel.start()
    channel.offer(b"a")
    channel.offer(b"b")
    await asyncio.sleep(0.01)
    assert client.calls == []  # still lingering
    await client.wait_for_calls(1)
    assert client.calls == [[b"a", b"b"]]
    await asyncio.sleep(0.1)  # no second, empty or repeated send from a stale timer
    assert client.calls == [[b"a", b"b"]]
    await channel.close(1.0)
    _books(channel)


async def test_full_batches_go_without_waiting_for_linger(tmp_path: Path) -> None:
    client = FakeClient()
    channel, _ = _channel(tmp_path, client, linger_s=60.0)
    channel.start()
    await _offer_all(channel, _items(limits.MAX_BATCH_RECORDS + 1))
    await client.wait_for_calls(1)
    assert len(client.calls[0]) == limits.MAX_BATCH_RECORDS
    await channel.close(5.0)  # close flushes the open one-record batch
    assert [len(c) for c in client.calls] == [500, 1]
    _books(channel)


async def test_too_large_record_is_spooled_not_sent(tmp_path: Path) -> None:
    client = FakeClient()
    channel, spool = _channel(tmp_path, client)
    channel.start()
    assert channel.offer(b"x" * (limits.MAX_RECORD_BYTES + 1)) is None
    channel.offer(b"ok")
    await channel.close(5.0)
    [entry] = _spooled(spool)
    assert entry.reason == "RecordTooLarge" and len(entry.data) == limits.MAX_RECORD_BYTES + 1
    assert client.calls == [[b"ok"]]
    _books(channel)


async def _waits_until_the_endpoint_answers(channel: StreamChannel, client: FakeClient, wait: Any) -> None:
    """``wait`` (for space) stays pending while the gated endpoint holds every call, ends once it
    answers; then the channel closes with its books balanced and the wait counted."""
    blocked = asyncio.ensure_future(wait)
    await asyncio.sleep(0.05)
    assert not blocked.done()
    assert client.gate is not None
    client.gate.set()
    async with asyncio.timeout(5):
        await blocked
    await channel.close(5.0)
    assert channel.stats.blocked_s > 0
    _books(channel)


async def test_block_policy_waits_for_space(tmp_path: Path) -> None:
    client = FakeClient()
    client.gate = asyncio.Event()
    channel, _ = _channel(tmp_path, client, max_held_records=20, max_batch_records=5)
    channel.start()
    waits = [channel.offer(item) for item in _items(20)]
    assert waits[:19] == [None] * 19 and waits[19] is not None
    assert channel.stats.held == 20
    await _waits_until_the_endpoint_answers(channel, client, waits[19])
    assert channel.stats.accepted == 20


async def test_drop_policy_spools_what_does_not_fit(tmp_path: Path) -> None:
    client = FakeClient()
    client.gate = asyncio.Event()
    channel, spool = _channel(tmp_path, client, max_held_records=10, on_full="drop", max_batch_records=5)
    channel.start()
    assert all(channel.offer(item) is None for item in _items(25))
    assert channel.stats.held == 10
    client.gate.set()
    await channel.close(5.0)
    entries = _spooled(spool)
    assert [e.reason for e in entries] == ["Dropped"] * 15
    assert {e.data for e in entries} == set(_items(25)[10:])
    assert channel.stats.accepted == 10
    _books(channel)


def _held(wire: WireFormat, items: list[bytes]) -> tuple[list[bytes], list[int]]:
    """What the generator passes to offer_many: records in held form, and their own sizes."""
    return [wire.encode(i) for i in items], [len(i) for i in items]


async def test_offer_many_batches_and_sends_in_order(tmp_path: Path, wire: WireFormat) -> None:
    client = FakeClient()
    channel, _ = _channel(tmp_path, client, max_batch_records=7, max_in_flight=1)
    channel.start()
    items = _items(40)
    for start in range(0, 40, 9):  # chunks that do not line up with batches
        assert channel.offer_many(*_held(wire, items[start : start + 9])) is False
    await channel.close(5.0)
    assert [len(c) for c in client.calls] == [7, 7, 7, 7, 7, 5]
    assert [r for c in client.calls for r in c] == items
    assert channel.stats.sent == 40 and channel.stats.accepted == 40
    _books(channel)


async def test_offer_many_under_block_takes_the_chunk_then_asks_to_wait(
    tmp_path: Path, wire: WireFormat
) -> None:
    client = FakeClient()
    client.gate = asyncio.Event()
    channel, _ = _channel(tmp_path, client, max_held_records=20, max_batch_records=5)
    channel.start()
    assert channel.offer_many(*_held(wire, _items(15))) is False
    # 10 more: past the bound, all taken (documented: up to a chunk over), and the caller waits.
    assert channel.offer_many(*_held(wire, _items(25)[15:])) is True
    assert channel.stats.held == 25
    await _waits_until_the_endpoint_answers(channel, client, channel.wait_for_space())
    assert channel.stats.accepted == 25


async def test_offer_many_under_drop_keeps_the_bound_exactly(tmp_path: Path, wire: WireFormat) -> None:
    client = FakeClient()
    client.gate = asyncio.Event()
    channel, spool = _channel(tmp_path, client, max_held_records=10, on_full="drop", max_batch_records=5)
    channel.start()
    items = _items(25)
    assert channel.offer_many(*_held(wire, items[:6])) is False
    assert channel.offer_many(*_held(wire, items[6:])) is False
    assert channel.stats.held == 10
    client.gate.set()
    await channel.close(5.0)
    entries = _spooled(spool)
    assert [e.reason for e in entries] == ["Dropped"] * 15
    assert [e.data for e in entries] == items[10:]
    assert [r for c in client.calls for r in c] == items[:10]
    _books(channel)


async def test_offer_many_spools_a_too_large_record_and_sends_the_rest(
    tmp_path: Path, wire: WireFormat
) -> None:
    client = FakeClient()
    channel, spool = _channel(tmp_path, client)
    channel.start()
    items = [b"a", b"x" * (limits.MAX_RECORD_BYTES + 1), b"b"]
    assert channel.offer_many(*_held(wire, items)) is False
    await channel.close(5.0)
    [entry] = _spooled(spool)
    assert entry.reason == "RecordTooLarge" and entry.data == items[1]
    assert client.calls == [[b"a", b"b"]]
    _books(channel)


async def test_offer_many_to_a_stopped_stream_counts_what_it_did_not_take(
    tmp_path: Path, wire: WireFormat
) -> None:
    def gone(data: list[bytes]) -> dict[str, Any]:
        raise ApiError("ResourceNotFoundException", "Firehose s1 not found", 400)

    client = FakeClient(gone)
    channel, _ = _channel(tmp_path, client, max_batch_records=5)
    channel.start()
    assert channel.offer_many(*_held(wire, _items(5))) is False
    await client.wait_for_calls(1)
    await channel.close(5.0)
    assert not channel.usable
    assert channel.offer_many(*_held(wire, _items(3))) is False
    s = channel.stats
    assert s.sent == 5 and s.not_taken_after_stop == 3 and s.dead_lettered == 5
    _books(channel)


async def test_close_spools_what_a_stalled_endpoint_holds(tmp_path: Path) -> None:
    client = FakeClient()
    client.gate = asyncio.Event()  # never set: the endpoint never answers
    channel, spool = _channel(tmp_path, client, max_batch_records=10, max_in_flight=2)
    channel.start()
    await _offer_all(channel, _items(55))
    await asyncio.sleep(0.05)
    loop = asyncio.get_running_loop()
    started = loop.time()
    await channel.close(0.3)
    assert loop.time() - started < 3.0
    entries = _spooled(spool)
    assert sorted(e.data for e in entries) == sorted(_items(55))
    # Two calls were in flight when cut off: their 20 records may have been accepted, and are
    # spooled as such; the rest never left.
    assert Counter(e.reason for e in entries) == {"OutcomeUnknown": 20, "ShutdownDeadline": 35}
    assert channel.stats.possible_duplicates == 20
    _books(channel)


async def test_abort_cuts_the_grace_short(tmp_path: Path) -> None:
    client = FakeClient()
    client.gate = asyncio.Event()
    channel, spool = _channel(tmp_path, client)
    channel.start()
    await _offer_all(channel, _items(30))
    closing = asyncio.ensure_future(channel.close(60.0))
    await asyncio.sleep(0.05)
    async with asyncio.timeout(5):
        await channel.abort()
        await closing
    entries = _spooled(spool)
    reasons = Counter(e.reason for e in entries)
    # Calls cut off in flight are spooled as OutcomeUnknown (and counted as possible
    # duplicates); anything else as Aborted.
    assert len(entries) == 30 and set(reasons) <= {"Aborted", "OutcomeUnknown"}
    assert reasons["OutcomeUnknown"] == channel.stats.possible_duplicates > 0
    _books(channel)


async def test_abort_spools_the_events_a_packing_stage_still_holds(tmp_path: Path) -> None:
    # A second Ctrl-C must spool everything not yet accepted, the events waiting to be packed
    # too (the packing stage's linger is long here, so they wait there; the endpoint stalls).
    # Before, abort went past the stage: its events were in no book, neither sent nor spooled.
    client = FakeClient()
    client.gate = asyncio.Event()
    channel, spool = _channel(tmp_path, client)
    stage = PackingStage(channel, 5_000, linger_s=60.0)
    stage.start()
    events = _items(3)
    for event in events:
        assert stage.offer(event) is None
    async with asyncio.timeout(5):
        await stage.abort()
    entries = _spooled(spool)
    # One packed record: cut off in flight (OutcomeUnknown) or not sent yet (Aborted).
    assert len(entries) == 1 and entries[0].reason in {"Aborted", "OutcomeUnknown"}
    assert entries[0].data.splitlines() == events
    assert channel.stats.packed_events == 3 and channel.stats.sent == 1
    _books(channel)


async def test_throttling_lowers_the_limit_exposed_in_stats(tmp_path: Path) -> None:
    rng = random.Random(2)
    client = FakeClient(fail_where(lambda _d: rng.random() < 0.5), delay_s=0.02)
    # A short window, so the controller's warm-up (half a window) passes within the test.
    channel, _ = _channel(
        tmp_path,
        client,
        policy=RetryPolicy(0.001, 0.002, max_attempts=50),
        rate_control=RateControlSettings(window_s=0.05),
    )
    channel.stats.target_rate = 1_000.0
    assert channel.stats.current_limit is None
    channel.start()
    await _offer_all(channel, _items(2_000))
    await channel.close(30.0)
    assert channel.rate.cuts >= 1 and channel.stats.rate_cuts == channel.rate.cuts
    # Lowered from unbounded (None) to the controller's own limit, which stats read live (it
    # grows back after a cut, hence approx).
    limit = channel.stats.current_limit
    settings = channel.rate.settings
    assert limit is not None and settings.min_rate <= limit < settings.max_rate
    assert limit == pytest.approx(channel.rate.limit(), rel=0.05)
    assert channel.stats.summary()["rate_limit"] == pytest.approx(limit, rel=0.05)
    _books(channel)


async def test_a_crashing_client_does_not_lose_records(tmp_path: Path) -> None:
    def reply(data: list[bytes]) -> dict[str, Any]:
        raise RuntimeError("bug in a fake")

    channel, spool = _channel(tmp_path, FakeClient(reply))
    channel.start()
    await _offer_all(channel, _items(3))
    await channel.close(5.0)
    assert [e.reason for e in _spooled(spool)] == ["ProducerError"] * 3
    _books(channel)


@pytest.mark.parametrize("grace_s", [0.0, 0.2])
async def test_close_is_idempotent(tmp_path: Path, grace_s: float) -> None:
    client = FakeClient()
    channel, spool = _channel(tmp_path, client)
    channel.start()
    await _offer_all(channel, _items(3))
    await asyncio.gather(channel.close(grace_s), channel.close(grace_s))
    await channel.close(grace_s)
    _books(channel)
    # Each record ends once: accepted or spooled, never both, never twice.
    spooled = _spooled(spool)
    assert sorted([*client.accepted.elements(), *(e.data for e in spooled)]) == sorted(_items(3))
    assert channel.stats.accepted == client.total() and channel.stats.dead_lettered == len(spooled)
    if grace_s:  # time to send: closed by sending, not by spooling
        assert client.accepted == Counter(_items(3)) and spooled == []


@pytest.mark.parametrize("many", [False, True], ids=["offer", "offer_many"])
async def test_billed_bytes_round_each_accepted_record_up_to_5120(
    tmp_path: Path, wire: WireFormat, many: bool
) -> None:
    # Small records first (billed without looking at sizes), then an empty and a large one
    # switch the channel to per-record sizes; refused attempts are never billed.
    small = _items(30)
    empty, large = [b""], [b"y" * 5_121, b"z" * 12_000]
    refused: set[bytes] = set()

    def once(d: bytes) -> bool:  # refuse each record whose id ends in 7, on its first attempt
        first = d.endswith(b'7"}') and d not in refused
        refused.add(d)
        return first

    client = FakeClient(fail_where(once))
    channel, _ = _channel(tmp_path, client)
    channel.start()
    for chunk in (small, empty, large):
        if many:
            channel.offer_many(*_held(wire, chunk))
        else:
            await _offer_all(channel, chunk)
        await asyncio.sleep(0.05)  # each chunk is answered before the next arrives
    await channel.close(5.0)
    stats = channel.stats
    assert stats.accepted == 33 and stats.failed_record_attempts == 3
    assert stats.billed_bytes == 30 * 5_120 + 0 + 10_240 + 15_360
    _books(channel)

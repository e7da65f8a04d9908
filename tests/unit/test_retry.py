"""Backoff stays inside the full-jitter envelope; errors are sorted into retry and give-up."""

from __future__ import annotations

import random

import pytest

from producer.delivery.retry import RetryAction, RetryPolicy, call_failed, outcome
from producer.firehose.errors import ApiError, TransportError
from producer.telemetry.stats import Reason


@pytest.mark.parametrize("attempt", [1, 2, 3, 5, 8, 20])
def test_delay_is_full_jitter_within_the_envelope(attempt: int) -> None:
    policy = RetryPolicy(base_s=0.5, cap_s=10.0)
    rng = random.Random(attempt)
    envelope = min(10.0, 0.5 * 2 ** (attempt - 1))
    delays = [policy.delay_s(attempt, rng) for _ in range(2_000)]
    assert all(0.0 <= d <= envelope for d in delays)
    # Full jitter: spread over the whole envelope, not bunched at its top (equal jitter) or 0.
    assert min(delays) < envelope * 0.05
    assert max(delays) > envelope * 0.95
    assert envelope * 0.4 < sum(delays) / len(delays) < envelope * 0.6


def test_delays_grow_then_stop_at_the_cap() -> None:
    policy = RetryPolicy(base_s=0.1, cap_s=1.0)

    def mean(attempt: int) -> float:
        rng = random.Random(7)
        return sum(policy.delay_s(attempt, rng) for _ in range(4_000)) / 4_000

    assert mean(1) < mean(2) < mean(3) < mean(4)
    assert mean(6) == pytest.approx(mean(12), rel=0.1)  # both at the 1 s cap


def test_exhausted_by_attempts_or_age() -> None:
    policy = RetryPolicy(max_attempts=3, record_ttl_s=10.0)
    assert policy.exhausted(1, 0.0) is None
    assert policy.exhausted(2, 9.9) is None
    assert policy.exhausted(3, 0.0) == "RetriesExhausted"
    assert policy.exhausted(1, 10.0) == "RecordExpired"


def test_default_attempts_outlast_a_short_outage() -> None:
    # The defaults' promise (see RetryPolicy): 10 attempts rarely fit in 6 s of failures.
    policy = RetryPolicy()
    rng = random.Random(3)
    spans = [sum(policy.delay_s(a, rng) for a in range(1, policy.max_attempts)) for _ in range(5_000)]
    assert sum(s < 6.0 for s in spans) == 0
    assert 20.0 < sum(spans) / len(spans) < 35.0


@pytest.mark.parametrize(
    ("code", "status"),
    [
        ("ServiceUnavailableException", 503),
        ("InternalFailure", 500),
        ("SomethingNew", 502),
        ("ThrottlingException", 400),
        ("RequestTimeout", 408),
    ],
)
def test_server_trouble_and_throttling_are_retried(code: str, status: int) -> None:
    assert call_failed(code, status, 10) is RetryAction.RETRY


@pytest.mark.parametrize(
    "code",
    [
        "InvalidArgumentException",
        "ResourceNotFoundException",
        "InvalidKMSResourceException",
        "InvalidSourceException",
        "AccessDeniedException",
        "KMSAccessDeniedException",
        "UnrecognizedClientException",
        "ExpiredTokenException",
    ],
)
def test_configuration_errors_are_not_retried(code: str) -> None:
    assert call_failed(code, 400, 10) is RetryAction.STOP_STREAM


def test_unknown_client_errors_are_not_retried() -> None:
    assert call_failed("SomeValidationProblem", 400, 10) is RetryAction.DONT_RETRY


def test_invalid_policies_are_rejected() -> None:
    with pytest.raises(ValueError, match="need 0 <= base_s <= cap_s"):
        RetryPolicy(base_s=2.0, cap_s=1.0).validate()
    with pytest.raises(ValueError, match="max_attempts must be >= 1"):
        RetryPolicy(max_attempts=0).validate()


def test_records_failed_in_an_answered_call_wait_at_most_the_answered_cap() -> None:
    policy = RetryPolicy(base_s=0.5, cap_s=10.0, answered_cap_s=1.0)
    rng = random.Random(9)
    answered = [policy.delay_s(8, rng, answered=True) for _ in range(1_000)]
    whole_call = [policy.delay_s(8, rng) for _ in range(1_000)]
    assert max(answered) <= 1.0 < max(whole_call) <= 10.0


@pytest.mark.parametrize(
    ("code", "status", "records", "action"),
    [
        ("ServiceUnavailableException", 503, 10, RetryAction.RETRY),
        ("InternalFailure", 500, 10, RetryAction.RETRY),
        ("ResourceNotFoundException", 400, 10, RetryAction.STOP_STREAM),
        ("ExpiredTokenException", 400, 10, RetryAction.STOP_STREAM),
        ("RequestEntityTooLarge", 413, 10, RetryAction.SPLIT),
        ("RequestEntityTooLarge", 413, 1, RetryAction.DONT_RETRY),  # one record cannot be halved
        ("SomethingNew", 418, 10, RetryAction.DONT_RETRY),
    ],
)
def test_a_failed_call_gets_one_action(code: str, status: int, records: int, action: RetryAction) -> None:
    assert call_failed(code, status, records) is action


def test_an_answer_is_read_record_by_record_whatever_failed_put_count_says() -> None:
    ok = {"RecordId": "r"}
    slow = {"ErrorCode": "ServiceUnavailableException", "ErrorMessage": "Slow down."}
    clean = outcome({"FailedPutCount": 0, "RequestResponses": [ok, ok]}, 2)
    assert clean.action is RetryAction.ANSWERED and clean.failed == [] and clean.answered
    entries = [ok, slow, {"ErrorCode": "InternalFailure"}, "junk"]
    partial = outcome({"FailedPutCount": 0, "RequestResponses": entries}, 4)
    assert partial.action is RetryAction.ANSWERED
    assert partial.failed == [1, 2, 3] and partial.throttled == 1
    assert partial.codes == ["ServiceUnavailableException", "InternalFailure", "MalformedResponse"]
    assert partial.messages[0] == "Slow down."
    for wrong_entries in ([ok], [ok, ok, ok], None, {"x": 1}):  # which records failed is unknowable
        wrong = outcome({"RequestResponses": wrong_entries}, 2)
        assert wrong.action is RetryAction.RETRY and "RequestResponses for 2 records" in wrong.message
        assert wrong.code == "MalformedResponse" and wrong.unsure and wrong.answered


def test_errors_and_silence_become_outcomes_of_the_same_kind() -> None:
    throttled = outcome(ApiError("ThrottlingException", "Rate exceeded", 400), 7)
    assert (throttled.action, throttled.throttled, throttled.unsure) == (RetryAction.RETRY, 7, False)
    gone = outcome(ApiError("ResourceNotFoundException", "no such stream", 400), 7)
    assert (gone.action, gone.code, gone.throttled) == (
        RetryAction.STOP_STREAM,
        "ResourceNotFoundException",
        0,
    )
    cut = outcome(TransportError("CallTimeout", "no answer", maybe_sent=True), 7)
    assert (cut.action, cut.unsure, cut.answered) == (RetryAction.RETRY, True, False)
    refused = outcome(TransportError("ConnectionError", "refused", maybe_sent=False), 7)
    assert (refused.action, refused.unsure) == (RetryAction.RETRY, False)
    with pytest.raises(RuntimeError, match="a bug"):
        outcome(RuntimeError("a bug"), 7)


def test_reasons_are_the_spool_s_words() -> None:
    assert RetryPolicy(max_attempts=1).exhausted(1, 0.0) is Reason.RETRIES_EXHAUSTED
    assert {r.value for r in Reason} >= {"RetriesExhausted", "DrainTimeout", "OutcomeUnknown", "Dropped"}

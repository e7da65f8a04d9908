"""Retry policy: what a call's outcome asks (``outcome``: one ``RetryAction`` and the records it
concerns), and how long to wait before another attempt. Never sleeps.

Error semantics: https://docs.aws.amazon.com/firehose/latest/APIReference/API_PutRecordBatch.html
Backoff with full jitter: https://docs.aws.amazon.com/prescriptive-guidance/latest/cloud-design-patterns/retry-backoff.html
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from producer.firehose.errors import ApiError, TransportError
from producer.telemetry.stats import Reason

# Per-record ErrorCodes in RequestResponses. Both mean "try this record again"; a code not listed
# here (the API may add some) is retried too: giving up on an unknown code would lose data.
RETRYABLE_RECORD_CODES = frozenset({"ServiceUnavailableException", "InternalFailure"})
THROTTLING_CODES = frozenset({"ServiceUnavailableException", "ThrottlingException"})

# Request-level errors that no retry can fix: the stream is misconfigured or unusable.
FATAL_REQUEST_CODES = frozenset(
    {
        "InvalidArgumentException",
        "ValidationException",
        "ResourceNotFoundException",
        "InvalidKMSResourceException",
        "InvalidSourceException",
        "AccessDeniedException",
        "AccessDenied",
        "UnrecognizedClientException",
        "InvalidSignatureException",
        "IncompleteSignature",
        "MissingAuthenticationToken",
        "ExpiredTokenException",
        "KMSAccessDeniedException",
        "KMSDisabledException",
        "KMSNotFoundException",
        "NoCredentialsError",
    }
)


# Whole-call errors besides 5xx, throttling and the per-record codes that mean "try again".
RETRYABLE_REQUEST_CODES = frozenset(
    {"RequestTimeout", "RequestTimeoutException", "Throttling", "TooManyRequestsException"}
)


class RetryAction(Enum):
    """What one PutRecordBatch call's outcome asks of the channel (Vector's RetryAction)."""

    ANSWERED = "answered"  # read record by record: the ones with an ErrorCode go again
    RETRY = "retry"  # the call failed as a whole (5xx, throttling, no or an unreadable answer): all again
    SPLIT = "split"  # 413: something on the path takes smaller bodies; resend as halves
    DONT_RETRY = "dont_retry"  # an error about this call (an unknown 4xx): its records are given up
    STOP_STREAM = "stop_stream"  # the stream cannot be used (missing, access denied...): give up, stop it


def call_failed(code: str, http_status: int, records: int) -> RetryAction:
    """The action for a call that failed as a whole with ``code`` (``records`` in it): 5xx,
    throttling and unknown server trouble are retried, a stream's configuration errors stop it,
    other client errors give the call's records up."""
    if code in FATAL_REQUEST_CODES:
        return RetryAction.STOP_STREAM
    if http_status >= 500 or code in THROTTLING_CODES or code in RETRYABLE_RECORD_CODES:
        return RetryAction.RETRY
    if code in RETRYABLE_REQUEST_CODES:
        return RetryAction.RETRY
    if http_status == 413 and records > 1:
        return RetryAction.SPLIT
    return RetryAction.DONT_RETRY


@dataclass(slots=True)
class Outcome:
    """One call's outcome, whatever form it came in (an answer, an error, no answer).

    ``ANSWERED``: ``failed`` are the indexes Firehose refused, with their ``codes`` and
    ``messages``. Any other action: the call failed whole, with ``code`` and ``message``.
    ``throttled`` counts the records refused for the rate; ``unsure`` says the call may have
    been accepted unseen (its records, resent, are possible duplicates); ``answered`` that an
    answer came (its records' backoff is the shorter, answered one)."""

    action: RetryAction
    code: str = ""
    message: str = ""
    failed: list[int] = field(default_factory=list)
    codes: list[str] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)
    throttled: int = 0
    unsure: bool = False
    answered: bool = False


def outcome(result: dict[str, Any] | Exception, records: int) -> Outcome:
    """The outcome of a call of ``records`` records from what it returned or raised: an answer,
    an ApiError or a TransportError (firehose/errors.py; a call cut at --call-timeout is one,
    code CallTimeout); any other exception is raised again.

    An answer is read entry by entry even when FailedPutCount says 0: an entry with an ErrorCode
    was not accepted, whatever the count says. A list of the wrong length cannot say which
    records failed: the whole call is retried, and its records may be duplicates."""
    if isinstance(result, ApiError):
        action = call_failed(result.code, result.http_status, records)
        throttled = records if action is RetryAction.RETRY and result.code in THROTTLING_CODES else 0
        return Outcome(action, result.code, result.message, throttled=throttled)
    if isinstance(result, TransportError):
        return Outcome(RetryAction.RETRY, result.code, result.message, unsure=result.maybe_sent)
    if isinstance(result, Exception):
        raise result
    entries = result.get("RequestResponses")
    if not isinstance(entries, list) or len(entries) != records:
        got = len(entries) if isinstance(entries, list) else 0
        problem = f"{got} RequestResponses for {records} records"
        return Outcome(RetryAction.RETRY, "MalformedResponse", problem, unsure=True, answered=True)
    answer = Outcome(RetryAction.ANSWERED, answered=True)
    for index, entry in enumerate(entries):
        code = entry.get("ErrorCode") if isinstance(entry, dict) else "MalformedResponse"
        if code:
            answer.failed.append(index)
            answer.codes.append(code)
            answer.messages.append(str(entry.get("ErrorMessage", "")) if isinstance(entry, dict) else "")
            answer.throttled += code in THROTTLING_CODES
    return answer


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff with full jitter, bounded by attempts and by record age.

    Full jitter (``uniform(0, min(cap, base * 2**(n-1)))``) spreads retries of many senders
    best: https://aws.amazon.com/blogs/architecture/exponential-backoff-and-jitter/ . Because a
    draw may be near 0, an attempt count alone guarantees little time; the defaults are chosen so
    that 10 attempts span ~28 s on average and less than 6 s in well under 1 in 100,000 draws
    (simulated), so a short outage does not exhaust a record, while the time-to-live bounds how
    long any record is retried. The AWS SDKs' standard mode uses the same shape with a 1 s base
    and a 20 s cap: https://docs.aws.amazon.com/sdkref/latest/guide/feature-retry-behavior.html
    Pacing under throttling is not backoff's job: ratecontrol.py lowers the send rate.
    """

    base_s: float = 0.5
    cap_s: float = 10.0
    # Records that failed inside an answered call (FailedPutCount > 0): the endpoint is up, and
    # under throttling ratecontrol.py paces the stream, so a long backoff would only add latency
    # (a record failing 6 times in a row would wait ~13 s under the 10 s cap).
    answered_cap_s: float = 1.0
    max_attempts: int = 10
    record_ttl_s: float = 120.0

    def validate(self) -> None:
        if self.base_s < 0 or self.cap_s < self.base_s or self.answered_cap_s < 0:
            raise ValueError("need 0 <= base_s <= cap_s and answered_cap_s >= 0")
        if self.max_attempts < 1 or self.record_ttl_s <= 0:
            raise ValueError("max_attempts must be >= 1 and record_ttl_s > 0")

    def delay_s(self, attempt: int, rng: random.Random, answered: bool = False) -> float:
        """Wait before attempt ``attempt + 1`` (``attempt`` >= 1 attempts made so far);
        ``answered`` when the call succeeded and only some of its records failed."""
        cap = min(self.cap_s, self.answered_cap_s) if answered else self.cap_s
        return rng.uniform(0.0, min(cap, self.base_s * 2 ** (attempt - 1)))

    def exhausted(self, attempts: int, age_s: float) -> Reason | None:
        """Why a record must not be tried again, or None if it may."""
        if attempts >= self.max_attempts:
            return Reason.RETRIES_EXHAUSTED
        if age_s >= self.record_ttl_s:
            return Reason.RECORD_EXPIRED
        return None

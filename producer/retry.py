"""Retry policy: which failures are worth another attempt, and how long to wait. Never sleeps.

Error semantics: https://docs.aws.amazon.com/firehose/latest/APIReference/API_PutRecordBatch.html
Backoff with full jitter: https://docs.aws.amazon.com/prescriptive-guidance/latest/cloud-design-patterns/retry-backoff.html
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from enum import Enum

# Per-record ErrorCodes in RequestResponses. Both mean "try this record again".
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


class Decision(Enum):
    RETRY = "retry"
    GIVE_UP = "give_up"  # this stream cannot be used; stop it


def classify_request_error(code: str, http_status: int) -> Decision:
    """5xx, throttling and unknown server trouble are retried; client errors are not."""
    if code in FATAL_REQUEST_CODES:
        return Decision.GIVE_UP
    if http_status >= 500 or code in THROTTLING_CODES or code in RETRYABLE_RECORD_CODES:
        return Decision.RETRY
    if code in (
        "RequestTimeout",
        "RequestTimeoutException",
        "Throttling",
        "TooManyRequestsException",
    ):
        return Decision.RETRY
    return Decision.GIVE_UP


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff with full jitter, bounded by attempts and by record age."""

    base_s: float = 0.1
    cap_s: float = 5.0
    max_attempts: int = 10
    record_ttl_s: float = 120.0

    def delay_s(self, attempt: int, rng: random.Random) -> float:
        """Wait before attempt ``attempt + 1`` (``attempt`` >= 1 attempts made so far)."""
        return rng.uniform(0.0, min(self.cap_s, self.base_s * 2 ** (attempt - 1)))

    def exhausted(self, attempts: int, age_s: float) -> str | None:
        """Why a record must not be tried again, or None if it may."""
        if attempts >= self.max_attempts:
            return "RetriesExhausted"
        if age_s >= self.record_ttl_s:
            return "RecordExpired"
        return None

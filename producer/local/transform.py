"""Runs a data-transformation Lambda in-process with Firehose's event and response contract.

Event ``{invocationId, deliveryStreamArn, region, records: [{recordId, approximateArrivalTimestamp,
data}]}``; response ``{records: [{recordId, result: Ok|Dropped|ProcessingFailed, data}]}`` with
every record back. https://docs.aws.amazon.com/firehose/latest/dev/data-transformation.html
https://docs.aws.amazon.com/firehose/latest/dev/data-transformation-status-model.html
Failed records become the error-record envelope (attemptsMade, arrivalTimestamp, errorCode,
errorMessage, attemptEndingTimestamp, rawData, lambdaArn):
https://docs.aws.amazon.com/firehose/latest/dev/data-transformation-failure-handling.html
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import importlib.util
import logging
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from producer.firehose import limits

log = logging.getLogger(__name__)
Handler = Callable[[dict[str, Any], Any], Any]

# The transform another part of the project ships; looked for here unless a path is given.
DEFAULT_TRANSFORM = Path("deploy") / "lambda" / "transform.py"

# Error codes and messages Firehose puts in the envelope. MissingRecordId's message is the
# service's (https://github.com/CloudSnorkel/CloudWatch2S3/issues/3); the others are best guesses
# in the same style.
FUNCTION_ERROR = (
    "Lambda.FunctionError",
    "The Lambda function was successfully invoked but it returned an error result.",
)
MISSING_RECORD_ID = (
    "Lambda.MissingRecordId",
    "One or more record Ids were not returned. "
    "Ensure that the Lambda function returns all received record Ids.",
)
DUPLICATED_RECORD_ID = (
    "Lambda.DuplicatedRecordId",
    "Multiple records were returned with the same record Id.",
)
INVALID_RECORD_ID = ("Lambda.InvalidRecordId", "A record Id was returned that was not sent to the function.")
BAD_RESPONSE = (
    "Lambda.JsonProcessingException",
    "The Lambda function returned a response that could not be parsed.",
)
RESPONSE_TOO_LARGE = (
    "Lambda.FunctionError",
    f"The Lambda response exceeded the {limits.LAMBDA_PAYLOAD_MAX_BYTES} byte payload limit.",
)
PROCESSING_FAILED = (
    "Lambda.ProcessingFailed",
    "The Lambda function returned the record as ProcessingFailed.",
)


def find_transform(explicit: Path | None, search_roots: Sequence[Path]) -> Path | None:
    """The transform file to load: ``explicit`` if given, else the first ``deploy/lambda/transform.py``
    under ``search_roots`` that exists; None means records pass through unchanged."""
    if explicit is not None:
        return explicit
    for root in search_roots:
        candidate = root / DEFAULT_TRANSFORM
        if candidate.is_file():
            return candidate
    return None


def load_handler(path: Path) -> Handler:
    """Import ``path`` as a module (no sys.path changes) and return its ``lambda_handler``."""
    digest = hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:10]
    spec = importlib.util.spec_from_file_location(f"_firehose_transform_{digest}", path)
    if spec is None or spec.loader is None:
        raise ValueError(f"cannot load a transform from {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    handler = getattr(module, "lambda_handler", None)
    if not callable(handler):
        raise ValueError(f"{path} has no lambda_handler(event, context) function")
    result: Handler = handler
    return result


@dataclass(frozen=True, slots=True)
class LambdaContext:
    """The attributes of the Lambda context object a handler commonly reads."""

    function_name: str
    invoked_function_arn: str
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 128
    log_group_name: str = "/aws/lambda/local"
    log_stream_name: str = "local"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


@dataclass(slots=True)
class Outcome:
    ok: list[bytes] = field(default_factory=list)
    ok_arrivals: list[float] = field(default_factory=list)
    failed: list[bytes] = field(default_factory=list)  # envelope JSON documents
    dropped: int = 0


def _ms(ts: float) -> int:
    return int(ts * 1000)


class TransformRunner:
    """Invokes ``handler`` per processor-buffer-sized chunk; ``handler=None`` passes records through."""

    def __init__(
        self,
        handler: Handler | None,
        lambda_arn: str,
        stream_arn: str,
        region: str,
        buffer_bytes: int,
        retries: int,
        clock: Callable[[], float] = time.time,
        on_invocation: Callable[[float, bool], None] | None = None,
    ) -> None:
        self.handler = handler
        self.lambda_arn = lambda_arn
        self.stream_arn = stream_arn
        self.region = region
        self.buffer_bytes = buffer_bytes
        self.retries = retries
        self.clock = clock
        # Told (seconds spent in the function, whether the invocation succeeded) after each one:
        # ExecuteProcessing.Duration and .Success.
        self.on_invocation = on_invocation

    def run(self, records: Sequence[bytes], arrivals: Sequence[float]) -> Outcome:
        outcome = Outcome()
        if self.handler is None:
            outcome.ok.extend(records)
            outcome.ok_arrivals.extend(arrivals)
            return outcome
        start, size = 0, 0
        for i, record in enumerate(records):
            if size and size + len(record) > self.buffer_bytes:
                self._invoke(records[start:i], arrivals[start:i], outcome)
                start, size = i, 0
            size += len(record)
        if start < len(records):
            self._invoke(records[start:], arrivals[start:], outcome)
        return outcome

    def _invoke(self, records: Sequence[bytes], arrivals: Sequence[float], outcome: Outcome) -> None:
        assert self.handler is not None
        stem = uuid.uuid4().hex
        ids = [f"{stem}{i:06d}" for i in range(len(records))]
        event = {
            "invocationId": str(uuid.uuid4()),
            "deliveryStreamArn": self.stream_arn,
            "region": self.region,
            "records": [
                {
                    "recordId": rid,
                    "approximateArrivalTimestamp": _ms(at),
                    "data": base64.b64encode(data).decode(),
                }
                for rid, data, at in zip(ids, records, arrivals, strict=True)
            ],
        }
        context = LambdaContext(self.lambda_arn.rsplit(":", 1)[-1], self.lambda_arn)
        attempts = 0
        response: Any = None
        error: tuple[str, str] | None = None
        started = time.perf_counter()
        while attempts <= self.retries:
            attempts += 1
            try:
                response = self.handler(event, context)
            except Exception as exc:
                # An unhandled exception is a function error; Firehose retries the invocation.
                log.warning("transform %s raised %s: %s", self.lambda_arn, type(exc).__name__, exc)
                error = FUNCTION_ERROR
                continue
            error = None
            try:
                if len(orjson.dumps(response)) > limits.LAMBDA_PAYLOAD_MAX_BYTES:
                    error = RESPONSE_TOO_LARGE
                    continue
            except TypeError:
                error = BAD_RESPONSE
            break
        spent = time.perf_counter() - started
        if error is None:
            error = self._route(response, ids, records, arrivals, outcome, attempts)
        if self.on_invocation is not None:
            self.on_invocation(spent, error is None)
        if error is not None:
            for data, at in zip(records, arrivals, strict=True):
                outcome.failed.append(self._envelope(data, at, attempts, error))

    def _route(
        self,
        response: Any,
        ids: list[str],
        records: Sequence[bytes],
        arrivals: Sequence[float],
        outcome: Outcome,
        attempts: int,
    ) -> tuple[str, str] | None:
        """Check the whole response first: a contract violation fails every record of the call."""
        items = response.get("records") if isinstance(response, dict) else None
        if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
            return BAD_RESPONSE
        index = {rid: i for i, rid in enumerate(ids)}
        seen: set[str] = set()
        decoded: list[tuple[int, str, bytes]] = []
        for item in items:
            rid = item.get("recordId")
            if rid not in index:
                return INVALID_RECORD_ID
            if rid in seen:
                return DUPLICATED_RECORD_ID
            seen.add(rid)
            result = item.get("result")
            if result not in ("Ok", "Dropped", "ProcessingFailed"):
                return BAD_RESPONSE
            data = b""
            if result == "Ok":
                try:
                    data = base64.b64decode(item["data"], validate=True)
                except (KeyError, TypeError, binascii.Error):
                    return BAD_RESPONSE
            decoded.append((index[rid], result, data))
        if len(seen) != len(ids):
            return MISSING_RECORD_ID
        for i, result, data in sorted(decoded):
            if result == "Ok":
                outcome.ok.append(data)
                outcome.ok_arrivals.append(arrivals[i])
            elif result == "Dropped":
                outcome.dropped += 1
            else:
                # rawData is the record as it came in, whatever data the function returned.
                outcome.failed.append(self._envelope(records[i], arrivals[i], attempts, PROCESSING_FAILED))
        return None

    def _envelope(self, data: bytes, arrival: float, attempts: int, error: tuple[str, str]) -> bytes:
        return orjson.dumps(
            {
                "attemptsMade": attempts,
                "arrivalTimestamp": _ms(arrival),
                "errorCode": error[0],
                "errorMessage": error[1],
                "attemptEndingTimestamp": _ms(self.clock()),
                "rawData": base64.b64encode(data).decode(),
                "lambdaArn": self.lambda_arn,
            }
        )

"""PutRecord/PutRecordBatch: request validation in the service's order and fast response bodies.

Limits: https://docs.aws.amazon.com/firehose/latest/APIReference/API_PutRecordBatch.html
The front end checks model constraints first (stream name, 1-500 records, each record's data
at most 1,024,000 bytes) and reports all violations in one ValidationException; then the
service checks the stream exists and the 4 MiB total.

The hot path does per-call work in C where it can: orjson parses the body, a list
comprehension pulls the ``Data`` strings, binascii decodes them, and the all-accepted answer
is one ``bytes.join`` over a cached template.
"""

from __future__ import annotations

import binascii
import secrets
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import orjson

from producer.firehose import limits
from producer.local import errors
from producer.local.streams import name_problem

SLOW_DOWN = "Slow down."  # the service's per-record throttling message (FIREHOSE.md; boto3 issue 2804)


@dataclass(frozen=True, slots=True)
class Batch:
    stream: str
    records: list[bytes]
    sizes: list[int]
    total: int


def _data_problem(record: Any, where: str) -> str | None:
    if not isinstance(record, dict) or record.get("Data") is None:
        return f"Value null at '{where}' failed to satisfy constraint: Member must not be null"
    return None


def _decode_one(value: Any, where: str) -> bytes:
    if not isinstance(value, str):
        raise errors.Serialization(f"Value at '{where}' can not be converted to a Blob.")
    try:
        return binascii.a2b_base64(value, strict_mode=True)
    except binascii.Error as exc:
        # Wording of the Coral front end for a bad blob, as Kinesis answers it
        # (https://github.com/aws/aws-sdk-php/issues/650); Firehose shares that front end.
        shown = value if len(value) <= 64 else value[:64] + "..."
        raise errors.Serialization(f"'{shown}' can not be converted to a Blob: {exc}") from None


def _size_problem(size: int, where: str) -> str:
    # The service's exact wording: https://github.com/postmates/cernan/pull/210
    return (
        f"Value 'java.nio.HeapByteBuffer[pos=0 lim={size} cap={size}]' at '{where}' failed to "
        f"satisfy constraint: Member must have length less than or equal to {limits.MAX_RECORD_BYTES}"
    )


def parse_batch(payload: dict[str, Any]) -> Batch:
    """Validate a PutRecordBatch body (model constraints only) and decode its records."""
    problems: list[str] = []
    name = payload.get("DeliveryStreamName")
    name_issue = name_problem(name)
    if name_issue:
        problems.append(name_issue)
    records = payload.get("Records")
    if not isinstance(records, list):
        problems.append("Value null at 'records' failed to satisfy constraint: Member must not be null")
        raise errors.validation_errors(problems)
    count = len(records)
    if count == 0:
        problems.append(
            "Value '[]' at 'records' failed to satisfy constraint: "
            "Member must have length greater than or equal to 1"
        )
    elif count > limits.MAX_BATCH_RECORDS:
        problems.append(
            "Value at 'records' failed to satisfy constraint: "
            f"Member must have length less than or equal to {limits.MAX_BATCH_RECORDS}"
        )
    if problems:
        raise errors.validation_errors(problems)
    try:
        a2b = binascii.a2b_base64
        decoded = [a2b(r["Data"], strict_mode=True) for r in records]
    except (TypeError, KeyError, binascii.Error):
        decoded = _decode_slowly(records)
    sizes = list(map(len, decoded))
    if max(sizes) > limits.MAX_RECORD_BYTES:
        raise errors.validation_errors(
            [
                _size_problem(size, f"records.{i + 1}.member.data")
                for i, size in enumerate(sizes)
                if size > limits.MAX_RECORD_BYTES
            ]
        )
    return Batch(str(name), decoded, sizes, sum(sizes))


def _decode_slowly(records: list[Any]) -> list[bytes]:
    """The fast path failed: find the first bad record and answer as the service does."""
    problems = [p for i, r in enumerate(records) if (p := _data_problem(r, f"records.{i + 1}.member.data"))]
    if problems:
        raise errors.validation_errors(problems)
    return [_decode_one(r["Data"], f"records.{i + 1}.member.data") for i, r in enumerate(records)]


def parse_record(payload: dict[str, Any]) -> Batch:
    """Validate a PutRecord body and decode its one record."""
    problems: list[str] = []
    name = payload.get("DeliveryStreamName")
    name_issue = name_problem(name)
    if name_issue:
        problems.append(name_issue)
    record = payload.get("Record")
    data_issue = _data_problem(record, "record.data") if record is not None else None
    if record is None:
        problems.append("Value null at 'record' failed to satisfy constraint: Member must not be null")
    elif data_issue:
        problems.append(data_issue)
    if problems or not isinstance(record, dict):
        raise errors.validation_errors(problems)
    data = _decode_one(record["Data"], "record.data")
    if len(data) > limits.MAX_RECORD_BYTES:
        raise errors.validation_errors([_size_problem(len(data), "record.data")])
    return Batch(str(name), [data], [len(data)], len(data))


def check_batch_total(batch: Batch) -> None:
    """The 4 MiB per-call limit, checked by the service after the model constraints.
    Message as the service answers it: https://github.com/osquery/osquery/issues/3568"""
    if batch.total > limits.MAX_BATCH_BYTES:
        raise errors.InvalidArgument("Records size exceeds 4 MB limit")


def _stem() -> str:
    # Real RecordIds are long opaque strings; a per-call random stem keeps them unique and cheap.
    return secrets.token_urlsafe(42)


@lru_cache(maxsize=limits.MAX_BATCH_RECORDS + 1)
def _ok_template(count: int) -> tuple[bytes, ...]:
    head = b'{"Encrypted":false,"FailedPutCount":0,"RequestResponses":[{"RecordId":"'
    middle = [f'{i:04d}"}},{{"RecordId":"'.encode() for i in range(count - 1)]
    tail = f'{count - 1:04d}"}}]}}'.encode()
    return (head, *middle, tail)


def all_accepted_body(count: int) -> bytes:
    """The answer when every record was accepted: the template joined with one random stem."""
    return _stem().encode().join(_ok_template(count))


def partial_body(failures: list[tuple[str, str] | None]) -> bytes:
    """The answer when some records failed: ``failures[i]`` is (ErrorCode, ErrorMessage) or None."""
    stem = _stem()
    responses: list[dict[str, str]] = [
        {"RecordId": f"{stem}{i:04d}"} if f is None else {"ErrorCode": f[0], "ErrorMessage": f[1]}
        for i, f in enumerate(failures)
    ]
    failed = sum(1 for f in failures if f is not None)
    return orjson.dumps({"Encrypted": False, "FailedPutCount": failed, "RequestResponses": responses})


def record_body() -> bytes:
    return orjson.dumps({"RecordId": _stem() + "0000", "Encrypted": False})

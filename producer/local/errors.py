"""Firehose error answers with the HTTP status, ``__type`` and message shape the service uses.

JSON 1.1 errors: https://docs.aws.amazon.com/firehose/latest/APIReference/CommonErrors.html
The front end (request parsing, model constraints) answers some errors with no message at
all, e.g. a real Firehose answer to a malformed body is ``{"__type":"SerializationException"}``
(captured in https://github.com/pplu/aws-sdk-perl/issues/237); ``message=None`` reproduces that.
"""

from __future__ import annotations


class FirehoseApiError(Exception):
    """An error answer: botocore turns ``__type`` into the exception's error code."""

    status = 400
    type_name = "InvalidArgumentException"

    def __init__(self, message: str | None) -> None:
        super().__init__(message or self.type_name)
        self.message = message

    def body(self) -> dict[str, str]:
        if self.message is None:
            return {"__type": self.type_name}
        return {"__type": self.type_name, "message": self.message}


class InvalidArgument(FirehoseApiError):
    type_name = "InvalidArgumentException"


class Validation(FirehoseApiError):
    # The service front end reports model constraint violations (length, pattern) as
    # "N validation error(s) detected: ..." messages, e.g. for a record over 1,024,000 bytes
    # (https://github.com/postmates/cernan/pull/210).
    type_name = "ValidationException"


class ResourceNotFound(FirehoseApiError):
    type_name = "ResourceNotFoundException"


class ResourceInUse(FirehoseApiError):
    type_name = "ResourceInUseException"


class Serialization(FirehoseApiError):
    type_name = "SerializationException"


class UnknownOperation(FirehoseApiError):
    # Real JSON 1.1 services answer 400 with no message:
    # {"__type":"UnknownOperationException"} (https://github.com/aws/aws-sdk-net/issues/1536).
    type_name = "UnknownOperationException"


class ServiceUnavailable(FirehoseApiError):
    status = 503
    type_name = "ServiceUnavailableException"


class InternalFailure(FirehoseApiError):
    status = 500
    type_name = "InternalFailure"


def validation_errors(problems: list[str]) -> Validation:
    """One ValidationException listing every constraint violation, as the front end does:
    "2 validation errors detected: A; B"."""
    count = len(problems)
    noun = "validation error" if count == 1 else "validation errors"
    return Validation(f"{count} {noun} detected: " + "; ".join(problems))

"""Firehose error answers with the HTTP status, ``__type`` and message shape the service uses.

JSON 1.1 errors: https://docs.aws.amazon.com/firehose/latest/APIReference/CommonErrors.html
"""

from __future__ import annotations


class FirehoseApiError(Exception):
    """An error answer: botocore turns ``__type`` into the exception's error code."""

    status = 400
    type_name = "InvalidArgumentException"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def body(self) -> dict[str, str]:
        return {"__type": self.type_name, "message": self.message}


class InvalidArgument(FirehoseApiError):
    type_name = "InvalidArgumentException"


class Validation(FirehoseApiError):
    # The service front end reports model constraint violations (length, pattern) as
    # ValidationException with "N validation error(s) detected: ..." messages.
    type_name = "ValidationException"


class ResourceNotFound(FirehoseApiError):
    type_name = "ResourceNotFoundException"


class ResourceInUse(FirehoseApiError):
    type_name = "ResourceInUseException"


class LimitExceeded(FirehoseApiError):
    type_name = "LimitExceededException"


class Serialization(FirehoseApiError):
    type_name = "SerializationException"


class UnknownOperation(FirehoseApiError):
    type_name = "UnknownOperationException"


class ServiceUnavailable(FirehoseApiError):
    status = 503
    type_name = "ServiceUnavailableException"


class InternalFailure(FirehoseApiError):
    status = 500
    type_name = "InternalFailure"

"""What a Firehose call can end in besides an answer: the service's error, or no answer at all."""

from __future__ import annotations


class ApiError(Exception):
    """The service answered with an error."""

    def __init__(self, code: str, message: str, http_status: int) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.http_status = http_status


class TransportError(Exception):
    """No answer: connection refused or dropped, or a timeout. ``maybe_sent`` is True when
    the request may have reached the service (a read timeout or a dropped connection)."""

    def __init__(self, code: str, message: str, maybe_sent: bool) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.maybe_sent = maybe_sent

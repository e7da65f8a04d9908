"""aiobotocore clients for AWS services other than Firehose (the audit's S3 and CloudWatch reads),
and the SDK's errors turned into one line for the user.

producer/firehose/ stays the only code that talks to Firehose; aws/ holds the other AWS clients,
so no other folder imports the SDK. SDK retries are left at their default: these are idempotent
reads, unlike PutRecordBatch.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from botocore.exceptions import BotoCoreError, ClientError
from botocore.parsers import ResponseParserError

from producer.errors import UsageError

# What an AWS call through the SDK can raise besides our own errors: catch these, then explain().
SDK_ERRORS: tuple[type[Exception], ...] = (BotoCoreError, ClientError, ResponseParserError, OSError)


@dataclass(frozen=True, slots=True)
class AwsSettings:
    region: str
    endpoint_url: str | None = None  # an S3-compatible endpoint (MinIO, moto) instead of AWS


@asynccontextmanager
async def client(service: str, settings: AwsSettings, timeout_s: float | None = None) -> AsyncIterator[Any]:
    """``timeout_s``: connect and read timeout, one attempt (for reads that must not stall the
    caller, like the soak's CloudWatch polling); None: the SDK's defaults."""
    session = get_session()
    config = None
    if timeout_s is not None:
        config = AioConfig(
            connect_timeout=timeout_s, read_timeout=timeout_s, retries={"total_max_attempts": 1}
        )
    async with session.create_client(
        service, region_name=settings.region, endpoint_url=settings.endpoint_url, config=config
    ) as c:
        yield c


def explain(exc: Exception, what: str) -> UsageError:
    """One line for the user from an SDK failure."""
    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        return UsageError(f"{what}: {err.get('Code', 'error')}: {err.get('Message', '')}".rstrip(": "))
    if isinstance(exc, BotoCoreError):
        return UsageError(f"{what}: {exc}")
    return UsageError(f"{what}: {type(exc).__name__}: {exc}")

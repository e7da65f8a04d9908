"""aiobotocore clients for the audit's AWS reads (S3 objects, CloudWatch metrics).

firehose.py stays the only module that talks to Firehose; reads of other services live here so
the audit never needs the producer's send path. SDK retries are left at their default: these
are idempotent reads, unlike PutRecordBatch.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from aiobotocore.session import get_session
from botocore.exceptions import BotoCoreError, ClientError

from producer.errors import UsageError


@dataclass(frozen=True, slots=True)
class AwsSettings:
    region: str
    endpoint_url: str | None = None  # an S3-compatible endpoint (MinIO, moto) instead of AWS


@asynccontextmanager
async def client(service: str, settings: AwsSettings) -> AsyncIterator[Any]:
    session = get_session()
    async with session.create_client(
        service, region_name=settings.region, endpoint_url=settings.endpoint_url
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

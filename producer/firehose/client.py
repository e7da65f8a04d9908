"""The only module that talks to AWS: aiobotocore client lifecycle and error translation.

Two retry layers exist and must not multiply: the SDK's is switched off here
(``total_max_attempts=1``), and the sender retries per record with its own backoff, because only
the sender can resend just the failed entries of a PutRecordBatch.
https://docs.aws.amazon.com/sdkref/latest/guide/feature-retry-behavior.html
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from aiobotocore.config import AioConfig
from aiobotocore.session import AioSession, get_session
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    ReadTimeoutError,
)

from producer import __version__
from producer.errors import UsageError
from producer.firehose.errors import ApiError, TransportError
from producer.firehose.lean import LeanFirehoseClient, open_lean_session, resolve_transport
from producer.firehose.wire import RAW, WireFormat

# Used only for endpoints that are not AWS (the local Firehose, moto) when the credential chain
# finds nothing: those endpoints check the signature's shape, not the key.
LOCAL_CREDENTIALS = ("loadgen-local", "loadgen-local-secret")


@dataclass(frozen=True, slots=True)
class ClientSettings:
    region: str
    endpoint_url: str | None = None
    allow_local_credentials: bool = False
    connect_timeout_s: float = 5.0
    read_timeout_s: float = 10.0
    max_pool_connections: int = 64


def _translate(exc: Exception) -> Exception:
    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        meta = exc.response.get("ResponseMetadata", {})
        return ApiError(
            str(err.get("Code", "Unknown")),
            str(err.get("Message", "")),
            int(meta.get("HTTPStatusCode", 0)),
        )
    if isinstance(exc, NoCredentialsError):
        return ApiError("NoCredentialsError", str(exc), 0)
    if isinstance(exc, ReadTimeoutError):
        return TransportError("ReadTimeout", str(exc), maybe_sent=True)
    if isinstance(exc, ConnectionClosedError):
        return TransportError("ConnectionClosed", str(exc), maybe_sent=True)
    if isinstance(exc, ConnectTimeoutError):
        return TransportError("ConnectTimeout", str(exc), maybe_sent=False)
    if isinstance(exc, EndpointConnectionError):
        return TransportError("ConnectionError", str(exc), maybe_sent=False)
    if isinstance(exc, BotoCoreError):
        return TransportError(type(exc).__name__, str(exc), maybe_sent=True)
    return TransportError(type(exc).__name__, str(exc) or type(exc).__name__, maybe_sent=True)


class BatchSender(Protocol):
    """What a stream's sender needs: one call, answered as a dict or raising ApiError or
    TransportError, taking records in its ``wire`` form (producer/firehose/wire.py)."""

    @property
    def wire(self) -> WireFormat: ...

    async def put_record_batch(self, stream: str, data: list[bytes]) -> dict[str, Any]: ...


class FirehoseClient:
    """Plain-dict calls on one long-lived aiobotocore client."""

    wire: WireFormat = RAW  # botocore base64-encodes records itself

    def __init__(self, client: Any) -> None:
        self._client = client

    @property
    def endpoint_url(self) -> str:
        """Where botocore resolved this client to send (region, FIPS, custom endpoint)."""
        return str(self._client.meta.endpoint_url)

    @property
    def region(self) -> str:
        return str(self._client.meta.region_name)

    @property
    def http_session(self) -> Any:
        """The client's aiobotocore HTTP session: verify and proxies as botocore resolved them."""
        return self._client._endpoint.http_session

    @property
    def credentials(self) -> Any:
        """The credentials botocore's chain resolved for this client (refreshed as it refreshes)."""
        return self._client._request_signer._credentials

    async def _call(self, op: str, **params: Any) -> dict[str, Any]:
        try:
            result: dict[str, Any] = await getattr(self._client, op)(**params)
        except (ClientError, BotoCoreError, OSError, TimeoutError) as exc:
            raise _translate(exc) from exc
        return result

    async def put_record_batch(self, stream: str, data: list[bytes]) -> dict[str, Any]:
        return await self._call(
            "put_record_batch", DeliveryStreamName=stream, Records=[{"Data": d} for d in data]
        )

    async def describe(self, stream: str) -> dict[str, Any]:
        result = await self._call("describe_delivery_stream", DeliveryStreamName=stream)
        description: dict[str, Any] = result["DeliveryStreamDescription"]
        return description

    async def update_destination(self, **params: Any) -> None:
        """UpdateDestination: needs CurrentDeliveryStreamVersionId and DestinationId; a stale
        version is refused with ConcurrentModificationException.
        https://docs.aws.amazon.com/firehose/latest/APIReference/API_UpdateDestination.html"""
        await self._call("update_destination", **params)

    async def create(self, **params: Any) -> str:
        result = await self._call("create_delivery_stream", **params)
        return str(result["DeliveryStreamARN"])

    async def list_streams(self) -> list[str]:
        result = await self._call("list_delivery_streams", Limit=10000)
        return [str(n) for n in result["DeliveryStreamNames"]]


async def _credentials_or_none(session: AioSession, aws: bool) -> Any:
    if not aws:
        # Not AWS: take keys from the environment or config files if present, but never ask
        # the instance or container metadata services (they are remote addresses).
        resolver = session.get_component("credential_provider")
        for provider in ("iam-role", "container-role"):
            with contextlib.suppress(Exception):
                resolver.remove(provider)
    try:
        return await session.get_credentials()
    except BotoCoreError:
        return None


Sender = Literal["lean", "botocore"]


@asynccontextmanager
async def open_batch_client(
    client: FirehoseClient, sender: Sender, settings: ClientSettings
) -> AsyncIterator[BatchSender]:
    """The PutRecordBatch path: botocore's own, or the lean one (producer/firehose/lean.py) built on
    this client's endpoint, region and credentials."""
    if sender == "botocore":
        yield client
        return

    transport = await resolve_transport(client.http_session, client.endpoint_url)
    async with await open_lean_session(
        settings.max_pool_connections, settings.connect_timeout_s, settings.read_timeout_s, transport
    ) as http:
        yield LeanFirehoseClient(
            http,
            client.endpoint_url,
            client.region,
            client.credentials,
            f"firehose-loadgen/{__version__} (lean PutRecordBatch)",
            transport.proxy,
        )


@asynccontextmanager
async def open_stock_client(settings: ClientSettings) -> AsyncIterator[FirehoseClient]:
    """A client with aiobotocore's default configuration (validation on, standard retries):
    what hand-written producers use; the benchmark's reference."""
    session = get_session()
    credentials = await _credentials_or_none(session, aws=not settings.allow_local_credentials)
    kwargs: dict[str, Any] = {}
    if credentials is None:
        kwargs = {"aws_access_key_id": LOCAL_CREDENTIALS[0], "aws_secret_access_key": LOCAL_CREDENTIALS[1]}
    async with session.create_client(
        "firehose", region_name=settings.region, endpoint_url=settings.endpoint_url, **kwargs
    ) as client:
        yield FirehoseClient(client)


@asynccontextmanager
async def open_client(settings: ClientSettings) -> AsyncIterator[FirehoseClient]:
    """A client for ``settings``; raises UsageError when AWS credentials or region are missing."""
    session = get_session()
    config = AioConfig(
        # Two retry layers, one of them off. The SDK layer (botocore "standard" mode) would retry
        # a whole PutRecordBatch on 5xx, throttling and connection errors, up to 3 attempts, and
        # "adaptive" mode would add its own client-side rate limiter. Both are wrong here: a whole
        # call retried resends records already accepted, and its attempts would multiply with
        # ours (3 x 10). So the SDK makes exactly one attempt, and the sender (retry.py decides,
        # sender.py sleeps) resends only the failed records, paced by ratecontrol.py.
        # https://docs.aws.amazon.com/sdkref/latest/guide/feature-retry-behavior.html
        retries={"total_max_attempts": 1, "mode": "standard"},
        # A read timeout is a failed attempt like any other (retried, counted as possible
        # duplicates since the call may have been accepted); the SDK's 60 s default would let a
        # stalled endpoint hold a send slot for a minute.
        # https://botocore.amazonaws.com/v1/documentation/api/latest/reference/config.html
        connect_timeout=settings.connect_timeout_s,
        read_timeout=settings.read_timeout_s,
        max_pool_connections=settings.max_pool_connections,
        # The accumulator enforces every PutRecordBatch limit itself; botocore's per-record
        # parameter validation costs about 2.5 us a record (measured, see DESIGN notes).
        parameter_validation=False,
    )
    kwargs: dict[str, Any] = {}
    credentials = await _credentials_or_none(session, aws=not settings.allow_local_credentials)
    if credentials is None:
        if not settings.allow_local_credentials:
            raise UsageError(
                "no AWS credentials found: set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, "
                "or run without --target aws to use the embedded local Firehose"
            )
        kwargs = {
            "aws_access_key_id": LOCAL_CREDENTIALS[0],
            "aws_secret_access_key": LOCAL_CREDENTIALS[1],
        }
    async with session.create_client(
        "firehose",
        region_name=settings.region,
        endpoint_url=settings.endpoint_url,
        config=config,
        **kwargs,
    ) as client:
        yield FirehoseClient(client)

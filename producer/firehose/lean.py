"""A lean PutRecordBatch path: the same signed request as botocore's, without its per-record cost.

botocore serializes each record through its shape model and parses each RequestResponses entry
the same way, about 10 us of CPU a record (measured, see the README's Performance section).
This path builds the JSON body with base64 and byte joins, signs it with botocore's own SigV4
signer and credentials (handing it the body's SHA-256, whose work on the records part two
streams share: PayloadHashes), sends it over aiohttp and reads the answer with orjson. Everything
else (credential chain, region, endpoint resolution) comes from the stock client it is built
from, and tests/unit/test_lean_equivalence.py proves both send the same request and read every
answer the same way. ``--sender botocore`` keeps the stock path.
Request shape: https://docs.aws.amazon.com/firehose/latest/APIReference/API_PutRecordBatch.html
SigV4: https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_sigv-create-signed-request.html
"""

from __future__ import annotations

import asyncio
import hashlib
import http.client
import inspect
import operator
import ssl
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson
from aiobotocore.httpsession import _ProxySSLTCPConnector
from botocore.auth import SigV4Auth, _host_from_url
from botocore.awsrequest import AWSRequest
from botocore.exceptions import BotoCoreError

from producer.firehose.errors import ApiError, TransportError
from producer.firehose.wire import BASE64, WireFormat

TARGET = "Firehose_20150804.PutRecordBatch"
CONTENT_TYPE = "application/x-amz-json-1.1"


_HEAD = b'{"Records":[{"Data":"'
_SEP = b'"},{"Data":"'
_END = b'"}],'


def encode_batch(stream: str, encoded: list[bytes]) -> tuple[bytes, int]:
    """The PutRecordBatch JSON body from base64-encoded records, and where its records part
    ends. Parsed, it is the parameters json.dumps would give (base64 text needs no escaping);
    only the member order differs: the stream name comes last, so that two streams sent the
    same records have bodies that differ only after ``split`` (see PayloadHashes).

    One join copies the records' text once: head and tail go onto the first and last record
    (small copies), not around the joined ~300 KB, which would copy it twice more."""
    tail = b'"DeliveryStreamName":' + orjson.dumps(stream) + b"}"
    if not encoded:
        return b'{"Records":[],' + tail, 14
    parts = encoded[:]
    parts[0] = _HEAD + parts[0]
    parts[-1] = parts[-1] + _END + tail  # the same part as the first when there is one record
    body = _SEP.join(parts)
    return body, len(body) - len(tail)


class PayloadHashes:
    """SigV4's SHA-256 of request bodies, with the work on a records part shared by streams.

    Every event goes to both reference streams, and their channels cut the same records into
    the same batches, so two bodies differ only in the stream name after the records part. The
    hash state after that part is kept for the next body with the very same record objects
    (checked one by one, not trusted from a key), which then hashes only its own tail: SHA-256
    of ~300 KB was 8% of the producer's CPU at full load. An entry is used once (two streams)
    and then dropped. One stream may run up to ``--max-held`` records (100 batches by default)
    ahead of the other, so ``size`` entries are kept, oldest dropped first. Their records are
    held by the slower stream anyway; only if it stops do they pin up to ``size`` batches
    (~40 MB at ~300 KB) until newer ones push them out. Holding them also keeps their ids from
    being reused by other objects while kept."""

    def __init__(self, size: int = 128) -> None:
        self._size = size
        self._kept: OrderedDict[tuple[int, int, int], tuple[list[bytes], Any]] = OrderedDict()
        self.shared = 0  # bodies whose records part was hashed already (for tests)

    def digest(self, records: list[bytes], body: bytes, split: int) -> str:
        if not records:
            return hashlib.sha256(body).hexdigest()
        view = memoryview(body)
        key = (len(records), id(records[0]), id(records[-1]))
        kept = self._kept.get(key)
        if kept is not None and all(map(operator.is_, kept[0], records)):
            del self._kept[key]
            state = kept[1]
            self.shared += 1
        else:
            state = hashlib.sha256(view[:split])
            self._kept[key] = (records, state.copy())
            if len(self._kept) > self._size:
                self._kept.popitem(last=False)
        state.update(view[split:])
        return str(state.hexdigest())


class _KnownPayloadSigV4(SigV4Auth):  # type: ignore[misc]  # botocore has no type hints
    """botocore's SigV4 signer, given the body's SHA-256 rather than computing it again. The
    rest of the signature (canonical request, string to sign, key derivation) is botocore's."""

    def __init__(self, credentials: Any, service: str, region: str, payload_sha256: str) -> None:
        super().__init__(credentials, service, region)
        self._payload_sha256 = payload_sha256

    def payload(self, request: AWSRequest) -> str:
        return self._payload_sha256


def error_code(body: dict[str, Any], status: int) -> str:
    """The error code as botocore's JSON parser derives it."""
    code = str(body.get("__type") or status)
    if ":" in code:
        code = code.split(":", 1)[0]
    if "#" in code:
        code = code.rsplit("#", 1)[1]
    return code


def _api_error(status: int, raw: bytes) -> ApiError:
    """An error answer, read as botocore's parsers read it."""
    stripped = raw.strip()
    if status >= 500 and (not stripped or stripped.startswith(b"<html>")):
        # A proxy's or load balancer's page, not the service's: code is the status.
        return ApiError(str(status), http.client.responses.get(status, ""), status)
    try:
        body = orjson.loads(raw) if stripped else {}
    except orjson.JSONDecodeError:
        body = {"message": raw.decode("utf-8", "replace")}
    if not isinstance(body, dict):
        body = {}
    message = body.get("message", body.get("Message", ""))
    return ApiError(error_code(body, status), str(message), status)


class LeanFirehoseClient:
    """``put_record_batch`` with the FirehoseClient interface the sender uses. It takes records
    base64-encoded already (``wire``): the generator encodes an event once for all streams."""

    wire: WireFormat = BASE64

    def __init__(
        self,
        http: aiohttp.ClientSession,
        endpoint_url: str,
        region: str,
        credentials: Any,
        user_agent: str,
        proxy: Proxy | None = None,
    ) -> None:
        self._http = http
        # The proxy botocore would use for this endpoint (HTTP(S)_PROXY, NO_PROXY, the config's
        # proxies), or None; its headers carry proxy credentials from the proxy URL.
        self._proxy = proxy.url if proxy else None
        self._proxy_headers = proxy.headers if proxy else None
        self._url = endpoint_url.rstrip("/") + "/"
        self._region = region
        self._credentials = credentials  # botocore Credentials or aiobotocore refreshable ones
        self._user_agent = user_agent
        # The Host header as botocore's signer derives it from the URL, once: left out, the
        # signer derives it twice a request (two URL parses, ~1% of CPU at full load). It is
        # signed either way, and aiohttp sends the same value it would have.
        self._host = _host_from_url(self._url)
        self.payload_hashes = PayloadHashes()

    async def _frozen(self) -> Any:
        frozen = self._credentials.get_frozen_credentials()
        if inspect.isawaitable(frozen):
            frozen = await frozen
        return frozen

    async def signed_headers(self, body: bytes, payload_sha256: str) -> dict[str, str]:
        """The headers of a signed request for ``body``, whose SHA-256 is ``payload_sha256`` (hex,
        from PayloadHashes)."""
        request = AWSRequest(
            method="POST",
            url=self._url,
            data=body,
            headers={
                "X-Amz-Target": TARGET,
                "Content-Type": CONTENT_TYPE,
                "User-Agent": self._user_agent,
                "Host": self._host,
            },
        )
        _KnownPayloadSigV4(await self._frozen(), "firehose", self._region, payload_sha256).add_auth(request)
        headers = dict(request.headers.items())
        # botocore adds these two after signing (unsigned); so do we.
        headers["amz-sdk-invocation-id"] = str(uuid.uuid4())
        headers["amz-sdk-request"] = "attempt=1; max=1"
        return headers

    async def put_record_batch(self, stream: str, data: list[bytes]) -> dict[str, Any]:
        """``data``: the records in ``self.wire`` form (base64)."""
        body, split = encode_batch(stream, data)
        try:
            headers = await self.signed_headers(body, self.payload_hashes.digest(data, body, split))
        except BotoCoreError as exc:
            # A credential refresh that failed (credential_process, SSO, a role): nothing was
            # sent, and the next attempt may find working credentials, as botocore's may.
            raise TransportError("CredentialError", str(exc), maybe_sent=False) from exc
        try:
            async with self._http.post(
                self._url, data=body, headers=headers, proxy=self._proxy, proxy_headers=self._proxy_headers
            ) as response:
                raw = await response.read()
                status = response.status
        except aiohttp.ConnectionTimeoutError as exc:
            # No connection within the connect timeout: nothing was sent, no duplicate possible.
            raise TransportError("ConnectTimeout", str(exc) or "connect timeout", maybe_sent=False) from exc
        except TimeoutError as exc:
            raise TransportError("ReadTimeout", str(exc) or "read timeout", maybe_sent=True) from exc
        except aiohttp.ClientConnectorError as exc:
            raise TransportError("ConnectionError", str(exc), maybe_sent=False) from exc
        except (aiohttp.ServerDisconnectedError, aiohttp.ClientPayloadError, aiohttp.ClientOSError) as exc:
            raise TransportError("ConnectionClosed", str(exc), maybe_sent=True) from exc
        except aiohttp.ClientError as exc:
            raise TransportError(type(exc).__name__, str(exc), maybe_sent=True) from exc
        if status < 300:
            try:
                parsed = orjson.loads(raw) if raw else {}
            except orjson.JSONDecodeError:
                # A 200 that is not the API's answer (an HTML page from a proxy or load
                # balancer): nobody knows whether the records got through; retried.
                raise TransportError("MalformedResponse", "answer is not JSON", maybe_sent=True) from None
            if not isinstance(parsed, dict):
                raise TransportError("MalformedResponse", "answer is not a JSON object", maybe_sent=True)
            return parsed
        raise _api_error(status, raw)


@dataclass(frozen=True, slots=True)
class Proxy:
    url: str
    headers: dict[str, str]


@dataclass(frozen=True, slots=True)
class Transport:
    """How botocore reaches the endpoint, resolved once per run by ``resolve_transport``: TLS
    trust (``verify``, AWS_CA_BUNDLE, the profile's ``ca_bundle``), client certificate, proxy."""

    tls: ssl.SSLContext
    proxy: Proxy | None = None
    proxy_tls: ssl.SSLContext | None = None


async def resolve_transport(botocore_http: Any, endpoint_url: str) -> Transport:
    """The settings of ``botocore_http`` (the aiobotocore client's HTTP session, whose verify and
    proxy configuration botocore resolved from the config, the profile and the environment) for
    ``endpoint_url``. Asking it rather than reading the variables again keeps one resolution:
    the lean path cannot drift from botocore's. Its SSL contexts are built the same way,
    off the event loop (they read CA files)."""
    config = botocore_http._proxy_config
    proxy_url = config.proxy_url_for(endpoint_url)
    proxy = Proxy(proxy_url, dict(config.proxy_headers_for(proxy_url))) if proxy_url else None
    context, proxy_context = await asyncio.to_thread(botocore_http._build_ssl_contexts, proxy_url)
    return Transport(context, proxy, proxy_context)


async def open_lean_session(
    max_connections: int, connect_timeout_s: float, read_timeout_s: float, transport: Transport
) -> aiohttp.ClientSession:
    # aiobotocore's connector, so that an HTTPS proxy is reached with the proxy's own TLS
    # settings as botocore reaches it.
    connector = _ProxySSLTCPConnector(
        limit=max_connections, ttl_dns_cache=300, ssl=transport.tls, proxy_ssl_context=transport.proxy_tls
    )
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=connect_timeout_s, sock_read=read_timeout_s)
    # No cookie jar: Firehose sets no cookies, and matching the jar against every request's URL
    # is per-request work for nothing.
    return aiohttp.ClientSession(
        connector=connector,
        timeout=timeout,
        auto_decompress=False,
        skip_auto_headers=("Accept-Encoding",),
        cookie_jar=aiohttp.DummyCookieJar(),
    )


__all__ = [
    "LeanFirehoseClient",
    "PayloadHashes",
    "Proxy",
    "Transport",
    "encode_batch",
    "error_code",
    "open_lean_session",
    "resolve_transport",
]

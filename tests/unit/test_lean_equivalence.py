"""The lean PutRecordBatch path sends what botocore sends and reads every answer the same way."""

from __future__ import annotations

import base64
import hashlib
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest
from aiohttp import web
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from producer.firehose.client import ClientSettings, open_client
from producer.firehose.errors import ApiError
from producer.firehose.lean import (
    LeanFirehoseClient,
    PayloadHashes,
    Transport,
    encode_batch,
    open_lean_session,
)

KEY, SECRET = "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
RECORDS = [b'{"event_id":"a","n":1}\n', b"\x00\xffbinary\n", b"x" * 3000, "caf\u00e9 \u2603\n".encode()]


@dataclass
class Capture:
    requests: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    answer: tuple[int, bytes] = (200, b"{}")


@pytest.fixture(autouse=True)
def _keys(monkeypatch: pytest.MonkeyPatch) -> None:
    # The stock client takes these from the standard chain, as it would in AWS.
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)


@pytest.fixture
async def server() -> AsyncIterator[tuple[str, Capture]]:
    capture = Capture()

    async def handle(request: web.Request) -> web.Response:
        capture.requests.append((dict(request.headers), await request.read()))
        status, body = capture.answer
        return web.Response(status=status, body=body, content_type="application/x-amz-json-1.1")

    app = web.Application()
    app.router.add_post("/", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    yield f"http://{host}:{port}", capture
    await runner.cleanup()


def _signed_header_names(headers: dict[str, str]) -> list[str]:
    auth = headers["Authorization"]
    return auth.split("SignedHeaders=")[1].split(",")[0].split(";")


def _signature_is_valid(url: str, headers: dict[str, str], body: bytes) -> bool:
    """Recompute the SigV4 signature of a captured request at its own X-Amz-Date."""
    names = _signed_header_names(headers)
    lowered = {k.lower(): v for k, v in headers.items()}
    request = AWSRequest(
        method="POST", url=url + "/", data=body, headers={n: lowered[n] for n in names if n != "host"}
    )
    request.context["timestamp"] = lowered["x-amz-date"]
    signer = SigV4Auth(Credentials(KEY, SECRET), "firehose", "us-east-1")
    canonical = signer.canonical_request(request)
    expected = signer.signature(signer.string_to_sign(request, canonical), request)
    return headers["Authorization"].endswith(f"Signature={expected}")


async def _both(url: str, capture: Capture, answer: tuple[int, bytes]) -> list[Any]:
    """Send RECORDS through the stock client and the lean one; return each result or error."""
    capture.answer = answer
    results: list[Any] = []
    settings = ClientSettings(region="us-east-1", endpoint_url=url, allow_local_credentials=True)
    async with open_client(settings) as stock:
        results.append(await _outcome(stock.put_record_batch("my-stream", RECORDS)))
    async with await open_lean_session(4, 5.0, 5.0, Transport(ssl.create_default_context())) as http:
        lean = LeanFirehoseClient(http, url, "us-east-1", Credentials(KEY, SECRET), "firehose-loadgen/test")
        results.append(
            await _outcome(lean.put_record_batch("my-stream", [lean.wire.encode(r) for r in RECORDS]))
        )
    return results


async def _outcome(call: Any) -> Any:
    try:
        response = await call
    except ApiError as exc:
        return ("error", exc.code, exc.message, exc.http_status)
    return {k: response[k] for k in ("FailedPutCount", "Encrypted", "RequestResponses") if k in response}


async def test_same_body_same_signed_headers_and_valid_signatures(server: tuple[str, Capture]) -> None:
    url, capture = server
    ok = orjson.dumps(
        {
            "FailedPutCount": 0,
            "Encrypted": False,
            "RequestResponses": [{"RecordId": f"id{i}"} for i in range(len(RECORDS))],
        }
    )
    stock_result, lean_result = await _both(url, capture, (200, ok))
    assert stock_result == lean_result
    (stock_headers, stock_body), (lean_headers, lean_body) = capture.requests
    assert orjson.loads(stock_body) == orjson.loads(lean_body)
    sent = [base64.b64decode(r["Data"]) for r in orjson.loads(lean_body)["Records"]]
    assert sent == RECORDS
    assert _signed_header_names(stock_headers) == _signed_header_names(lean_headers)
    for name in ("X-Amz-Target", "Content-Type"):
        assert stock_headers[name] == lean_headers[name]
    assert f"Credential={KEY}/" in stock_headers["Authorization"], stock_headers["Authorization"]
    assert _signature_is_valid(url, stock_headers, stock_body)
    assert _signature_is_valid(url, lean_headers, lean_body)
    # A tampered body must not verify: the check above can fail.
    assert not _signature_is_valid(url, lean_headers, lean_body.replace(b"my-stream", b"my-streaM"))


ANSWERS = {
    "partial failure": (
        200,
        orjson.dumps(
            {
                "FailedPutCount": 2,
                "Encrypted": False,
                "RequestResponses": [
                    {"RecordId": "a"},
                    {"ErrorCode": "ServiceUnavailableException", "ErrorMessage": "Slow down."},
                    {"ErrorCode": "InternalFailure", "ErrorMessage": "Internal"},
                    {"RecordId": "d"},
                ],
            }
        ),
    ),
    "throttled call": (503, b'{"__type":"ServiceUnavailableException","message":"Slow down."}'),
    "internal failure": (500, b'{"__type":"InternalFailure","message":"boom"}'),
    "not found": (400, b'{"__type":"ResourceNotFoundException","message":"Firehose my-stream not found."}'),
    "invalid argument": (400, b'{"__type":"InvalidArgumentException","message":"bad"}'),
    "validation": (400, b'{"__type":"ValidationException","message":"1 validation error detected"}'),
    "kms": (400, b'{"__type":"InvalidKMSResourceException","message":"key disabled"}'),
    "namespaced type": (400, b'{"__type":"com.amazon.coral.service#AccessDeniedException","Message":"no"}'),
    "html 502": (502, b"<html>Bad Gateway</html>"),
}


@pytest.mark.parametrize("name", sorted(ANSWERS))
async def test_every_answer_reads_the_same(server: tuple[str, Capture], name: str) -> None:
    url, capture = server
    stock_result, lean_result = await _both(url, capture, ANSWERS[name])
    assert stock_result == lean_result


@pytest.mark.parametrize("count", [0, 1, 2, 3, 500])
def test_the_body_is_the_parameters_as_json_for_any_number_of_records(count: int) -> None:
    records = [b"record %d \x00\xff" % i for i in range(count)]
    body, split = encode_batch('stream "quoted"', [base64.b64encode(r) for r in records])
    assert body[split:] == b'"DeliveryStreamName":"stream \\"quoted\\""}'
    expected = {
        "DeliveryStreamName": 'stream "quoted"',
        "Records": [{"Data": base64.b64encode(r).decode()} for r in records],
    }
    assert orjson.loads(body) == expected


def test_payload_hashes_share_only_the_same_records() -> None:
    hashes = PayloadHashes(size=2)
    first = [base64.b64encode(b"record %d" % i) for i in range(300)]
    equal_copies = [bytes(bytearray(r)) for r in first]  # equal, but other objects

    def check(stream: str, records: list[bytes]) -> None:
        body, split = encode_batch(stream, records)
        assert hashes.digest(records, body, split) == hashlib.sha256(body).hexdigest()

    check("a", first)
    check("b", first[:])  # another list of the same objects: shared
    assert hashes.shared == 1
    check("c", first)  # an entry serves one other stream, then it is gone: hashed anew
    assert hashes.shared == 1
    check("a", equal_copies)  # same length, other objects: hashed anew
    check("a", first[:-1])
    check("a", [first[0], *equal_copies[1:-1], first[-1]])  # same key, other objects
    check("a", [first[0], *(b"x" + r for r in first[1:-1]), first[-1]])  # and other text
    assert hashes.shared == 1
    check("d", first)  # its entry was pushed out (size 2): hashed anew, still right
    check("a", [])
    assert hashes.shared == 1


async def test_two_streams_sent_the_same_records_are_both_signed_right(server: tuple[str, Capture]) -> None:
    url, capture = server
    capture.answer = (200, orjson.dumps({"FailedPutCount": 0, "RequestResponses": [{"RecordId": "r"}] * 4}))
    async with await open_lean_session(4, 5.0, 5.0, Transport(ssl.create_default_context())) as http:
        lean = LeanFirehoseClient(http, url, "us-east-1", Credentials(KEY, SECRET), "firehose-loadgen/test")
        held = [lean.wire.encode(r) for r in RECORDS]
        for stream in ("stream-a", "stream-b"):
            await lean.put_record_batch(stream, held)
    assert lean.payload_hashes.shared == 1  # the second body hashed only its own tail
    assert len(capture.requests) == 2
    for (headers, body), stream in zip(capture.requests, ("stream-a", "stream-b"), strict=True):
        parsed = orjson.loads(body)
        assert parsed["DeliveryStreamName"] == stream
        assert [base64.b64decode(r["Data"]) for r in parsed["Records"]] == RECORDS
        assert _signature_is_valid(url, headers, body)

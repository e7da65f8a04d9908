"""audit --opensearch-url against an IAM-only domain: requests signed with SigV4 (service "es").

The fake domain on 127.0.0.1 answers only requests whose Authorization header it recomputes
itself with botocore from what arrived (method, raw path, the signed headers, the body), the
way OpenSearch Service checks them; anything else gets 403, as the real domain answers.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from producer.audit.opensearch_source import READ_METHOD, read_opensearch
from producer.aws.sigv4 import default_signer, signing_region
from producer.errors import UsageError
from tests.helpers import run_cli

RUN = "20261204T041500Z-abcdef"
ACCESS_KEY = "AKIDEXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
TOKEN = "session-token-for-the-test"
REGION = "eu-west-1"
AUTH = re.compile(
    r"AWS4-HMAC-SHA256 Credential=(?P<key>[^/]+)/(?P<date>\d{8})/(?P<region>[^/]+)/(?P<service>[^/]+)"
    r"/aws4_request, SignedHeaders=(?P<signed>[a-z0-9;-]+), Signature=(?P<signature>[0-9a-f]{64})"
)


def _why_not_valid(request: web.Request, body: bytes) -> str | None:
    """None when the request carries a valid SigV4 signature for this domain, else why not."""
    match = AUTH.fullmatch(request.headers.get("Authorization", ""))
    if match is None:
        return f"no SigV4 Authorization header: {request.headers.get('Authorization')!r}"
    if (match["key"], match["region"], match["service"]) != (ACCESS_KEY, REGION, "es"):
        return f"wrong credential scope: {match.group(0)[:120]}"
    signed = match["signed"].split(";")
    for needed in ("host", "x-amz-date", "x-amz-content-sha256", "x-amz-security-token"):
        if needed not in signed:
            return f"{needed} is not signed"
    if request.headers["X-Amz-Content-SHA256"] != hashlib.sha256(body).hexdigest():
        return "x-amz-content-sha256 is not the body's hash"
    if request.headers["X-Amz-Security-Token"] != TOKEN:
        return "wrong session token"
    amz_date = request.headers["X-Amz-Date"]
    if amz_date[:8] != match["date"]:
        return "x-amz-date and the credential scope disagree"
    again = AWSRequest(
        method=request.method,
        url=f"http://{request.host}{request.raw_path}",
        data=body,
        headers={name: request.headers[name] for name in signed},
    )
    again.context["timestamp"] = amz_date
    signer = SigV4Auth(Credentials(ACCESS_KEY, SECRET, TOKEN), "es", REGION)
    expected = signer.signature(signer.string_to_sign(again, signer.canonical_request(again)), again)
    return None if expected == match["signature"] else "signature does not match"


class IamOnlyDomain:
    """_count and _search (search_after paging) for requests that pass the SigV4 check."""

    def __init__(self, docs: list[dict[str, Any]]) -> None:
        self.docs = sorted(((d["seq"], f"id{i:05d}", d) for i, d in enumerate(docs)), key=lambda t: t[:2])
        self.verified = 0
        self.paths: set[str] = set()

    async def _check(self, request: web.Request) -> tuple[dict[str, Any], web.Response | None]:
        body = await request.read()
        why = _why_not_valid(request, body)
        if why is not None:
            return {}, web.json_response({"message": why}, status=403)
        self.verified += 1
        self.paths.add(request.raw_path)
        parsed: dict[str, Any] = await request.json()
        return parsed, None

    def _mine(self, body: dict[str, Any]) -> list[tuple[int, str, dict[str, Any]]]:
        run = body["query"]["match_phrase"]["run_id"]
        return [t for t in self.docs if t[2].get("run_id") == run]

    async def count(self, request: web.Request) -> web.Response:
        body, denied = await self._check(request)
        return denied or web.json_response({"count": len(self._mine(body))})

    async def search(self, request: web.Request) -> web.Response:
        body, denied = await self._check(request)
        if denied:
            return denied
        after = tuple(body.get("search_after") or (-1, ""))
        hits = [t for t in self._mine(body) if t[:2] > after][: body["size"]]
        return web.json_response(
            {"hits": {"hits": [{"_id": i, "_source": d, "sort": [s, i]} for s, i, d in hits]}}
        )


@pytest.fixture
async def domain() -> AsyncIterator[tuple[str, IamOnlyDomain]]:
    docs = [{"run_id": RUN, "seq": s, "timestamp": "2026-12-04T04:15:00.000Z"} for s in range(6_000)]
    fake = IamOnlyDomain([*docs, {"run_id": RUN, "seq": 3}, {"run_id": "other", "seq": 1}])
    app = web.Application()
    # GET only: the stack's domain policy lets the account's readers use es:ESHttpGet, not Post.
    app.router.add_get("/{index}/_count", fake.count)
    app.router.add_get("/{index}/_search", fake.search)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    try:
        yield f"http://{host}:{port}", fake
    finally:
        await runner.cleanup()


@pytest.fixture
def credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    # conftest's autouse fixture has removed the developer's AWS_* variables and files.
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    monkeypatch.setenv("AWS_SESSION_TOKEN", TOKEN)


@pytest.mark.usefixtures("credentials")
async def test_reads_an_iam_only_domain_with_sigv4(domain: tuple[str, IamOnlyDomain]) -> None:
    url, fake = domain
    signer = await default_signer(url, REGION, READ_METHOD)
    assert signer is not None
    found = await read_opensearch(url, "realtime-events*", RUN, "s-opensearch", signer)
    assert (found.seqs.unique, found.seqs.total) == (6_000, 6_001)  # seq 3 twice: a duplicate
    assert found.other_runs == 0 and found.untraced_records == 0
    assert fake.verified == 3  # _count and two search pages, each signed and verified
    assert fake.paths == {"/realtime-events*/_count", "/realtime-events*/_search"}


@pytest.mark.usefixtures("credentials")
async def test_the_domain_rejects_a_wrong_signature(
    domain: tuple[str, IamOnlyDomain], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The check in the fake is real: a request signed with another secret gets 403."""
    url, fake = domain
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
    signer = await default_signer(url, REGION, READ_METHOD)
    with pytest.raises(UsageError, match=r"answered 403 \(signed with SigV4 for eu-west-1\).*does not match"):
        await read_opensearch(url, "realtime-events*", RUN, "s-opensearch", signer)
    assert fake.verified == 0


async def test_without_credentials_requests_are_unsigned_and_refused(
    domain: tuple[str, IamOnlyDomain],
) -> None:
    url, _ = domain
    assert await default_signer(url, REGION, READ_METHOD) is None
    with pytest.raises(UsageError, match=r"answered 403 \(not signed: no AWS credentials found\)"):
        await read_opensearch(url, "realtime-events*", RUN, "s-opensearch", None)


@pytest.mark.usefixtures("credentials")
async def test_basic_auth_in_the_url_is_not_signed(domain: tuple[str, IamOnlyDomain]) -> None:
    url, _ = domain
    assert await default_signer(url.replace("http://", "http://user:pw@"), REGION, READ_METHOD) is None


def test_signing_region_comes_from_the_domain_endpoint() -> None:
    endpoint = "https://search-realtime-abc123xyz.ap-southeast-2.es.amazonaws.com"
    assert signing_region(endpoint, "us-east-1") == "ap-southeast-2"
    assert signing_region("https://vpc-realtime-abc123.eu-west-1.es.amazonaws.com:443", "x") == "eu-west-1"
    assert signing_region("http://127.0.0.1:9200", REGION) == REGION


@pytest.mark.usefixtures("credentials")
async def test_audit_command_signs_and_reports_the_domain(
    domain: tuple[str, IamOnlyDomain], tmp_path: Path
) -> None:
    """`audit --opensearch-url URL --region R` end to end: credentials from the environment, the
    signed reads, the report (the duplicate of seq 3 found, exit 1 for it)."""
    url, fake = domain
    (tmp_path / "runs").mkdir()
    summary = {
        "run_id": RUN,
        "profile": "mixed",
        "target": "aws",
        "duration_s": 1.0,
        "events_generated": 6_000,
        "streams": {"s-opensearch": {"sent": 6_000, "accepted": 6_000, "dead_lettered": 0}},
    }
    (tmp_path / "runs" / f"{RUN}.json").write_text(json.dumps(summary), encoding="utf-8")
    result = await asyncio.to_thread(
        run_cli,
        "audit",
        "--run-id",
        RUN,
        "--output-dir",
        str(tmp_path),
        "--opensearch-url",
        url,
        "--region",
        REGION,
        "--json",
    )
    assert result.returncode == 1, result.stderr  # findings: one duplicate
    stream = json.loads(result.stdout)["streams"]["s-opensearch"]
    assert (stream["missing"], stream["duplicates"]) == (0, 1), stream
    assert fake.verified == 3

"""The run's documents in an OpenSearch index, through its HTTP API.

``_count`` gives the total; a search_after pass sorted by (seq, _id) reads every document's
trace fields, so duplicates (the same event indexed twice under different ids) are counted.
https://opensearch.org/docs/latest/api-reference/count/
https://opensearch.org/docs/latest/search-plugins/searching-data/paginate/#the-search_after-parameter
Basic auth when the URL carries user:password (fine-grained access control); otherwise, when
AWS credentials are found (the SDK's usual chain), every request is signed with SigV4 by
botocore's signer for service "es", so an IAM-only domain can be read:
https://docs.aws.amazon.com/opensearch-service/latest/developerguide/ac.html#managedomains-signing-service-requests
Without either, requests go out plain (an open or local cluster).
"""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

import aiohttp
import orjson
from yarl import URL

from producer.audit import trace
from producer.audit.findings import StreamFindings
from producer.aws.sigv4 import SigV4Signer
from producer.errors import UsageError

PAGE_SIZE = 5000
_FIELDS = [trace.RUN_ID_FIELD, trace.SEQ_FIELD, *trace.EVENT_TIME_FIELDS]
# _count and _search take their query as a GET body, so reading needs only es:ESHttpGet, the
# action the stack's domain policy grants the account's readers (POST would need ESHttpPost).
# https://docs.aws.amazon.com/opensearch-service/latest/developerguide/ac.html#ac-reference
READ_METHOD = "GET"


def _query(run_id: str) -> dict[str, Any]:
    # match_phrase works whether run_id was mapped as text (dynamic mapping) or keyword; the
    # exact comparison happens on each hit.
    return {"match_phrase": {trace.RUN_ID_FIELD: run_id}}


def _split_auth(url: str) -> tuple[str, dict[str, str]]:
    """The URL without its user:password, and the Authorization header they make."""
    parts = urlsplit(url)
    if parts.username is None:
        return url.rstrip("/"), {}
    netloc = parts.hostname or ""
    if parts.port:
        netloc += f":{parts.port}"
    clean = urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment)).rstrip("/")
    token = base64.b64encode(f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()).decode()
    return clean, {"Authorization": f"Basic {token}"}


async def read_opensearch(
    url: str, index: str, run_id: str, stream: str, signer: SigV4Signer | None = None
) -> StreamFindings:
    """``signer``: sign every request with SigV4 (see default_signer); None sends them unsigned,
    or with basic auth when the URL carries user:password."""
    base, headers = _split_auth(url)
    findings = StreamFindings(stream, "opensearch")
    timeout = aiohttp.ClientTimeout(total=60)
    try:
        async with aiohttp.ClientSession(headers=headers, timeout=timeout) as http:
            count = await _read(http, f"{base}/{index}/_count", {"query": _query(run_id)}, signer)
            total = int(count.get("count", 0))
            read = 0
            after: list[Any] | None = None
            while True:
                body: dict[str, Any] = {
                    "size": PAGE_SIZE,
                    "query": _query(run_id),
                    "sort": [{trace.SEQ_FIELD: "asc"}, {"_id": "asc"}],
                    "_source": _FIELDS,
                    "track_total_hits": False,
                }
                if after is not None:
                    body["search_after"] = after
                page = await _read(http, f"{base}/{index}/_search", body, signer)
                hits = page.get("hits", {}).get("hits", [])
                for hit in hits:
                    found = trace.from_event(hit.get("_source") or {})
                    if found is None:
                        findings.untraced_records += 1
                    elif found.run_id == run_id:
                        # No per-document delivery time in the index: latency stays unknown here.
                        findings.delivered(found.seq, found.event_time, None)
                    else:
                        findings.other_runs += 1
                read += len(hits)
                if len(hits) < PAGE_SIZE:
                    break
                after = hits[-1]["sort"]
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise UsageError(f"OpenSearch at {base} is not reachable: {type(exc).__name__}: {exc}") from None
    if read != total:
        findings.notes.append(f"_count said {total} documents, the search pass read {read}")
    findings.notes.append("OpenSearch index: latency and objects not known from the index")
    return findings


async def _read(
    http: aiohttp.ClientSession, url: str, body: dict[str, Any], signer: SigV4Signer | None
) -> dict[str, Any]:
    data = orjson.dumps(body)
    headers = {"Content-Type": "application/json"}
    if signer is not None:
        headers = await signer.headers(url, data, headers)
    # encoded=True: the path goes out exactly as signed (the "*" of an index pattern included).
    async with http.request(READ_METHOD, URL(url, encoded=True), data=data, headers=headers) as r:
        text = await r.read()
        if r.status >= 400:
            how = (
                f"signed with SigV4 for {signer.region}" if signer else "not signed: no AWS credentials found"
            )
            raise UsageError(
                f"OpenSearch {url} answered {r.status} ({how}): {text[:200].decode(errors='replace')}"
            )
        result: dict[str, Any] = orjson.loads(text)
        return result

"""The run's documents in an OpenSearch index, through its HTTP API.

``_count`` gives the total; a search_after pass sorted by (seq, _id) reads every document's
trace fields, so duplicates (the same event indexed twice under different ids) are counted.
https://opensearch.org/docs/latest/api-reference/count/
https://opensearch.org/docs/latest/search-plugins/searching-data/paginate/#the-search_after-parameter
Plain HTTP(S), optionally with basic auth in the URL (fine-grained access control); an
IAM-only domain needs SigV4, which this reader does not sign.
"""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

import aiohttp
import orjson

from producer.audit import trace
from producer.audit.findings import StreamFindings
from producer.errors import UsageError

PAGE_SIZE = 5000
_FIELDS = [trace.RUN_ID_FIELD, trace.SEQ_FIELD, *trace.EVENT_TIME_FIELDS]


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


async def read_opensearch(url: str, index: str, run_id: str, stream: str) -> StreamFindings:
    base, headers = _split_auth(url)
    findings = StreamFindings(stream, "opensearch")
    timeout = aiohttp.ClientTimeout(total=60)
    try:
        async with aiohttp.ClientSession(headers=headers, timeout=timeout) as http:
            count = await _post(http, f"{base}/{index}/_count", {"query": _query(run_id)})
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
                page = await _post(http, f"{base}/{index}/_search", body)
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


async def _post(http: aiohttp.ClientSession, url: str, body: dict[str, Any]) -> dict[str, Any]:
    async with http.post(url, data=orjson.dumps(body), headers={"Content-Type": "application/json"}) as r:
        text = await r.read()
        if r.status >= 400:
            raise UsageError(f"OpenSearch {url} answered {r.status}: {text[:200].decode(errors='replace')}")
        result: dict[str, Any] = orjson.loads(text)
        return result

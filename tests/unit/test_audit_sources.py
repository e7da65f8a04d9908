"""The remote sources: S3 (moto's server on 127.0.0.1), OpenSearch (a small fake of its HTTP API),
CloudWatch (botocore Stubber on an aiobotocore client), and Parquet objects."""

from __future__ import annotations

import base64
import gzip
import io
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import botocore.session
import orjson
import pyarrow as pa  # type: ignore[import-untyped,import-not-found,unused-ignore]
import pyarrow.parquet as pq  # type: ignore[import-untyped,import-not-found,unused-ignore]
import pytest
from aiobotocore.session import get_session
from aiohttp import web
from botocore.stub import ANY, Stubber

from producer.audit import cloudwatch, objects
from producer.audit.opensearch_source import read_opensearch
from producer.audit.s3_source import read_s3, stream_of
from producer.aws.clients import AwsSettings
from producer.errors import UsageError

RUN = "20260101T000000Z-abcdef"
BUCKET = "audit-bucket"


def _record(seq: int, run: str = RUN) -> bytes:
    return orjson.dumps({"run_id": run, "seq": seq, "timestamp": "2026-01-01T00:00:00.000Z"}) + b"\n"


def test_stream_from_object_name() -> None:
    assert stream_of("raw/2026/01/01/00/my-stream-1-2026-01-01-00-00-00-abc.gz") == "my-stream"
    assert stream_of("raw/some-other-file.json") is None


async def test_s3_source_reads_gzip_objects_and_error_output(moto_url: str) -> None:
    s3 = botocore.session.get_session().create_client(
        "s3", region_name="us-east-1", endpoint_url=moto_url, aws_access_key_id="t", aws_secret_access_key="t"
    )
    s3.create_bucket(Bucket=BUCKET)
    name = "stream-a-1-2026-01-01-00-00-00-{}"
    s3.put_object(
        Bucket=BUCKET, Key="raw/" + name.format("1.gz"), Body=gzip.compress(b"".join(map(_record, range(50))))
    )
    # Seq 10-19 twice, plus another run's records in the same prefix.
    body = b"".join(map(_record, range(10, 20))) + _record(99, "other-run")
    s3.put_object(Bucket=BUCKET, Key="raw/" + name.format("2"), Body=body)
    envelope = orjson.dumps(
        {"errorCode": "Lambda.ProcessingFailed", "rawData": base64.b64encode(_record(50)).decode()}
    )
    s3.put_object(Bucket=BUCKET, Key="errors/processing-failed/" + name.format("3"), Body=envelope + b"\n")
    s3.put_object(Bucket=BUCKET, Key="raw/" + "stream-b-1-2026-01-01-00-00-00-x", Body=_record(1))
    found = await read_s3(AwsSettings("us-east-1", moto_url), BUCKET, "", RUN, ["stream-a"])
    a = found["stream-a"]
    assert (a.seqs.unique, a.seqs.total, a.other_runs) == (50, 60, 1)
    assert dict(a.errors) == {"processing-failed": 1} and a.error_seqs.count(50) == 1
    assert len(a.objects) == 2 and all(o.delivered_at for o in a.objects)


async def test_s3_source_missing_bucket_is_one_clear_error(moto_url: str) -> None:
    with pytest.raises(UsageError, match="NoSuchBucket"):
        await read_s3(AwsSettings("us-east-1", moto_url), "no-such-bucket", "", RUN, ["s"])


class FakeOpenSearch:
    """_count and _search with sort [seq, _id] and search_after, as OpenSearch pages."""

    def __init__(self, docs: list[dict[str, Any]]) -> None:
        self.docs = sorted(((d["seq"], f"id{i:05d}", d) for i, d in enumerate(docs)), key=lambda t: t[:2])
        self.searches = 0
        self.auth: set[str] = set()

    def _mine(self, body: dict[str, Any]) -> list[tuple[int, str, dict[str, Any]]]:
        run = body["query"]["match_phrase"]["run_id"]
        return [t for t in self.docs if t[2].get("run_id") == run]

    async def count(self, request: web.Request) -> web.Response:
        self.auth.add(request.headers.get("Authorization", ""))
        return web.json_response({"count": len(self._mine(await request.json()))})

    async def search(self, request: web.Request) -> web.Response:
        self.searches += 1
        self.auth.add(request.headers.get("Authorization", ""))
        body = await request.json()
        after = tuple(body.get("search_after") or (-1, ""))
        hits = [t for t in self._mine(body) if t[:2] > after][: body["size"]]
        return web.json_response(
            {"hits": {"hits": [{"_id": i, "_source": d, "sort": [s, i]} for s, i, d in hits]}}
        )


@pytest.fixture
async def opensearch() -> AsyncIterator[tuple[str, FakeOpenSearch]]:
    docs = [{"run_id": RUN, "seq": s} for s in range(12_000)] + [
        {"run_id": RUN, "seq": 7},
        {"run_id": "x", "seq": 1},
    ]
    fake = FakeOpenSearch(docs)
    app = web.Application()
    app.router.add_get("/{index}/_count", fake.count)
    app.router.add_get("/{index}/_search", fake.search)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    try:
        yield f"http://user:pw@{host}:{port}", fake
    finally:
        await runner.cleanup()


async def test_opensearch_source_pages_with_search_after(opensearch: tuple[str, FakeOpenSearch]) -> None:
    url, fake = opensearch
    found = await read_opensearch(url, "realtime-events*", RUN, "s-opensearch")
    assert (found.seqs.unique, found.seqs.total) == (12_000, 12_001)  # the duplicate of seq 7 is kept
    assert fake.searches == 3  # 5000 + 5000 + 2001
    assert fake.auth == {"Basic dXNlcjpwdw=="}  # user:pw from the URL
    assert not any("_count said" in n for n in found.notes)


async def test_opensearch_unreachable_is_one_clear_error() -> None:
    with pytest.raises(UsageError, match="not reachable"):
        await read_opensearch("http://127.0.0.1:9", "i", RUN, "s")


async def test_cloudwatch_metrics_for_the_window() -> None:
    session = get_session()
    async with session.create_client(
        "cloudwatch", region_name="us-east-1", aws_access_key_id="t", aws_secret_access_key="t"
    ) as cw:
        stamp = datetime(2026, 1, 1, 0, 1, tzinfo=UTC)
        queries, ids = cloudwatch.queries({"s": "s3", "s-opensearch": "opensearch"})
        names = {metric for _, metric in ids.values()}
        assert {
            "IncomingRecords",
            "ThrottledRecords",
            "DeliveryToS3.DataFreshness",
            "DeliveryToS3.Success",
        } <= names
        assert "DeliveryToAmazonOpenSearchService.DataFreshness" in names
        assert all(q["MetricStat"]["Metric"]["Namespace"] == "AWS/Firehose" for q in queries)
        first = [{"Id": q["Id"], "Timestamps": [stamp], "Values": [float(i)]} for i, q in enumerate(queries)]
        with Stubber(cw) as stub:
            stub.add_response(
                "get_metric_data",
                {"MetricDataResults": first[:3], "NextToken": "more"},
                {
                    "MetricDataQueries": queries,
                    "StartTime": ANY,
                    "EndTime": ANY,
                    "ScanBy": "TimestampAscending",
                },
            )
            stub.add_response(
                "get_metric_data",
                {"MetricDataResults": first[3:]},
                {
                    "MetricDataQueries": queries,
                    "StartTime": ANY,
                    "EndTime": ANY,
                    "ScanBy": "TimestampAscending",
                    "NextToken": "more",
                },
            )
            series = await cloudwatch.pull(
                cw, {"s": "s3", "s-opensearch": "opensearch"}, 1767225630.0, 1767225700.0
            )
            stub.assert_no_pending_responses()
    index = {q["Id"]: i for i, q in enumerate(queries)}
    by_name = {v: k for k, v in ids.items()}
    assert series["s"]["ThrottledRecords"] == [
        [stamp.timestamp(), float(index[by_name[("s", "ThrottledRecords")]])]
    ]
    # Every query's series came back: the common ones, the destination's and the S3 backup's.
    assert len(series["s-opensearch"]) == len(cloudwatch.metrics_for("opensearch")) == 11
    assert "BackupToS3.DataFreshness" in series["s-opensearch"]
    assert cloudwatch.INVOCATIONS in series["s"]


def test_parquet_objects_read_as_rows_and_a_damaged_one_is_one_clear_line() -> None:
    table = pa.table({"event_id": ["a", "b"], "run_id": ["r", "r"], "seq": [0, 1]})
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="snappy")
    rows = [orjson.loads(r) for r in objects.records(sink.getvalue())]
    assert rows == [{"event_id": "a", "run_id": "r", "seq": 0}, {"event_id": "b", "run_id": "r", "seq": 1}]
    with pytest.raises(UsageError) as caught:
        list(objects.records(b"PAR1" + b"\0" * 20 + b"PAR1"))
    assert "not readable Parquet" in str(caught.value) and "\n" not in str(caught.value)

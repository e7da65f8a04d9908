"""``--results-url file://DIR | s3://BUCKET/PREFIX``: where the shards of one run leave their
results, under ``RUN_ID/``:

    RUN_ID/shards/shard-I-of-N.json        each shard's summary (with its exit code), at its end
    RUN_ID/dead-letter/shard-I-of-N.jsonl  each shard's dead-letter spool, when it has one
    RUN_ID/abort.json                      an abort check fired somewhere: every shard stops
    RUN_ID/summary.json                    the merged run (``firehose-loadgen merge``)

A file:// store writes to a temporary name in the same folder and renames it (a reader sees the
whole file or none); an S3 PutObject is atomic by itself
(https://docs.aws.amazon.com/AmazonS3/latest/userguide/Welcome.html#ConsistencyModel).
S3 goes through producer/aws (aiobotocore, the standard credential chain; an S3-compatible
endpoint such as MinIO or moto through AWS_ENDPOINT_URL_S3, which the SDK reads itself).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from producer.aws import clients as aws
from producer.errors import UsageError
from producer.results.url import ResultsUrl

ABORT_KEY = "abort.json"
MERGED_KEY = "summary.json"
SHARDS = "shards"
SPOOLS = "dead-letter"
# How often the abort marker is looked for (seconds): a GET on S3, a stat on a folder.
MARKER_POLL_S = {"file": 0.5, "s3": 2.0}


class ResultsStore:
    """The store of one run: put/get/list by key under ``RUN_ID/``. Open with ``open_store``."""

    def __init__(self, url: ResultsUrl, run_id: str, s3: Any = None) -> None:
        self.url = url
        self.run_id = run_id
        self._s3 = s3

    @property
    def where(self) -> str:
        return self.url.describe(self.run_id)

    def _key(self, key: str) -> str:
        return f"{self.url.prefix}{self.run_id}/{key}"

    def _path(self, key: str) -> Path:
        return Path(self.url.root) / self.run_id / key

    async def check(self) -> None:
        """Before the run: the store can be written (a folder we can create, a bucket we can
        reach); UsageError (exit 2) otherwise, rather than a run whose results go nowhere."""
        if self._s3 is None:
            probe = self._path(".write-check")
            _write_atomic(probe, b"")
            with contextlib.suppress(OSError):
                probe.unlink()
            return
        try:
            await self._s3.head_bucket(Bucket=self.url.root)
        except aws.SDK_ERRORS as exc:
            raise aws.explain(exc, f"--results-url {self.url.text}: bucket {self.url.root!r}") from None

    async def put(self, key: str, body: bytes) -> None:
        if self._s3 is None:
            _write_atomic(self._path(key), body)
            return
        try:
            await self._s3.put_object(Bucket=self.url.root, Key=self._key(key), Body=body)
        except aws.SDK_ERRORS as exc:
            raise aws.explain(exc, f"writing {self.where}{key}") from None

    async def get(self, key: str) -> bytes | None:
        """The object's bytes; None when there is none."""
        if self._s3 is None:
            try:
                return self._path(key).read_bytes()
            except FileNotFoundError:
                return None
            except OSError as exc:
                raise UsageError(f"reading {self.where}{key}: {exc.strerror or exc}") from None
        try:
            response = await self._s3.get_object(Bucket=self.url.root, Key=self._key(key))
            async with response["Body"] as body:
                data: bytes = await body.read()
            return data
        except aws.SDK_ERRORS as exc:
            if _code(exc) in ("NoSuchKey", "404"):
                return None
            raise aws.explain(exc, f"reading {self.where}{key}") from None

    async def exists(self, key: str) -> bool:
        if self._s3 is None:
            return self._path(key).is_file()
        try:
            await self._s3.head_object(Bucket=self.url.root, Key=self._key(key))
            return True
        except aws.SDK_ERRORS as exc:
            if _code(exc) in ("NoSuchKey", "404", "NotFound"):
                return False
            raise aws.explain(exc, f"reading {self.where}{key}") from None

    async def names(self, folder: str) -> list[str]:
        """The names of the objects directly in ``folder`` (e.g. ``shards``)."""
        if self._s3 is None:
            path = self._path(folder)
            try:
                return sorted(p.name for p in path.iterdir() if p.is_file() and not p.name.startswith("."))
            except FileNotFoundError:
                return []
            except OSError as exc:
                raise UsageError(f"reading {self.where}{folder}: {exc.strerror or exc}") from None
        prefix = self._key(folder) + "/"
        out: list[str] = []
        try:
            paginator = self._s3.get_paginator("list_objects_v2")
            async for page in paginator.paginate(Bucket=self.url.root, Prefix=prefix):
                out.extend(item["Key"][len(prefix) :] for item in page.get("Contents", []))
        except aws.SDK_ERRORS as exc:
            raise aws.explain(exc, f"listing {self.where}{folder}") from None
        return sorted(name for name in out if name and "/" not in name)


@dataclass(frozen=True, slots=True)
class AbortMarker:
    """The run's abort marker in ``store`` (checks/watch.AbortBoard)."""

    store: ResultsStore

    @property
    def where(self) -> str:
        return self.store.where + ABORT_KEY

    @property
    def poll_s(self) -> float:
        return MARKER_POLL_S[self.store.url.scheme]

    async def read(self) -> bytes | None:
        return await self.store.get(ABORT_KEY)

    async def write(self, body: bytes) -> None:
        await self.store.put(ABORT_KEY, body)


async def publish_shard(
    store: ResultsStore, shard: str, summary: dict[str, Any], exit_code: int, spools: Sequence[Path] = ()
) -> None:
    """A shard's end: its spool first (several, a --workers run's, joined: JSON lines), then its
    summary (which names the spool, so a reader that sees the summary finds the spool too)."""
    bodies = [b for b in (_read_if_any(p) for p in spools) if b]
    if bodies:
        await store.put(
            f"{SPOOLS}/{shard}.jsonl", b"".join(b if b.endswith(b"\n") else b + b"\n" for b in bodies)
        )
    await store.put(
        f"{SHARDS}/{shard}.json", orjson.dumps(summary | {"exit_code": exit_code}, option=orjson.OPT_INDENT_2)
    )


def _read_if_any(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None


def _code(exc: Exception) -> str:
    response = getattr(exc, "response", None)
    return str(((response or {}).get("Error") or {}).get("Code", ""))


def _write_atomic(path: Path, body: bytes) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(body)
                f.flush()
                os.fsync(f.fileno())
            os.replace(temp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temp)
            raise
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from None


@asynccontextmanager
async def open_store(url: ResultsUrl, run_id: str, region: str) -> AsyncIterator[ResultsStore]:
    """The run's store; an S3 one holds one client for its lifetime."""
    if url.scheme == "file":
        yield ResultsStore(url, run_id)
        return
    async with AsyncExitStack() as stack:
        s3 = await stack.enter_async_context(aws.client("s3", aws.AwsSettings(region)))
        yield ResultsStore(url, run_id, s3)

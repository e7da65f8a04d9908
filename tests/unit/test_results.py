"""The results store (file://) and merge over shard summaries on disk, in this process."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import orjson
import pytest

from producer.errors import UsageError
from producer.results.combine import MergeRequest, merge_run
from producer.results.store import ResultsStore, open_store, publish_shard
from producer.results.url import parse_results_url


def test_a_file_store_writes_whole_files_and_leaves_no_temporaries(tmp_path: Path) -> None:
    async def go() -> tuple[bytes | None, list[str], bytes | None]:
        async with open_store(parse_results_url(f"file://{tmp_path}"), "r1", "us-east-1") as store:
            await store.check()
            await store.put("shards/a.json", b"1")
            await store.put("shards/a.json", b"22")  # replaced whole
            return await store.get("shards/a.json"), await store.names("shards"), await store.get("nope")

    body, names, missing = asyncio.run(go())
    assert (body, names, missing) == (b"22", ["a.json"], None)
    assert sorted(p.name for p in (tmp_path / "r1").rglob("*")) == ["a.json", "shards"]


def test_a_store_that_cannot_be_written_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(UsageError, match=r"results-url '.*file': .*file is not a folder"):
        parse_results_url(f"file://{tmp_path / 'file'}")
    # Below a file: the folder cannot be made (found when the run starts, before any load).
    store = ResultsStore(parse_results_url(f"file://{tmp_path / 'file' / 'sub'}"), "r1")
    with pytest.raises(UsageError, match=r"cannot write .*file/sub/r1/\.write-check"):
        asyncio.run(store.check())


def _part(index: int, sent: int, exit_code: int = 0, **extra: Any) -> dict[str, Any]:
    stream = {"sent": sent, "accepted": sent - extra.pop("lost", 0), "lost": 0, "requests": 1}
    return {
        "run_id": "r",
        "target": "endpoint x",
        "duration_s": 1.0 + index,
        "events_generated": sent,
        "streams": {"s": stream},
        "shard": {"index": index, "count": 3},
        **extra,
    }


def _merge(tmp_path: Path, parts: list[tuple[dict[str, Any], int]], expect: int | None = None) -> Any:
    url = parse_results_url(f"file://{tmp_path / 'results'}")

    async def go() -> Any:
        async with open_store(url, "r", "us-east-1") as store:
            for summary, code in parts:
                await publish_shard(store, f"shard-{summary['shard']['index']}-of-3", summary, code)
        return await merge_run(MergeRequest("r", url, "us-east-1", tmp_path / "out", expect=expect))

    return asyncio.run(go())


def test_merge_names_failed_shards_and_an_incomplete_workers_shard_makes_the_run_incomplete(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    summary = _merge(
        tmp_path,
        [(_part(0, 10), 0), (_part(1, 20, complete=False), 4), (_part(2, 30), 3)],
    )
    assert summary.streams["s"].sent == 60 and summary.duration_s == 3.0
    assert summary.shards == {
        "expected": 3,
        "found": [0, 1, 2],
        "missing": [],
        "failed": [{"shard": 1, "exit_code": 4}, {"shard": 2, "exit_code": 3}],
    }
    assert summary.complete is False and summary.exit_code() == 4
    err = capsys.readouterr().err
    assert "shard-1-of-3 of run r ended with exit code 4" in err
    written = orjson.loads((tmp_path / "out" / "runs" / "r.json").read_bytes())
    assert written == orjson.loads((tmp_path / "results" / "r" / "summary.json").read_bytes())


def test_merge_of_a_whole_run_is_complete(tmp_path: Path) -> None:
    summary = _merge(tmp_path, [(_part(i, 10 * (i + 1)), 0) for i in range(3)], expect=3)
    assert summary.complete is True and summary.exit_code() == 0
    assert summary.events_generated == 60 and summary.shards["missing"] == []

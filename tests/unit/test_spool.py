"""The dead-letter spool: every field a replay or a person needs, and clear errors on bad files."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import orjson
import pytest

from producer.delivery.batching import Batch, single
from producer.delivery.spool import Spool, check_spool_path, read_spool


def test_round_trip_keeps_every_field(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "sub" / "dead.jsonl")
    failed = Batch(
        [b"\x00binary\xff"], 8, 1.0, 1.0, attempts=4, first_attempt_at=100.5, last_attempt_at=107.25
    )
    failed.mark_failed("ServiceUnavailableException", "Slow down.")
    never_sent = single(b"x" * 10, 10, 2.0)
    spool.write("s1", failed, "RetriesExhausted", message="gave up after 4 attempts")
    spool.write("s2", never_sent, "RecordTooLarge", message="too big")
    spool.close()
    lines = [orjson.loads(line) for line in spool.path.read_bytes().splitlines()]
    assert lines[0] == {
        "stream": "s1",
        "reason": "RetriesExhausted",
        "error_code": "ServiceUnavailableException",
        "message": "gave up after 4 attempts",
        "attempts": 4,
        "first_attempt_at": 100.5,
        "last_attempt_at": 107.25,
        "data": base64.b64encode(b"\x00binary\xff").decode(),
    }
    assert lines[1]["error_code"] == "RecordTooLarge" and lines[1]["first_attempt_at"] is None
    entries = list(read_spool(spool.path))
    assert [e.data for e in entries] == [b"\x00binary\xff", b"x" * 10]
    assert entries[0].attempts == 4 and entries[1].first_attempt_at == 0.0
    assert spool.count == 2


def test_explicit_error_code_wins_over_the_records_last(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "d.jsonl")
    batch = Batch([b"a"], 1, attempts=1)
    batch.mark_failed("InternalFailure", "boom")
    spool.write("s", batch, "NonRetryable", "ResourceNotFoundException", "gone")
    spool.close()
    [entry] = read_spool(spool.path)
    assert entry.error_code == "ResourceNotFoundException" and entry.message == "gone"


def test_each_record_keeps_its_own_last_error(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "d.jsonl")
    batch = Batch([b"a", b"b"], 2, attempts=3)
    batch.keep([0, 1], ["InternalFailure", "ServiceUnavailableException"], ["boom", "slow"])
    spool.write("s", batch, "RetriesExhausted")
    spool.close()
    entries = list(read_spool(spool.path))
    assert [(e.error_code, e.message) for e in entries] == [
        ("InternalFailure", "boom"),
        ("ServiceUnavailableException", "slow"),
    ]


def test_no_file_until_something_is_spooled(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "d.jsonl")
    spool.write("s", Batch(), "Dropped")
    spool.close()
    assert not spool.path.exists()


def test_bad_line_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    good = orjson.dumps({"stream": "s", "reason": "Dropped", "data": base64.b64encode(b"a").decode()})
    path.write_bytes(good + b"\n\n" + b'{"stream": "s"}\n')
    with pytest.raises(ValueError, match=r"d\.jsonl:3: not a dead-letter entry"):
        list(read_spool(path))


def test_the_up_front_check_tries_the_write_and_leaves_nothing_behind(tmp_path: Path) -> None:
    deep = tmp_path / "a" / "b" / "dead.jsonl"
    assert check_spool_path(deep) is None
    assert list(tmp_path.iterdir()) == []  # the folders it made to try are gone again
    kept = tmp_path / "kept.jsonl"
    kept.write_bytes(b"earlier\n")
    assert check_spool_path(kept) is None and kept.read_bytes() == b"earlier\n"
    assert check_spool_path(tmp_path) == "Is a directory"
    assert check_spool_path(Path("/dev/full")) == "not a regular file"
    pipe = tmp_path / "pipe"
    os.mkfifo(pipe)
    assert check_spool_path(pipe) == "not a regular file"  # and not opened: that would block
    assert check_spool_path(kept / "dead.jsonl") == f"{kept} is not a folder"
    # /proc takes no new folder, whatever its permission bits say (root passes those).
    assert (
        check_spool_path(Path("/proc/nope/dl.jsonl"))
        == "cannot create the folder /proc/nope (No such file or directory)"
    )

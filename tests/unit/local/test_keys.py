"""Object keys and index names as Firehose forms them (s3-prefixes, s3-object-name, index rotation)."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from producer.local import keys

AT = datetime(2026, 12, 1, 7, 5, 9, 123000, tzinfo=UTC)


def test_no_prefix_gets_the_default_hour_folders() -> None:
    assert keys.expand_prefix("", AT) == "2026/12/01/07/"
    assert keys.expand_prefix("raw/", AT) == "raw/2026/12/01/07/"


def test_timestamp_expressions_replace_the_default_folders() -> None:
    prefix = "year=!{timestamp:yyyy}/month=!{timestamp:MM}/day=!{timestamp:dd}/hour=!{timestamp:HH}/"
    assert keys.expand_prefix(prefix, AT) == "year=2026/month=12/day=01/hour=07/"


def test_quoted_literals_in_a_timestamp_pattern_are_kept() -> None:
    assert keys.expand_prefix("!{timestamp:yyyy'-'MM'-'dd}/", AT) == "2026-12-01/"


def test_error_output_type_expands_in_the_error_prefix() -> None:
    prefix = "errors/!{firehose:error-output-type}/!{timestamp:yyyy}/"
    assert keys.expand_prefix(prefix, AT, "processing-failed") == "errors/processing-failed/2026/"


def test_error_prefix_without_expressions_gets_type_and_hour_folders() -> None:
    assert keys.expand_prefix("err/", AT, "processing-failed") == "err/processing-failed/2026/12/01/07/"


def test_unknown_namespace_is_rejected() -> None:
    with pytest.raises(ValueError, match="unsupported"):
        keys.expand_prefix("!{partitionKeyFromQuery:x}/", AT)


def test_object_name_layout_and_gzip_suffix() -> None:
    name = keys.object_name("realtime-data-stream", "1", AT, gzip=True)
    assert re.fullmatch(r"realtime-data-stream-1-2026-12-01-07-05-09-[0-9a-f-]{36}\.gz", name), name
    plain = keys.object_name("s", "1", AT, gzip=False)
    assert not plain.endswith(".gz")
    assert keys.object_name("s", "1", AT, gzip=True, extension=".json.gz").endswith(".json.gz")


@pytest.mark.parametrize(
    ("rotation", "expected"),
    [
        ("NoRotation", "realtime-events"),
        ("OneHour", "realtime-events-2026-12-01-07"),
        ("OneDay", "realtime-events-2026-12-01"),
        ("OneWeek", "realtime-events-2026-w49"),
        ("OneMonth", "realtime-events-2026-12"),
    ],
)
def test_index_rotation(rotation: str, expected: str) -> None:
    assert keys.index_name("realtime-events", rotation, AT) == expected

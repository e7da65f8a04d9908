"""Held forms of a record: the base64 form decodes back and knows the record's own size."""

from __future__ import annotations

import base64

from hypothesis import given
from hypothesis import strategies as st

from producer.firehose.wire import BASE64, RAW


@given(st.binary(max_size=2_000))
def test_base64_round_trips_and_gives_the_records_own_size(record: bytes) -> None:
    held = BASE64.encode(record)
    assert held == base64.b64encode(record)  # what the PutRecordBatch body carries as Data
    assert BASE64.decode(held) == record
    assert BASE64.size(held) == len(record)


@given(st.binary(max_size=200))
def test_raw_is_the_record(record: bytes) -> None:
    assert RAW.encode(record) is record and RAW.decode(record) is record and RAW.size(record) == len(record)

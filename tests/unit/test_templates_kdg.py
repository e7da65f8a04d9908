"""`kind: kdg`: Kinesis Data Generator record templates, their helpers mapped to Faker, text
records with the trace placeholders, and what the audit reads back from them."""

from __future__ import annotations

import ipaddress
import re
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest

from producer.audit import objects, trace
from producer.audit.findings import StreamFindings
from producer.generation import with_text_records
from producer.profile.loading import ProfileError, load_profile
from producer.templates.fakerpools import TemplateError
from producer.templates.fields import BIGINT, STRING
from producer.templates.kdg import TEXT_FIELD, compile_kdg, encode_text
from producer.templates.kdghelpers import moment_format

NOW = 1_767_225_600.25  # Thursday 2026-01-01T00:00:00.250Z

# Both examples of KDG's help page (web/help.html of awslabs/amazon-kinesis-data-generator),
# as a user pastes them: the JSON one spans lines, arguments included.
KDG_CSV = "{{name.firstName}},{{name.lastName}},{{random.number(70)}},{{internet.ip}}"
KDG_JSON = """{
    "sensorId": {{random.number(50)}},
    "currentTemperature": {{random.number(
        {
            "min":10,
            "max":150
        }
    )}},
    "status": "{{random.arrayElement(
        ["OK","FAIL","WARN"]
    )}}"
}"""
KDG_WEIGHTED = """{{random.weightedArrayElement(
  {
    "weights": [0.3,0.2,0.5],
    "data": ["cat","fish","dog"]
  }
)}}"""


def records(template: str, n: int = 200, seed: int = 1, **event: Any) -> list[bytes]:
    generator = compile_kdg("k", {"kind": "kdg", "template": template}, seed)
    encode = with_text_records(orjson.dumps)
    return [encode({**generator.next_event(NOW), **event}) for _ in range(n)]


def test_the_csv_example_renders_as_kdg_would() -> None:
    for record in records(KDG_CSV):
        assert record.endswith(b"\n") and record.count(b"\n") == 1
        first, last, age, ip = record.decode().rstrip("\n").split(",")
        assert first.isalpha() and last.replace("-", "").replace("'", "").isalpha()
        assert 0 <= int(age) <= 70
        ipaddress.IPv4Address(ip)


def test_the_json_example_makes_json_events_with_their_ranges() -> None:
    generator = compile_kdg("sensors", {"kind": "kdg", "template": KDG_JSON}, 3)
    drawn = [generator.next_event(NOW) for _ in range(2000)]
    for event in drawn:
        assert list(event) == ["sensorId", "currentTemperature", "status", "source"]
        assert 0 <= event["sensorId"] <= 50 and 10 <= event["currentTemperature"] <= 150
    assert {e["status"] for e in drawn} == {"OK", "FAIL", "WARN"}
    assert {e["currentTemperature"] for e in drawn} >= {10, 150}  # both ends inclusive, as faker.js
    assert generator.types == {
        "sensorId": (BIGINT, True),
        "currentTemperature": (BIGINT, True),
        "status": (STRING, True),
    }


def test_weighted_array_element_follows_the_weights() -> None:
    counts = Counter(r.strip() for r in records(KDG_WEIGHTED, 10000))
    assert counts[b"dog"] / 10000 == pytest.approx(0.5, abs=0.03)
    assert counts[b"fish"] / 10000 == pytest.approx(0.2, abs=0.03)


def test_a_seed_reproduces_a_kdg_template() -> None:
    assert records(KDG_CSV, 20, 4) == records(KDG_CSV, 20, 4) != records(KDG_CSV, 20, 5)


@pytest.mark.parametrize(
    ("fmt", "expected"),
    [
        ("YYYY-MM-DD", "2026-01-01"),
        ("DD/MMM/YYYY:HH:mm:ss Z", "01/Jan/2026:00:00:00 +00:00"),
        ("dddd, MMMM Do YYYY, h:mm:ss a", "Thursday, January 1st 2026, 12:00:00 am"),
        ("ddd, hA", "Thu, 12AM"),
        ("X x SSS [at] HH", "1767225600 1767225600250 250 at 00"),
    ],
)
def test_moment_formats(fmt: str, expected: str) -> None:
    assert moment_format(fmt)(NOW) == expected


def test_dates_and_the_common_faker_helpers() -> None:
    template = (
        '{"now": "{{date.now("YYYY-MM-DD")}}", "utc": "{{date.utc}}", "past": "{{date.past}}", '
        '"between": "{{date.between("2024-01-01","2024-02-01")}}", "id": "{{random.uuid}}", '
        '"email": "{{internet.email}}", "product": "{{commerce.productName}}", '
        '"price": "{{commerce.price}}", '
        '"city": "{{address.city}}", "words": "{{lorem.words(2)}}", "ok": {{random.boolean}}}'
    )
    generator = compile_kdg("k", {"kind": "kdg", "template": template}, 1)
    for _ in range(50):
        event = generator.next_event(NOW)
        assert event["now"] == "2026-01-01" and event["utc"] == "2026-01-01T00:00:00Z"
        assert "2025-01-01" <= event["past"] <= "2026-01-01T00:00:00.250Z"
        assert "2024-01-01" <= event["between"] <= "2024-02-01"
        assert re.fullmatch(r"[0-9a-f-]{36}", event["id"]) and "@" in event["email"]
        assert len(event["product"].split()) == 3 and re.fullmatch(r"\d+\.\d\d", event["price"])
        assert event["city"] and len(event["words"].split()) == 2 and isinstance(event["ok"], bool)


def test_text_records_carry_the_trace_where_the_template_puts_it() -> None:
    template = (
        '{{internet.ip}} - - [{{date.now("DD/MMM/YYYY:HH:mm:ss Z")}}] '
        '"GET /?run={{loadgen.run_id}}&seq={{loadgen.seq}} HTTP/1.1" 200'
    )
    run_id = "20260101T000000Z-abc123"
    lines = [records(template, 1, seed, run_id=run_id, seq=seq)[0] for seed, seq in ((1, 7), (2, 12345))]
    assert b"[01/Jan/2026:00:00:00 +00:00]" in lines[0] and lines[0].endswith(b" 200\n")
    assert trace.from_record(lines[0], run_id) == trace.Trace(run_id, 7, None)
    assert trace.from_record(lines[1], run_id) == trace.Trace(run_id, 12345, None)
    # Without the run id to look for, a text record cannot be traced; another run's id is not ours.
    assert trace.from_record(lines[0]) is None
    assert trace.from_record(lines[0], "20260101T000000Z-other1") is None


def test_the_audit_counts_text_records_of_its_run() -> None:
    run_id = "20260101T000000Z-abc123"
    template = "{{name.firstName}},{{random.number(70)}},{{loadgen.run_id}},{{loadgen.seq}}"
    delivered = b"".join(records(template, 1, seq, run_id=run_id, seq=seq)[0] for seq in (0, 1, 2, 2))
    findings = StreamFindings("s", "s3")
    mine, _ = objects.tally(findings, delivered, run_id, None)
    assert mine == 4 and findings.untraced_records == 0
    assert findings.seqs.seen() == [0, 1, 2] and findings.seqs.count(2) == 2


def test_a_text_record_is_sent_as_rendered_with_one_newline() -> None:
    generator = compile_kdg("k", {"kind": "kdg", "template": "a {{random.number(5)}}\n"}, 1)
    event = generator.next_event(NOW)
    assert TEXT_FIELD in event and encode_text(event) in {f"a {i}\n".encode() for i in range(6)}
    bare = compile_kdg("k", {"kind": "kdg", "template": "a", "newline": False}, 1)
    assert encode_text(bare.next_event(NOW)) == b"a"


BAD_KDG = {
    "unknown helpers": (
        "{{hacker.phrase}} {{name.firstNam}} {{random.number(3)}}",
        "KDG helper(s) not supported: hacker.phrase, name.firstNam (closest: name.firstName)",
    ),
    "wrong arguments": (
        '{{random.number("ten")}}',
        "{{random.number}}: min, max and precision must be numbers",
    ),
    "bad argument text": (
        "{{random.arrayElement([1, ])}}",
        "{{random.arrayElement}}: arguments ([1, ]) are not JSON",
    ),
    "not a helper call": ("{{ 1 + 2 }}", "{{1 + 2}} is not a helper call"),
    "json that is not": ('{"a": {{random.number(3)}}', "starts with { but does not render a JSON object"),
    "trace in json": (
        '{"a": "{{loadgen.run_id}}"}',
        "a JSON template gets run_id and seq as fields by itself",
    ),
    "seq without run id": ("x,{{loadgen.seq}}", "add {{loadgen.run_id}} too"),
    "seq far from run id": (
        "{{loadgen.run_id}},{{random.number(5)}},{{loadgen.seq}}",
        "put {{loadgen.seq}} after {{loadgen.run_id}} with 1-24 characters and no digits between them",
    ),
    "over the record limit": ("{{lorem.paragraphs(20000)}}", "its smallest event is"),
}


@pytest.mark.parametrize("case", list(BAD_KDG))
def test_every_bad_kdg_template_is_one_line(tmp_path: Path, case: str) -> None:
    template, expected = BAD_KDG[case]
    path = tmp_path / "bad.yaml"
    path.write_text(
        orjson.dumps({"mix": {"k": 1}, "generators": {"k": {"kind": "kdg", "template": template}}}).decode()
    )
    with pytest.raises(ProfileError) as info:
        load_profile(path)
    line = str(info.value)
    assert "\n" not in line and line.startswith(f"{path}: generators.k"), line
    assert expected in line, line
    assert info.value.exit_code == 2


def test_a_kdg_setting_it_does_not_know_is_refused() -> None:
    with pytest.raises(TemplateError, match=r"generators.k.rate: unknown setting of a kdg generator"):
        compile_kdg("k", {"kind": "kdg", "template": "x", "rate": 5}, 1)


NEEDS_ARGUMENTS = {
    "random.arrayElement": '(["a","b"])',
    "random.weightedArrayElement": '({"weights": [1, 2], "data": ["a", "b"]})',
    "date.between": '("2024-01-01", "2024-02-01")',
}


def test_every_helper_the_readme_lists_renders() -> None:
    from producer.templates.kdghelpers import HELPERS

    parts = [f"{{{{{name}{NEEDS_ARGUMENTS.get(name, '')}}}}}" for name in HELPERS]
    generator = compile_kdg("k", {"kind": "kdg", "template": "|".join(parts), "pool": 3}, 1)
    rendered = encode_text(generator.next_event(NOW)).decode().rstrip("\n").split("|")
    assert len(rendered) == len(HELPERS)
    empty = [name for name, text in zip(HELPERS, rendered, strict=True) if not text]
    assert empty == []
    readme = (Path(__file__).resolve().parents[2] / "profiles" / "README.md").read_text()
    for name in HELPERS:
        namespace, _, short = name.partition(".")
        assert f"`{name}" in readme or (f"`{namespace}." in readme and f"`{short}" in readme), name

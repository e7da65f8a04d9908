"""`kind: template` generators: the compiler, distributions, conditions, entities, sessions,
timestamps, nested fields, and every validation error as one line."""

from __future__ import annotations

import math
import re
import statistics
import time
from collections import Counter, defaultdict
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from producer.errors import UsageError
from producer.events.registry import build_generator
from producer.profile.loading import ProfileError, load_profile
from producer.templates.compiler import compile_template
from producer.templates.fakerpools import TemplateError
from producer.templates.fields import BIGINT, DOUBLE, STRING, FieldType

NOW = 1_767_225_600.25  # 2026-01-01T00:00:00.250Z
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")


def events(fields: dict[str, Any], n: int = 2000, seed: int = 1, **extra: Any) -> list[dict[str, Any]]:
    generator = compile_template("t", {"kind": "template", "fields": fields, **extra}, seed)
    return [generator.next_event(NOW) for _ in range(n)]


def values(spec: Any, n: int = 2000, seed: int = 1) -> list[Any]:
    return [e["v"] for e in events({"v": spec}, n, seed)]


# ---- the compiler ----


def test_a_seed_reproduces_the_sequence_and_another_seed_changes_it() -> None:
    fields = {
        "id": {"uuid": True},
        "name": {"faker": "name"},
        "kind": {"choice": {"a": 3, "b": 1}},
        "x": {"number": "normal", "mean": 0, "stddev": 1},
    }
    first, again, other = events(fields, 50, 7), events(fields, 50, 7), events(fields, 50, 8)
    assert first == again
    assert first != other
    assert all(UUID.fullmatch(e["id"]) for e in first)
    assert len({e["id"] for e in first}) == 50


def test_events_keep_the_declared_field_order_and_carry_their_source() -> None:
    [event] = events({"b": 1, "a": "x", "c": [1, 2], "d": None}, 1)
    assert list(event) == ["b", "a", "c", "d", "source"]
    assert event == {"b": 1, "a": "x", "c": [1, 2], "d": None, "source": "t"}


def test_faker_values_come_from_a_pool_of_the_given_size() -> None:
    drawn = values({"faker": "email", "pool": 20}, 3000)
    assert len(set(drawn)) <= 20 and all("@" in v for v in drawn)
    # Faker's Decimal and date values become JSON numbers and ISO text.
    lat = values({"faker": "latitude"}, 5)
    assert all(isinstance(v, float) for v in lat)
    assert all(isinstance(v, str) and datetime.fromisoformat(v) for v in values({"faker": "date"}, 5))


def test_faker_arguments_as_a_mapping_or_a_list() -> None:
    assert all(
        10 <= v <= 12 for v in values({"faker": "pyint", "args": {"min_value": 10, "max_value": 12}}, 200)
    )
    assert all(len(v) == 3 for v in values({"faker": "words", "args": [3]}, 20))


def test_weighted_choice_follows_its_weights() -> None:
    counts = Counter(values({"choice": {"view": 70, "cart": 20, "buy": 10}}, 20000))
    assert counts["view"] / 20000 == pytest.approx(0.7, abs=0.02)
    assert counts["buy"] / 20000 == pytest.approx(0.1, abs=0.01)
    assert set(values({"choice": ["x", "y"]}, 200)) == {"x", "y"}


# ---- distributions ----


def test_uniform_whole_numbers_cover_min_to_max_inclusive() -> None:
    drawn = values({"number": "uniform", "min": 1, "max": 5, "round": 0}, 5000)
    assert set(drawn) == {1, 2, 3, 4, 5} and all(isinstance(v, int) for v in drawn)


def test_uniform_with_rounding() -> None:
    drawn = values({"number": "uniform", "min": 0, "max": 10, "round": 2}, 2000)
    assert all(0 <= v <= 10 and round(v, 2) == v for v in drawn)
    assert statistics.mean(drawn) == pytest.approx(5, abs=0.3)


def test_normal_has_its_mean_and_spread_and_is_clamped() -> None:
    drawn = values({"number": "normal", "mean": 50, "stddev": 10}, 10000)
    assert statistics.mean(drawn) == pytest.approx(50, abs=0.5)
    assert statistics.stdev(drawn) == pytest.approx(10, abs=0.5)
    clamped = values({"number": "normal", "mean": 50, "stddev": 30, "min": 0, "max": 60}, 5000)
    assert min(clamped) == 0 and max(clamped) == 60


def test_lognormal_is_positive_with_median_e_to_the_mu() -> None:
    drawn = values({"number": "lognormal", "mu": 3.0, "sigma": 0.5, "round": 2}, 10000)
    assert min(drawn) > 0
    assert statistics.median(drawn) == pytest.approx(math.exp(3.0), rel=0.05)


def test_zipf_ranks_fall_off_as_one_over_k_to_the_s() -> None:
    drawn = values({"number": "zipf", "s": 1.0, "n": 100}, 30000)
    counts = Counter(drawn)
    assert min(drawn) >= 1 and max(drawn) <= 100 and all(isinstance(v, int) for v in drawn)
    assert counts.most_common(1)[0][0] == 1
    assert counts[1] / counts[2] == pytest.approx(2.0, rel=0.15)
    shifted = values({"number": "zipf", "s": 1.1, "n": 10, "min": 0}, 500)
    assert min(shifted) == 0 and max(shifted) <= 9


def test_format_applies_to_drawn_values() -> None:
    # Values from a known set (zipf ranks, whole numbers, choices, Faker pools) are formatted
    # once at start-up; each event still gets its own draw.
    products = values({"number": "zipf", "s": 1.1, "n": 50, "format": "P{:06d}"}, 3000)
    assert all(re.fullmatch(r"P0000[0-5]\d", p) for p in products)
    assert Counter(products).most_common(1)[0][0] == "P000001"
    assert set(values({"number": "uniform", "min": 1, "max": 3, "round": 0, "format": "n={}"}, 300)) == {
        "n=1",
        "n=2",
        "n=3",
    }
    assert set(values({"choice": {"a": 1, "b": 1}, "format": "<{}>"}, 200)) == {"<a>", "<b>"}
    assert all(v.startswith("mail:") for v in values({"faker": "email", "format": "mail:{}"}, 20))


def test_uuid_sequence_and_format() -> None:
    drawn = values({"sequence": 100, "step": 5, "format": "ORD-{:06d}"}, 3)
    assert drawn == ["ORD-000100", "ORD-000105", "ORD-000110"]
    assert values({"sequence": 1}, 3) == [1, 2, 3]


# ---- timestamps ----


def test_timestamp_formats() -> None:
    [event] = events(
        {
            "iso": {"timestamp": "iso"},
            "s": {"timestamp": "epoch"},
            "ms": {"timestamp": "epoch_ms"},
            "day": {"timestamp": "%Y-%m-%d %H:%M:%S"},
        },
        1,
    )
    assert event["iso"] == "2026-01-01T00:00:00.250Z"
    assert (event["s"], event["ms"]) == (1_767_225_600, 1_767_225_600_250)
    assert event["day"] == "2026-01-01 00:00:00"


def test_late_events_are_late_by_min_to_max_and_jitter_stays_within_bounds() -> None:
    late = values({"timestamp": "epoch_ms", "late": {"share": 0.2, "min": "1m", "max": "10m"}}, 5000)
    behind = [(NOW * 1000 - v) / 1000 for v in late]
    delayed = [b for b in behind if b > 1]
    assert len(delayed) / 5000 == pytest.approx(0.2, abs=0.03)
    assert all(60 <= b <= 600 for b in delayed)
    jittered = values({"timestamp": "epoch_ms", "jitter": "2s"}, 2000)
    offsets = [v / 1000 - NOW for v in jittered]
    assert all(abs(o) <= 2.001 for o in offsets) and min(offsets) < -1 and max(offsets) > 1


# ---- conditions ----


def test_a_conditional_field_is_present_exactly_when_its_condition_holds() -> None:
    fields = {
        "event_type": {"choice": ["view", "cart", "purchase"]},
        "amount": {"number": "uniform", "min": 1, "max": 9, "round": 2, "when": {"event_type": "purchase"}},
        "items": {"const": 1, "when": {"event_type": ["cart", "purchase"]}},
        "refund": {"const": True, "when": {"amount": 3.0}},  # on a field that may be absent
    }
    drawn = events(fields, 3000)
    assert {e["event_type"] for e in drawn} == {"view", "cart", "purchase"}
    for e in drawn:
        assert ("amount" in e) == (e["event_type"] == "purchase"), e
        assert ("items" in e) == (e["event_type"] != "view"), e
        assert "refund" not in e or e.get("amount") == 3.0


def test_conditions_may_read_fields_declared_later() -> None:
    [event, *_] = events({"amount": {"const": 5, "when": {"kind": "buy"}}, "kind": "buy"}, 1)
    assert event["amount"] == 5 and list(event) == ["kind", "amount", "source"]


def test_multiple_conditions_must_all_hold() -> None:
    fields = {
        "a": {"choice": [1, 2]},
        "b": {"choice": [1, 2]},
        "both": {"const": "yes", "when": {"a": 1, "b": 2}},
    }
    for e in events(fields, 500):
        assert ("both" in e) == (e["a"] == 1 and e["b"] == 2)


# ---- entities and sessions ----


ENTITIES = {
    "user": {
        "count": 300,
        "fields": {
            "user_id": {"sequence": 1, "format": "u{:04d}"},
            "country": {"faker": "country_code"},
            "plan": {"choice": {"free": 8, "pro": 2}},
        },
    }
}


def test_entities_keep_their_fields_across_events_and_their_cardinality() -> None:
    drawn = events(
        {
            "user_id": {"entity": "user.user_id"},
            "country": {"entity": "user.country"},
            "plan": {"entity": "user.plan"},
        },
        5000,
        entities=ENTITIES,
    )
    seen: dict[str, tuple[str, str]] = {}
    for e in drawn:
        assert seen.setdefault(e["user_id"], (e["country"], e["plan"])) == (e["country"], e["plan"])
    assert 250 < len(seen) <= 300


def test_zipf_popularity_makes_a_few_entities_most_of_the_events() -> None:
    skewed = {"user": {**ENTITIES["user"], "zipf": 1.2}}
    drawn = events({"user_id": {"entity": "user.user_id"}}, 5000, entities=skewed)
    top = Counter(e["user_id"] for e in drawn).most_common(1)[0]
    assert top[0] == "u0001" and top[1] > 5000 * 0.1


def test_sessions_carry_one_entity_for_several_events_in_order() -> None:
    drawn = events(
        {
            "session_id": {"session": "id"},
            "n": {"session": "index"},
            "user_id": {"entity": "user.user_id"},
        },
        5000,
        entities=ENTITIES,
        sessions={"entity": "user", "events": {"min": 2, "max": 5}, "concurrent": 20},
    )
    by_session: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for e in drawn:
        by_session[e["session_id"]].append(e)
    assert len(by_session) > 100
    finished = list(by_session.values())[:-40]  # the last sessions may still be open
    for session in finished:
        assert [e["n"] for e in session] == list(range(len(session)))
        assert 2 <= len(session) <= 5
        assert len({e["user_id"] for e in session}) == 1


# ---- nested objects and lists ----


def test_nested_objects_and_sized_lists() -> None:
    fields = {
        "kind": {"choice": ["a", "b"]},
        "device": {
            "object": {
                "os": {"choice": ["ios", "android"]},
                "beta": {"const": True, "when": {"kind": "b"}},
            }
        },
        "tags": {"list": {"faker": "word"}, "count": {"min": 1, "max": 3}},
        "pair": {"list": {"number": "uniform", "min": 0, "max": 1}, "count": 2},
    }
    for e in events(fields, 500):
        assert e["device"]["os"] in ("ios", "android")
        assert ("beta" in e["device"]) == (e["kind"] == "b")
        assert 1 <= len(e["tags"]) <= 3 and all(isinstance(t, str) for t in e["tags"])
        assert len(e["pair"]) == 2


def test_types_follow_the_fields() -> None:
    generator = compile_template(
        "t",
        {
            "kind": "template",
            "fields": {
                "id": {"uuid": True},
                "n": {"number": "uniform", "min": 0, "max": 9, "round": 0},
                "x": {"number": "normal", "mean": 0, "stddev": 1},
                "o": {"object": {"a": {"sequence": 1}}},
                "l": {"list": {"const": "x"}, "count": 2},
                "maybe": {"const": 1.5, "when": {"n": 3}},
            },
        },
        1,
    )
    assert generator.types == {
        "id": (STRING, True),
        "n": (BIGINT, True),
        "x": (DOUBLE, True),
        "o": (FieldType("struct", (("a", BIGINT, True),)), True),
        "l": (FieldType("array", item=STRING), True),
        "maybe": (DOUBLE, False),
    }


# ---- in a profile ----


PROFILE = """
mix: {web: 1, orders: 2}
generators:
  orders:
    kind: template
    fields:
      event_id: {uuid: true}
      event_type: {choice: [view, purchase]}
      amount: {number: uniform, min: 1, max: 2, round: 2, when: {event_type: purchase}}
      timestamp: {timestamp: iso}
routes:
  only-orders: [orders]
"""


def test_a_profile_mixes_its_own_generator_with_the_built_ins(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(PROFILE)
    profile = load_profile(path)
    assert profile.mix == {"web": 1.0, "orders": 2.0}
    assert profile.generator_params.templates["orders"].kind == "template"
    generator = build_generator(profile.mix, 5, profile.generator_params)
    drawn = [generator.next_event(time.time()) for _ in range(3000)]
    sources = Counter(e["source"] for e in drawn)
    assert sources["orders"] / 3000 == pytest.approx(2 / 3, abs=0.05)
    orders = [e for e in drawn if e["source"] == "orders"]
    assert all(set(e) - {"amount"} == {"event_id", "event_type", "timestamp", "source"} for e in orders)
    # The template's sequence does not depend on the other generators in the mix.
    alone = build_generator({"orders": 1}, 5, profile.generator_params)
    assert [alone.next_event(NOW)["event_id"] for _ in range(5)] == [e["event_id"] for e in orders[:5]]


BAD_TEMPLATES = {
    "unknown provider": (
        "fields: {who: {faker: nmae}}",
        "generators.t.fields.who.faker: unknown Faker provider 'nmae'; closest: name",
    ),
    "wrong arguments": (
        "fields: {n: {faker: pyint, args: {maximum: 3}}}",
        "generators.t.fields.n.faker: Faker provider 'pyint' refused its arguments:",
    ),
    "condition on a missing field": (
        "fields: {amount: {const: 1, when: {event_typ: buy}}, event_type: buy}",
        "generators.t.fields.amount.when.event_typ: the condition reads a field the event does not have; "
        "did you mean 'event_type'?",
    ),
    "a cycle": (
        "fields: {a: {const: 1, when: {b: 1}}, b: {const: 1, when: {c: 1}}, c: {const: 1, when: {a: 1}}}",
        "generators.t.fields: a cycle of conditions: a -> b -> c -> a",
    ),
    "over the record limit": (
        "fields: {blob: {list: {const: " + "x" * 2000 + "}, count: 600}}",
        "generators.t: its smallest event is 1,2",
    ),
    "unknown distribution": (
        "fields: {x: {number: poisson}}",
        "generators.t.fields.x.number: unknown distribution 'poisson'; allowed: uniform, normal, lognormal, "
        "zipf",
    ),
    "setting of another distribution": (
        "fields: {x: {number: uniform, min: 0, max: 1, mu: 2}}",
        "generators.t.fields.x.mu: not a setting of uniform; it takes min, max, round",
    ),
    "two kinds": (
        "fields: {x: {uuid: true, const: 1}}",
        "generators.t.fields.x: a field is one kind of value, this one says const and uuid",
    ),
    "no kind": (
        "fields: {x: {round: 2}}",
        "generators.t.fields.x: a field needs one of: faker, const, choice",
    ),
    "unknown entity": (
        "fields: {u: {entity: user.id}}",
        "generators.t.fields.u.entity: unknown entity 'user'; entities: none declared",
    ),
    "unknown entity field": (
        "entities: {user: {count: 5, fields: {id: {uuid: true}}}}\n    fields: {u: {entity: user.name}}",
        "generators.t.fields.u.entity: entity 'user' has no field 'name'; its fields: id",
    ),
    "session without sessions": (
        "fields: {s: {session: id}}",
        "generators.t.fields.s.session: the template has no",
    ),
    "reserved field": ("fields: {seq: 1}", "generators.t.fields.seq: a field the run sets itself"),
    "bad format": ("fields: {x: {sequence: 1, format: '{:q}'}}", "generators.t.fields.x.format:"),
    "format that does not fit": (
        "fields: {x: {choice: [a, b], format: '{:05d}'}}",
        "generators.t.fields.x.format: '{:05d}' does not fit the values:",
    ),
    "unknown locale": (
        "locale: xx_YY\n    fields: {a: 1}",
        "generators.t.locale: unknown Faker locale 'xx_YY'",
    ),
    "no fields": ("fields: {}", "generators.t.fields: required"),
}


@pytest.mark.parametrize("case", list(BAD_TEMPLATES))
def test_every_bad_template_is_one_line_naming_the_field(tmp_path: Path, case: str) -> None:
    body, expected = BAD_TEMPLATES[case]
    path = tmp_path / "bad.yaml"
    path.write_text(f"mix: {{t: 1}}\ngenerators:\n  t:\n    kind: template\n    {body}\n")
    with pytest.raises(ProfileError) as info:
        load_profile(path)
    line = str(info.value)
    assert isinstance(info.value, UsageError) and info.value.exit_code == 2
    assert "\n" not in line and line.startswith(f"{path}: {expected}"), line


def test_a_generator_of_ones_own_needs_a_kind_and_mix_names_must_exist(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("mix: {t: 1, tv: 1}\ngenerators:\n  t: {fields: {a: 1}}\n")
    with pytest.raises(ProfileError) as info:
        load_profile(path)
    assert info.value.problems == [
        f"{path}: generators.t: unknown generator; a generator of your own needs `kind: template` (fields in "
        "YAML) or `kind: kdg` (a KDG record template); built-in: web, mobile, iot",
        f"{path}: mix.t: unknown generator 't'; allowed: 'web', 'mobile' or 'iot'",
        f"{path}: mix.tv: unknown generator 'tv'; allowed: 'web', 'mobile' or 'iot'",
    ]


def test_a_template_in_a_csv_profile_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "csv.yaml"
    path.write_text("mix: {t: 1}\nformat: csv\ngenerators:\n  t: {kind: template, fields: {a: 1}}\n")
    with pytest.raises(ProfileError, match="format: csv: generator 't' makes JSON events"):
        load_profile(path)


def test_encoded_events_are_json_lines() -> None:
    [event] = events({"a": {"faker": "name"}, "b": {"number": "uniform", "min": 0, "max": 1}}, 1)
    assert orjson.loads(orjson.dumps(event)) == event


# ---- profiles schema ----


def test_glue_columns_and_json_schema_of_a_template() -> None:
    from producer.templates import schema

    generator = compile_template(
        "t",
        {
            "kind": "template",
            "fields": {
                "userId": {"uuid": True},
                "geo": {"object": {"Lat": {"number": "uniform", "min": 0, "max": 1}}},
                "tags": {"list": {"const": "x"}, "count": 1},
                "amount": {"const": 1.5, "when": {"userId": "never"}},
            },
        },
        1,
    )
    fields = schema.merge({"t": generator.types}, trace_fields=True)
    assert schema.glue_columns(fields).splitlines() == [
        "Columns:",
        "  - {Name: userid, Type: string}",
        '  - {Name: geo, Type: "struct<lat:double>"}',
        '  - {Name: tags, Type: "array<string>"}',
        "  - {Name: amount, Type: double}",
        "  - {Name: source, Type: string}",
        "  - {Name: run_id, Type: string}",
        "  - {Name: seq, Type: bigint}",
    ]
    document = schema.json_schema("p", schema.merge({"t": generator.types}, trace_fields=False))
    assert document["required"] == ["userId", "geo", "tags", "source"]
    assert document["properties"]["geo"] == {
        "type": "object",
        "properties": {"Lat": {"type": "number"}},
        "required": ["Lat"],
    }


def test_schema_of_several_generators_is_their_union() -> None:
    from producer.templates import schema

    a = {"id": (STRING, True), "n": (BIGINT, True)}
    b = {"id": (STRING, True), "x": (DOUBLE, True)}
    merged = schema.merge({"a": a, "b": b}, trace_fields=False)
    assert merged == {
        "id": (STRING, True),
        "n": (BIGINT, False),
        "x": (DOUBLE, False),
        "source": (STRING, True),
    }
    with pytest.raises(TemplateError, match="field 'n' is bigint in 'a' but string in 'c'"):
        schema.merge({"a": a, "c": {"n": (STRING, True)}}, trace_fields=False)
    with pytest.raises(TemplateError, match="fields 'Id' and 'id' differ only in case"):
        schema.glue_columns({"Id": (STRING, True), "id": (STRING, True)})

"""`profiles list|show|validate`, `sample` and `bench events` through the real CLI."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
import yaml

from tests.helpers import run_cli

SHIPPED = ["diurnal", "flash-sale", "iot", "mixed", "mobile", "recipe", "soak", "web"]
INVALID = {
    "unknown-field": ("mix: {web: 1}\nrate: 100\nspeed: fast\n", "speed: unknown field; allowed:"),
    "wrong-type": (
        "mix: {web: 1}\nrate: {shape: constant, rate: lots}\n",
        "rate.rate: should be a valid number",
    ),
    "negative-rate": (
        "mix: {web: 1}\nrate: {shape: constant, rate: -5}\n",
        "rate.rate: must be a number of events per second > 0",
    ),
    "zero-weights": ("mix: {web: 0, mobile: 0}\n", "mix: weights must add up to more than 0"),
    "unknown-generator": ("mix: {toaster: 1}\n", "mix.toaster: unknown generator 'toaster'; allowed:"),
    "bad-yaml": ("mix: {web: 1\nrate: [\n", "not valid YAML: line"),
}


def _error_lines(stderr: str) -> list[str]:
    assert "Traceback" not in stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert lines and all(line.startswith("error: ") for line in lines), stderr
    return lines


def test_list_shows_every_shipped_profile_with_its_shape() -> None:
    result = run_cli("profiles", "list")
    assert result.returncode == 0, result.stderr
    rows = result.stdout.splitlines()
    assert rows[0].split() == ["NAME", "SHAPE", "DESCRIPTION"]
    assert [row.split()[0] for row in rows[1:]] == SHIPPED
    assert "spike" in next(r for r in rows if r.startswith("flash-sale"))
    assert "INVALID" not in result.stdout


def test_show_prints_the_resolved_profile_as_yaml() -> None:
    result = run_cli("profiles", "show", "flash-sale")
    assert result.returncode == 0, result.stderr
    shown = yaml.safe_load(result.stdout)
    assert shown["name"] == "flash-sale" and shown["rate"]["peak_events_per_s"] == 1000
    assert shown["generators"]["web"]["funnel"]["view_to_cart"] == 0.35
    assert shown["generators"]["iot"]["fleet_size"] == 1000  # a default, filled in


def test_validate_accepts_the_shipped_files() -> None:
    files = [str(Path("profiles") / f"{name}.yaml") for name in SHIPPED]
    result = run_cli("profiles", "validate", *files)
    assert result.returncode == 0, result.stderr
    assert result.stdout.count(": ok (") == len(SHIPPED)


@pytest.mark.parametrize("case", sorted(INVALID))
def test_invalid_profile_exits_2_with_one_clear_line(tmp_path: Path, case: str) -> None:
    text, expected = INVALID[case]
    path = tmp_path / f"{case}.yaml"
    path.write_text(text)
    result = run_cli("run", "--profile", str(path), "--output-dir", str(tmp_path / "out"))
    assert result.returncode == 2
    lines = _error_lines(result.stderr)
    assert len(lines) == 1 and lines[0].startswith(f"error: {path}: {expected}"), lines
    checked = run_cli("profiles", "validate", str(path))
    assert checked.returncode == 2
    assert _error_lines(checked.stderr)[0].startswith(f"error: {path}: {expected}")


def test_validate_lists_every_problem_in_every_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("mix: {web: -1, toaster: 1}\nrate: {shape: spike, base: 1, peak: 0, at: 1s, for: x}\n")
    good = tmp_path / "good.yaml"
    good.write_text("mix: {iot: 1}\n")
    result = run_cli("profiles", "validate", str(bad), str(good), str(tmp_path / "missing.yaml"))
    assert result.returncode == 2
    lines = _error_lines(result.stderr)
    assert len(lines) == 5, lines
    fields = {line.split(": ")[2] for line in lines[:4]}
    assert fields == {"mix.web", "mix.toaster", "rate.peak", "rate.for"}
    assert "missing.yaml: no such file" in lines[4]
    assert f"{good}: ok" in result.stdout


def _sample(*args: str) -> list[dict[str, object]]:
    result = run_cli("sample", *args)
    assert result.returncode == 0, result.stderr
    return [orjson.loads(line) for line in result.stdout.splitlines()]


def _without_clock(events: list[dict[str, object]]) -> list[dict[str, object]]:
    return [{k: v for k, v in e.items() if k not in ("timestamp", "received_at")} for e in events]


def test_sample_prints_json_lines_reproducibly_with_a_seed() -> None:
    first = _sample("--profile", "mixed", "-n", "25", "--seed", "11")
    assert len(first) == 25 and {e["source"] for e in first} <= {"web", "mobile", "iot"}
    assert _without_clock(first) == _without_clock(_sample("--profile", "mixed", "-n", "25", "--seed", "11"))
    other = _sample("--profile", "mixed", "-n", "25", "--seed", "12")
    assert [e["event_id"] for e in other] != [e["event_id"] for e in first]


def test_sample_of_one_generator_profile() -> None:
    assert {e["source"] for e in _sample("--profile", "iot", "-n", "50", "--seed", "1")} == {"iot"}


def test_sample_records_apply_the_profiles_malformed_share(tmp_path: Path) -> None:
    profile = tmp_path / "broken.yaml"
    profile.write_text("mix: {web: 1}\nmalformed: {share: 1.0, kinds: [not_json]}\n")
    result = run_cli("sample", "--profile", str(profile), "-n", "20", "--seed", "3", "--records")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 20
    for line in lines:
        with pytest.raises(orjson.JSONDecodeError):
            orjson.loads(line)
    # Without --records the same profile prints clean events.
    assert len(_sample("--profile", str(profile), "-n", "5")) == 5


def test_bench_events_runs_and_reports_sane_fields() -> None:
    result = run_cli(
        "bench", "events", "--generator", "web", "--generator", "iot", "--generator", "template",
        "--seconds", "0.05",
        "--repeat", "1", "--json", "--startup-profile", "web",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    report = orjson.loads(result.stdout)
    # The 12-field kind: template generator, measured in the same run as the built-ins.
    assert [g["generator"] for g in report["generators"]] == ["web", "iot", "template"]
    for g in report["generators"]:
        assert g["events_per_s"] > 0 and len(g["runs"]) == 1
        assert g["us_per_event"] == pytest.approx(1e6 / g["events_per_s"])
        assert 100 < g["bytes_per_event"] < 2000
    assert 0 < report["startup_s"] < 60


def test_bench_refuses_an_unknown_generator() -> None:
    result = run_cli("bench", "events", "--generator", "toaster")
    assert result.returncode == 2
    assert "unknown generator 'toaster'" in _error_lines(result.stderr)[0]


BAD_TEMPLATES = {
    "provider": ("fields: {who: {faker: nmae}}", "unknown Faker provider 'nmae'; closest: name"),
    "arguments": ("fields: {n: {faker: pyint, args: {maximum: 3}}}", "refused its arguments"),
    "condition": (
        "fields: {a: {const: 1, when: {b: 1}}}",
        "the condition reads a field the event does not have",
    ),
    "cycle": ("fields: {a: {const: 1, when: {b: 1}}, b: {const: 1, when: {a: 1}}}", "a cycle of conditions"),
    "size": (
        "fields: {blob: {list: {const: " + "x" * 2000 + "}, count: 600}}",
        "over Firehose's record limit",
    ),
}


def test_bad_templates_are_one_line_and_exit_2_from_validate_run_sample_and_schema(tmp_path: Path) -> None:
    files = []
    for name, (body, _) in BAD_TEMPLATES.items():
        path = tmp_path / f"{name}.yaml"
        path.write_text(f"mix: {{t: 1}}\ngenerators:\n  t:\n    kind: template\n    {body}\n")
        files.append(path)
    result = run_cli("profiles", "validate", *map(str, files))
    assert result.returncode == 2
    lines = _error_lines(result.stderr)
    assert len(lines) == len(BAD_TEMPLATES)
    for line, path, (_, expected) in zip(lines, files, BAD_TEMPLATES.values(), strict=True):
        assert line.startswith(f"error: {path}: generators.t") and expected in line, line
    for command in (
        ["run", "--duration", "1s", "--profile"],
        ["sample", "--profile"],
        ["profiles", "schema"],
    ):
        result = run_cli(*command, str(files[0]))
        assert result.returncode == 2, (command, result.stderr)
        [line] = _error_lines(result.stderr)
        assert "unknown Faker provider 'nmae'" in line


def test_sample_and_schema_of_the_shipped_template_profile() -> None:
    events = _sample("--profile", "recipe", "-n", "5", "--seed", "1")
    assert len(events) == 5
    for event in events:
        assert {"event_id", "user_id", "event_type", "product_id", "timestamp"} <= set(event)
        assert ("amount" in event) == (event["event_type"] == "purchase")
    schema = run_cli("profiles", "schema", "recipe", "--format", "json-schema", "--no-trace-fields")
    assert schema.returncode == 0, schema.stderr
    document = orjson.loads(schema.stdout)
    assert list(document["properties"]) == [
        "event_id", "user_id", "event_type", "amount", "product_id", "timestamp", "source",
    ]  # fmt: skip
    assert "amount" not in document["required"] and document["properties"]["amount"] == {"type": "number"}

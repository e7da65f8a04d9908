"""`bench events`: events per second of each generator, JSON encoding included, on one core,
and the start-up time to the first event. Numbers for the README come from here."""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Annotated

import orjson
import typer

from producer.encoding import encoder_for
from producer.events.registry import GENERATORS, GeneratorParams, build_generator
from producer.profile.loading import resolve_profile
from producer.templates.user import UserGenerator

CHUNK = 1000  # events between clock reads; also how often the timestamp moves on, like a tick
TEMPLATE = "template"
# The `kind: template` generator `bench events` measures beside the built-ins (issue 26's
# benchmark): 12 fields, 3 of them Faker providers, users from an entity pool of 10,000 in
# sessions, a conditional amount, distributions, a uuid and a timestamp.
BENCH_TEMPLATE: dict[str, object] = {
    "kind": "template",
    "entities": {
        "user": {
            "count": 10_000,
            "fields": {
                "user_id": {"sequence": 1, "format": "user_{:07d}"},
                "country": {"faker": "country_code"},
                "plan": {"choice": {"free": 80, "pro": 15, "business": 5}},
            },
        }
    },
    "sessions": {"entity": "user", "events": {"min": 1, "max": 12}, "concurrent": 200},
    "fields": {
        "event_id": {"uuid": True},
        "user_id": {"entity": "user.user_id"},
        "session_id": {"session": "id"},
        "event_type": {"choice": {"page_view": 60, "add_to_cart": 25, "purchase": 15}},
        "amount": {
            "number": "lognormal",
            "mu": 3.5,
            "sigma": 0.8,
            "round": 2,
            "when": {"event_type": "purchase"},
        },
        "product_id": {"number": "zipf", "s": 1.1, "n": 5000, "format": "P{:06d}"},
        "quantity": {"number": "uniform", "min": 1, "max": 5, "round": 0},
        "timestamp": {"timestamp": "iso"},
        "country": {"entity": "user.country"},
        "ip": {"faker": "ipv4"},
        "user_agent": {"faker": "user_agent"},
        "referrer": {"choice": ["https://www.google.com/", "https://www.bing.com/", ""]},
    },
}


@dataclass(frozen=True, slots=True)
class GeneratorResult:
    generator: str
    events_per_s: float  # median of the repeats
    runs: list[float]
    us_per_event: float
    bytes_per_event: float
    build_ms: float  # pools, catalog and sessions, in this process


def measure(
    name: str, seconds: float, repeat: int, seed: int, record_format: str = "json"
) -> GeneratorResult:
    """Generate and encode for ``seconds``, ``repeat`` times; a warm-up run goes first."""
    weights = {g: 1.0 for g in GENERATORS} if name == "mix" else {name: 1.0}
    params = GeneratorParams(templates={TEMPLATE: UserGenerator(TEMPLATE, "template", BENCH_TEMPLATE)})
    started = time.perf_counter()
    generator = build_generator(weights, seed, params)
    build_ms = (time.perf_counter() - started) * 1000
    encode = encoder_for("csv" if record_format == "csv" else "json")
    runs: list[float] = []
    total_bytes = total_events = 0
    for attempt in range(repeat + 1):
        count = size = 0
        t0 = time.perf_counter()
        deadline = t0 + (min(seconds, 0.2) if attempt == 0 else seconds)
        while True:
            now = time.time()
            for _ in range(CHUNK):
                size += len(encode(generator.next_event(now)))
            count += CHUNK
            if time.perf_counter() >= deadline:
                break
        elapsed = time.perf_counter() - t0
        if attempt:  # the first pass only warms caches
            runs.append(count / elapsed)
            total_bytes += size
            total_events += count
    rate = statistics.median(runs)
    return GeneratorResult(name, rate, runs, 1e6 / rate, total_bytes / total_events, build_ms)


def startup_to_first_event(profile: str, repeat: int) -> list[float]:
    """Wall time of ``python -m producer sample -n 1``: interpreter, imports, profile, pools."""
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "producer", "sample", "--profile", profile, "-n", "1", "--seed", "1"],
            check=True,
            capture_output=True,
        )
        times.append(time.perf_counter() - t0)
    return times


def bench_events(
    generator: Annotated[
        list[str] | None,
        typer.Option(
            help="Generator to measure (repeatable): web, mobile, iot, mix or template (a 12-field "
            "kind: template generator). Default: all."
        ),
    ] = None,
    seconds: Annotated[float, typer.Option(min=0.05, help="Seconds per measurement.")] = 1.0,
    repeat: Annotated[int, typer.Option(min=1, help="Measurements per generator; the median counts.")] = 3,
    record_format: Annotated[str, typer.Option("--format", help="json or csv.")] = "json",
    startup_profile: Annotated[str, typer.Option(help="Profile for the start-up measurement.")] = "mixed",
    seed: Annotated[int, typer.Option(help="Seed for the generated events.")] = 1,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object instead of a table.")] = False,
) -> None:
    """Events/s per generator (one core, encoding included) and start-up time to the first event."""
    names: Sequence[str] = generator or [*GENERATORS, "mix", TEMPLATE]
    for name in names:
        if name not in GENERATORS and name not in ("mix", TEMPLATE):
            raise typer.BadParameter(
                f"unknown generator {name!r}; choose from {', '.join(GENERATORS)}, mix, {TEMPLATE}"
            )
    if record_format not in ("json", "csv"):
        raise typer.BadParameter("--format must be json or csv")
    resolve_profile(startup_profile)  # fail fast with the usual message
    results = [measure(name, seconds, repeat, seed, record_format) for name in names]
    startup = startup_to_first_event(startup_profile, repeat)
    report = {
        "format": record_format,
        "seconds": seconds,
        "repeat": repeat,
        "python": sys.version.split()[0],
        "generators": [asdict(r) for r in results],
        "startup_s": statistics.median(startup),
        "startup_runs_s": startup,
    }
    if as_json:
        typer.echo(orjson.dumps(report).decode())
        return
    typer.echo(f"one core, {record_format} encoding included, median of {repeat} x {seconds:g}s")
    typer.echo(f"{'generator':<10} {'events/s':>10} {'us/event':>9} {'bytes/event':>12} {'build ms':>9}")
    for r in results:
        typer.echo(
            f"{r.generator:<10} {r.events_per_s:>10,.0f} {r.us_per_event:>9.2f} "
            f"{r.bytes_per_event:>12.0f} {r.build_ms:>9.1f}"
        )
    typer.echo(
        f"start-up to first event (`sample --profile {startup_profile} -n 1`, new process): "
        f"{report['startup_s']:.3f} s median"
    )


def register(app: typer.Typer) -> None:
    # Another command module may already have made the `bench` group; join it if so.
    for group in app.registered_groups:
        if group.name == "bench" and group.typer_instance is not None:
            group.typer_instance.command("events")(bench_events)
            return
    bench = typer.Typer(
        help="Benchmarks of the producer's parts.", no_args_is_help=True, rich_markup_mode=None
    )
    bench.command("events")(bench_events)
    app.add_typer(bench, name="bench")

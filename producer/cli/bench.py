"""`firehose-loadgen bench`: the end-to-end benchmark, and the reference producers it compares to."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Annotated

import typer

from producer import pipeline
from producer.cli import options
from producer.errors import EXIT_CHECK_FAILED, UsageError


def _seconds(option: str, text: str) -> float:
    return options.duration(option, text, strict=True)


def _print_table(result: dict[str, object]) -> None:
    medians = result["medians"]
    assert isinstance(medians, dict)
    rows = [
        ("events/s (to 2 streams)", "events_per_s", "{:,.0f}"),
        ("records/s", "records_per_s", "{:,.0f}"),
        ("CPU us per record", "cpu_us_per_record", "{:.2f}"),
        ("peak RSS MB", "peak_rss_mb", "{:.0f}"),
        ("RSS growth over window", "rss_growth", "{:+.1%}"),
        ("p99 PutRecordBatch s", "p99_put_s", "{:.4f}"),
        ("start-up to first record s", "startup_s", "{:.2f}"),
        ("achieved / target", "achieved_vs_target", "{:.4f}"),
        ("worst 1 s window vs target", "window_max_deviation", "{:.2%}"),
    ]
    kinds = list(medians)
    typer.echo(f"{'median of trials':<28}" + "".join(f"{k:>16}" for k in kinds))
    for title, key, fmt in rows:
        typer.echo(f"{title:<28}" + "".join(f"{fmt.format(medians[k][key]):>16}" for k in kinds))
    if "ratio_events_per_s" in result:
        typer.echo(f"firehose-loadgen / reference, events/s: {result['ratio_events_per_s']:.2f}x")
    if "ratio_vs_stock_client_events_per_s" in result:
        ratio = result["ratio_vs_stock_client_events_per_s"]
        typer.echo(f"firehose-loadgen / stock-client, events/s: {ratio:.2f}x")


def bench_main(
    ctx: typer.Context,
    rate: Annotated[
        float, typer.Option(help="Target events/s; above capacity it measures the maximum.")
    ] = 200_000,
    duration: Annotated[str, typer.Option(help="Measured time per trial, after the warm-up.")] = "20s",
    warmup: Annotated[str, typer.Option(help="Time per trial before measuring.")] = "5s",
    repeat: Annotated[int, typer.Option(help="Trials per producer; medians are reported.")] = 3,
    compare: Annotated[
        bool,
        typer.Option(
            "--compare",
            help="Alternate with two reference producers on the stock aiobotocore client: "
            "'reference' (hand-written, Faker value pools) and 'stock-client' (firehose-loadgen's "
            "generators).",
        ),
    ] = False,
    sender: Annotated[
        str, typer.Option(help="lean (default) or botocore: firehose-loadgen's send path.")
    ] = "lean",
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Generation, encoding, batching and sending to both streams against a null Firehose."""
    if ctx.invoked_subcommand is not None:
        return
    if rate <= 0 or repeat < 1:
        raise UsageError("--rate must be > 0 and --repeat at least 1")
    if sender not in ("lean", "botocore"):
        raise UsageError(f"--sender must be lean or botocore, got {sender!r}")
    from producer.bench.trials import benchmark

    result = benchmark(
        rate, _seconds("--warmup", warmup), _seconds("--duration", duration), repeat, compare, sender
    )
    if as_json:
        typer.echo(json.dumps(result, indent=2))
    else:
        _print_table(result)


def reference(
    endpoint_url: Annotated[str, typer.Option(help="Firehose endpoint.")],
    kind: Annotated[
        str,
        typer.Option(
            help="reference (hand-written, Faker pools) or stock-client (firehose-loadgen's generators)."
        ),
    ] = "reference",
    rate: Annotated[float, typer.Option(help="Events/s.")] = 200_000,
    duration: Annotated[str, typer.Option(help="How long.")] = "20s",
    metrics_port: Annotated[int, typer.Option(help="Port for /metrics.")] = 0,
    metrics_linger: Annotated[str, typer.Option(help="Serve /metrics this long after.")] = "3s",
    seed: Annotated[int | None, typer.Option(help="Event seed.")] = None,
) -> None:
    """A reference producer bench compares to (stock aiobotocore client, pooled generation)."""
    from producer.bench.handwritten import EventSource, handwritten_events, run_producer
    from producer.runtime import run_async

    make: Callable[[int | None], EventSource]
    if kind == "reference":
        make = handwritten_events
    elif kind == "stock-client":
        from producer.bench.reference import loadgen_events

        make = loadgen_events
    else:
        raise UsageError(f"--kind must be reference or stock-client, got {kind!r}")
    run_async(
        run_producer(
            kind,
            lambda: make(seed),
            endpoint_url,
            list(pipeline.DEFAULT_STREAMS),
            rate,
            _seconds("--duration", duration),
            metrics_port,
            options.duration("--metrics-linger", metrics_linger),
        )
    )


def soak_memory(
    rate: Annotated[float, typer.Option(help="Steady events/s (to both streams).")] = 500,
    minutes: Annotated[int, typer.Option(help="How long; RSS is read once a minute.")] = 10,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Memory over a long steady run (run --duration forever against a discarding local
    Firehose): RSS each minute; exit 5 unless it grew less than 5% from the first minute."""
    if rate <= 0 or minutes < 2:
        raise UsageError("--rate must be > 0 and --minutes at least 2")
    from producer.bench.soak_memory import soak_memory as measure

    result = measure(rate, minutes, None if as_json else typer.echo)
    if as_json:
        typer.echo(json.dumps(result, indent=2))
    else:
        typer.echo(
            f"RSS {result['rss_first_minute_mib']} MiB at minute 1, {result['rss_last_minute_mib']} MiB "
            f"at minute {minutes}: {result['growth']:+.1%} (target under {result['target_growth']:.0%}); "
            f"{result['events_generated']:,} events, run exit code {result['run_exit_code']}"
        )
    if not result["ok"]:
        raise typer.Exit(EXIT_CHECK_FAILED)


def register(app: typer.Typer) -> None:
    bench = typer.Typer(
        help="Benchmarks: `bench` end to end, `bench events` the generators.",
        invoke_without_command=True,
        rich_markup_mode=None,
    )
    bench.callback()(bench_main)
    bench.command("reference", hidden=True)(reference)
    bench.command("soak-memory")(soak_memory)
    app.add_typer(bench, name="bench")

"""``python -m tests.raw_latency FILE ARGS...``: the CLI (``firehose-loadgen ARGS``) with every
PutRecordBatch latency it observes written to FILE (a JSON list of seconds) when it exits, so a
test can compare a merged run's percentiles with the raw values of every shard."""

from __future__ import annotations

import atexit
import sys
from pathlib import Path
from typing import Any

import orjson

from producer.telemetry import histogram

RAW: list[float] = []
_observe = histogram.Histogram.observe


def _recording(self: histogram.Histogram, value: float, times: int = 1) -> None:
    if self.bounds is histogram.LATENCY_BUCKETS_S:  # request_seconds: PutRecordBatch calls
        RAW.extend([value] * times)
    _observe(self, value, times)


def _dump(path: Path) -> None:
    path.write_bytes(orjson.dumps(RAW))


def main(argv: list[str]) -> Any:
    histogram.Histogram.observe = _recording  # type: ignore[method-assign]
    atexit.register(_dump, Path(argv[0]))
    sys.argv = ["firehose-loadgen", *argv[1:]]
    from producer.cli.main import main as cli

    return cli()


if __name__ == "__main__":
    main(sys.argv[1:])

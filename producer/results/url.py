"""``--results-url``: parsed once, checked before the run starts (one line, exit 2), and the
names shards leave their results under (store.py has the layout)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from producer.errors import UsageError

# https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")


@dataclass(frozen=True, slots=True)
class ResultsUrl:
    scheme: Literal["file", "s3"]
    root: str  # the folder (file) or the bucket (s3)
    prefix: str = ""  # s3: the key prefix, "" or ending in "/"
    text: str = ""

    def describe(self, run_id: str) -> str:
        return f"{self.text.rstrip('/')}/{run_id}/"


def parse_results_url(text: str, option: str = "--results-url") -> ResultsUrl:
    """``file://DIR`` (absolute or relative) or ``s3://BUCKET[/PREFIX]``; UsageError otherwise."""
    if text.startswith("file://"):
        folder = text[len("file://") :]
        if not folder:
            raise UsageError(f"{option} {text!r}: name a folder, e.g. file:///shared/results")
        if Path(folder).exists() and not Path(folder).is_dir():
            raise UsageError(f"{option} {text!r}: {folder} is not a folder")
        return ResultsUrl("file", folder, "", text)
    if text.startswith("s3://"):
        bucket, _, prefix = text[len("s3://") :].partition("/")
        if not _BUCKET.fullmatch(bucket) or ".." in bucket:
            raise UsageError(
                f"{option} {text!r}: {bucket!r} is not an S3 bucket name (3-63 lowercase letters, "
                "digits, dots, hyphens)"
            )
        prefix = prefix.strip("/")
        return ResultsUrl("s3", bucket, prefix + "/" if prefix else "", text)
    raise UsageError(f"{option} {text!r}: use file://DIR or s3://BUCKET/PREFIX")


def shard_name(index: int, count: int) -> str:
    return f"shard-{index}-of-{count}"


def parse_shard_name(name: str) -> tuple[int, int] | None:
    match = re.fullmatch(r"shard-(\d+)-of-(\d+)", name)
    return (int(match[1]), int(match[2])) if match else None

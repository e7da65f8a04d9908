"""Object keys and index names as Firehose forms them.

S3 object names: https://docs.aws.amazon.com/firehose/latest/dev/s3-object-name.html
Custom prefixes (``!{timestamp:...}``, ``!{firehose:...}``):
https://docs.aws.amazon.com/firehose/latest/dev/s3-prefixes.html
OpenSearch index rotation:
https://docs.aws.amazon.com/firehose/latest/dev/es-index-rotation.html
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime

_EXPRESSION = re.compile(r"!\{([a-zA-Z]+):([^}]*)\}")
# Java DateTimeFormatter letters Firehose documents for !{timestamp:...}, longest first.
_JAVA_TOKENS = re.compile(r"yyyy|yy|MM|dd|HH|mm|ss|SSS")
_STRFTIME = {"yyyy": "%Y", "yy": "%y", "MM": "%m", "dd": "%d", "HH": "%H", "mm": "%M", "ss": "%S"}

ERROR_OUTPUT_TYPES = frozenset(
    {
        "processing-failed",
        "format-conversion-failed",
        "elasticsearch-failed",
        "AmazonOpenSearchService-failed",
        "splitting-failed",
    }
)
PROCESSING_FAILED = "processing-failed"
# The error-output-type of documents OpenSearch rejected, in the backup bucket (best guess from
# the s3-prefixes page's list of error types; not confirmed against a live stream).
OPENSEARCH_FAILED = "AmazonOpenSearchService-failed"


def _java_format(pattern: str, at: datetime) -> str:
    def one(match: re.Match[str]) -> str:
        token = match.group(0)
        if token == "SSS":
            return f"{at.microsecond // 1000:03d}"
        return at.strftime(_STRFTIME[token])

    # Text in single quotes is literal ("yyyy'-'MM"); the even-numbered parts are outside quotes.
    parts = pattern.split("'")
    return "".join(_JAVA_TOKENS.sub(one, part) if i % 2 == 0 else part for i, part in enumerate(parts))


def has_expressions(prefix: str) -> bool:
    return _EXPRESSION.search(prefix) is not None


def expand_prefix(prefix: str, at: datetime, error_output_type: str | None = None) -> str:
    """Expand ``!{timestamp:...}`` and ``!{firehose:...}``; add ``YYYY/MM/DD/HH/`` when the
    prefix has no expression, as Firehose does."""
    if not has_expressions(prefix):
        out = prefix + at.strftime("%Y/%m/%d/%H/")
        if error_output_type is not None:
            # Without expressions Firehose inserts the error type after the prefix.
            out = prefix + error_output_type + "/" + at.strftime("%Y/%m/%d/%H/")
        return out

    def one(match: re.Match[str]) -> str:
        namespace, value = match.group(1), match.group(2)
        if namespace == "timestamp":
            return _java_format(value, at)
        if namespace == "firehose" and value == "error-output-type":
            return error_output_type or ""
        if namespace == "firehose" and value == "random-string":
            return uuid.uuid4().hex[:11]
        raise ValueError(f"unsupported prefix expression !{{{namespace}:{value}}}")

    return _EXPRESSION.sub(one, prefix)


def object_name(stream: str, version: str, at: datetime, gzip: bool, extension: str | None = None) -> str:
    """``<stream>-<version>-YYYY-MM-DD-HH-MM-SS-<uuid>[.gz]``; FileExtension replaces the suffix."""
    suffix = extension if extension is not None else (".gz" if gzip else "")
    return f"{stream}-{version}-{at.strftime('%Y-%m-%d-%H-%M-%S')}-{uuid.uuid4()}{suffix}"


def index_name(base: str, rotation: str, at: datetime) -> str:
    """IndexName plus the rotation suffix for IndexRotationPeriod."""
    if rotation == "OneHour":
        return f"{base}-{at.strftime('%Y-%m-%d-%H')}"
    if rotation == "OneDay":
        return f"{base}-{at.strftime('%Y-%m-%d')}"
    if rotation == "OneWeek":
        year, week, _ = at.isocalendar()
        return f"{base}-{year}-w{week:02d}"
    if rotation == "OneMonth":
        return f"{base}-{at.strftime('%Y-%m')}"
    return base


def utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, tz=UTC)

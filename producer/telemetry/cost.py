"""What a run costs in Firehose charges: billed bytes, a small price table, and projections.

Pure functions over counters, no I/O: the channel counts billed bytes as records are accepted
(producer/delivery/channel.py), and the run summary, the ``--workers`` merge and ``soak`` price
them here.

**Billed bytes.** Direct PUT ingestion is billed per GB ingested "calculated in 5KB increments"
(a 3KB record is billed as 5KB, a 12KB record as 15KB), per record, not per API call:
https://aws.amazon.com/firehose/pricing/ . The current page says "5KB" without defining it; an
earlier version of the same page (German edition, "auf die nächsten 5 KB (5 120 Bytes)
aufgerundet") said 5,120 bytes, and so do we: ``billed = 5,120 x ceil(size / 5,120)``. A
zero-byte record (the API allows one) counts 0 by that formula; the page does not say.
Only accepted records are billed: AWS charges for data ingested, and a record Firehose refused
(an ErrorCode in the answer, a failed call) was not ingested. A record resent after a call
whose outcome is unknown may be ingested (and billed) twice; the summary's
``possible_duplicates`` bounds that.

**Prices.** ``PRICES`` holds the on-demand prices this module models, per region, dated. They
change: check the pricing page before relying on a number. A region without a table gets
"no price table for REGION" rather than a guess.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

PRICING_URL = "https://aws.amazon.com/firehose/pricing/"
S3_PRICING_URL = "https://aws.amazon.com/s3/pricing/"
LAMBDA_PRICING_URL = "https://aws.amazon.com/lambda/pricing/"
# "Rounded up to the nearest 5KB" (PRICING_URL); 5 KB read as 5,120 bytes (see the docstring).
BILLING_INCREMENT_BYTES = 5_120
# AWS bills data in GB of 2^30 bytes (its 5 KB is binary too, above); tiers are per month.
GB = 1 << 30
TB = 1024 * GB
PB = 1024 * TB
HOURS_PER_MONTH = 730.0  # AWS's own month for monthly estimates (the pricing calculator's)

# What this model leaves out, said in every cost block so nobody reads the figure as the bill.
NOT_MODELLED = (
    "S3 storage and requests",
    "OpenSearch domain",
    "Lambda transform invocations",
    "VPC delivery (per AZ-hour and per GB)",
    "data transfer",
    "dynamic partitioning JQ processing hours",
    "CloudWatch Logs",
)


def billed_size(size: int) -> int:
    """Bytes Firehose bills for one record of ``size`` bytes: 3,000 -> 5,120; 5,121 -> 10,240."""
    return -(-size // BILLING_INCREMENT_BYTES) * BILLING_INCREMENT_BYTES


def billed_bytes(sizes: Iterable[int]) -> int:
    """The billed bytes of records of these sizes (each rounded up on its own)."""
    return sum(map(billed_size, sizes))


@dataclass(frozen=True, slots=True)
class Tier:
    """``usd_per_gb`` for the month's ingested GB up to ``up_to_bytes`` (cumulative)."""

    up_to_bytes: float
    usd_per_gb: float


@dataclass(frozen=True, slots=True)
class PriceTable:
    region: str
    as_of: str  # when the numbers were read; the page may have changed since
    ingestion: tuple[Tier, ...]  # Direct PUT, per GB billed (5 KB increments), tiered per month
    format_conversion_usd_per_gb: float  # JSON to Parquet/ORC, per GB billed (5 KB increments)
    dynamic_partitioning_usd_per_gb: float  # per GB delivered to S3
    dynamic_partitioning_usd_per_1000_objects: float  # per 1,000 S3 objects delivered
    # S3 Standard PUT, COPY, POST, LIST requests, per 1,000 (S3_PRICING_URL); each request of a
    # multipart upload (initiate, every part, complete) is one of them.
    s3_put_usd_per_1000: float = 0.005
    # Lambda requests, per million invocations (LAMBDA_PRICING_URL); duration is not modelled.
    lambda_usd_per_million_requests: float = 0.20
    source: str = PRICING_URL


# Read from PRICING_URL (US East (N. Virginia)) in 2026-12. The first tier, format conversion
# and both dynamic partitioning prices were cross-checked against published copies of the page
# (worked examples quoting $0.029/GB first 500 TB, $0.018/GB conversion, $0.020/GB + $0.005 per
# 1,000 objects partitioning); the next tiers ($0.025 next 1.5 PB, $0.020 next 3 PB) come from
# the page as quoted in issue 20 and were not cross-checked. Beyond 5 PB a month the page says
# to contact AWS: the last tier's price is carried on. S3 Standard PUT requests ($0.005 per
# 1,000) and Lambda requests ($0.20 per million) read from S3_PRICING_URL and LAMBDA_PRICING_URL
# (us-east-1) in 2026-12.
PRICES: dict[str, PriceTable] = {
    "us-east-1": PriceTable(
        region="us-east-1",
        as_of="2026-12",
        ingestion=(
            Tier(500 * TB, 0.029),
            Tier(500 * TB + 1.5 * PB, 0.025),
            Tier(500 * TB + 4.5 * PB, 0.020),
            Tier(math.inf, 0.020),
        ),
        format_conversion_usd_per_gb=0.018,
        dynamic_partitioning_usd_per_gb=0.020,
        dynamic_partitioning_usd_per_1000_objects=0.005,
    ),
}


def price_table(region: str) -> PriceTable | None:
    return PRICES.get(region)


def no_table(region: str) -> str:
    return f"no price table for {region} (tables: {', '.join(sorted(PRICES))}; see {PRICING_URL})"


def ingestion_usd(billed: float, tiers: Sequence[Tier]) -> float:
    """The ingestion charge for ``billed`` bytes in one month, through the tiers in order."""
    total, floor = 0.0, 0.0
    for tier in tiers:
        if billed <= floor:
            break
        total += (min(billed, tier.up_to_bytes) - floor) / GB * tier.usd_per_gb
        floor = tier.up_to_bytes
    return total


@dataclass(frozen=True, slots=True)
class Features:
    """The optional, separately priced features a stream has on (from DescribeDeliveryStream)."""

    format_conversion: bool = False
    dynamic_partitioning: bool = False

    @classmethod
    def from_names(cls, names: Iterable[str]) -> Features:
        """The inverse of ``names`` (a summary's list back into features)."""
        named = set(names)
        return cls("format_conversion" in named, "dynamic_partitioning" in named)

    def names(self) -> list[str]:
        on = {"format_conversion": self.format_conversion, "dynamic_partitioning": self.dynamic_partitioning}
        return [name for name, enabled in on.items() if enabled]


def features_of(description: Mapping[str, Any]) -> Features:
    """Which priced features a DeliveryStreamDescription shows enabled. Both live only in the
    Extended S3 destination:
    https://docs.aws.amazon.com/firehose/latest/APIReference/API_ExtendedS3DestinationDescription.html"""
    conversion = partitioning = False
    for destination in description.get("Destinations") or []:
        s3 = destination.get("ExtendedS3DestinationDescription") or {}
        conversion |= bool((s3.get("DataFormatConversionConfiguration") or {}).get("Enabled"))
        partitioning |= bool((s3.get("DynamicPartitioningConfiguration") or {}).get("Enabled"))
    return Features(conversion, partitioning)


def _usd(value: float) -> float:
    # Sub-cent amounts are the point for short runs: keep 8 significant decimals.
    return round(value, 8)


def run_cost(
    region: str,
    billed: Mapping[str, int],
    window_s: float,
    features: Mapping[str, Features] | None = None,
    bytes_sent: int | None = None,
) -> dict[str, Any]:
    """The summary's ``cost`` block for a run whose streams were billed ``billed`` bytes while
    generating for ``window_s`` seconds.

    ``estimated_cost_usd`` prices the run's own bytes as the month's first usage; the
    projections price the achieved rate (billed bytes / ``window_s``) sustained for an hour
    and for a month of 730 hours, the month through the tiers (an hour is a 730th of it).
    Tiers count the account's volume in the region, so ingestion is tiered on the streams'
    total and shared out by billed bytes; format conversion and dynamic partitioning are per
    stream. Dynamic partitioning's per-object charge needs delivered object counts, which a run
    does not know (``soak`` counts them): it is left out here and named in ``not_modelled``.
    ``bytes_sent`` (the records' own bytes, accepted) gives ``billed_to_sent``: how much the
    5 KB rounding inflates the bill."""
    features = features or {}
    total = sum(billed.values())
    window_s = max(window_s, 1e-9)
    block: dict[str, Any] = {
        "region": region,
        "billed_bytes": total,
        "rate_window_s": round(window_s, 3),
        "billed_bytes_per_s": round(total / window_s, 1),
    }
    if bytes_sent:
        block["billed_to_sent"] = round(total / bytes_sent, 2)
    table = price_table(region)
    if table is None:
        return block | {"error": no_table(region)}
    month_bytes = total / window_s * 3600 * HOURS_PER_MONTH

    def charges(stream_bytes: float, scale: float, f: Features) -> float:
        # ``scale`` turns the run's bytes into the period's: 1 for the run, else the period's
        # bytes / the run's; ingestion is the stream's share of the tiered total.
        share = stream_bytes / total if total else 0.0
        amount = ingestion_usd(total * scale, table.ingestion) * share
        gb = stream_bytes * scale / GB
        if f.format_conversion:
            amount += gb * table.format_conversion_usd_per_gb
        if f.dynamic_partitioning:
            amount += gb * table.dynamic_partitioning_usd_per_gb
        return amount

    month_scale = month_bytes / total if total else 0.0
    streams: dict[str, Any] = {}
    for name, stream_bytes in billed.items():
        f = features.get(name, Features())
        month = charges(stream_bytes, month_scale, f)
        streams[name] = {
            "billed_bytes": stream_bytes,
            "features": f.names(),
            "estimated_cost_usd": _usd(charges(stream_bytes, 1.0, f)),
            "per_hour_usd": _usd(month / HOURS_PER_MONTH),
            "per_month_usd": round(month, 2),
        }
    not_modelled = list(NOT_MODELLED)
    if any(f.dynamic_partitioning for f in features.values()):
        not_modelled.insert(0, "dynamic partitioning per-object charge (a run does not count objects)")
    return block | {
        "estimated_cost_usd": _usd(sum(s["estimated_cost_usd"] for s in streams.values())),
        "per_hour_usd": _usd(sum(s["per_hour_usd"] for s in streams.values())),
        "per_month_usd": round(sum(s["per_month_usd"] for s in streams.values()), 2),
        "prices": f"{region} as published {table.as_of}; check {table.source}",
        "streams": streams,
        "not_modelled": not_modelled,
    }


def cost_line(cost: Mapping[str, Any]) -> str:
    """One line for people: what the run was billed for and what that rate costs."""
    billed = int(cost.get("billed_bytes") or 0)
    head = f"cost: {billed / 1e6:,.2f} MB billed"
    if cost.get("billed_to_sent"):
        head += f" ({cost['billed_to_sent']:g}x the bytes sent: records round up to 5 KB)"
    if "error" in cost:
        return f"{head}; {cost['error']}"
    return (
        f"{head}, ~${cost['estimated_cost_usd']:.6f} this run; at this rate "
        f"~${cost['per_hour_usd']:,.4f}/hour, ~${cost['per_month_usd']:,.2f}/month "
        f"({cost['prices']}; Firehose charges only)"
    )


def objects_usd(region: str, objects: int) -> float | None:
    """Dynamic partitioning's per-object charge for ``objects`` S3 objects (None: no table)."""
    table = price_table(region)
    if table is None:
        return None
    return _usd(objects / 1000 * table.dynamic_partitioning_usd_per_1000_objects)


# Firehose writes an S3 object with one PutObject when the buffer interval is 60 s or more; below
# 60 s it "uses multipart upload ... [which] may slightly increase S3 PUT API costs"
# (https://docs.aws.amazon.com/firehose/latest/dev/buffering-hints.html). The page does not say
# how many parts; the model takes S3's smallest part, 5 MiB (every part but the last;
# https://docs.aws.amazon.com/AmazonS3/latest/userguide/qfacts.html), so an object of N bytes
# costs CreateMultipartUpload + ceil(N / 5 MiB) UploadPart + CompleteMultipartUpload requests:
# an upper bound for the parts, and at least 3 requests where PutObject would be 1.
MULTIPART_BELOW_INTERVAL_S = 60
MIN_PART_BYTES = 5 * 1024 * 1024


def s3_puts_per_object(interval_s: float, object_bytes: float) -> int:
    """S3 PUT-class requests one delivered object costs (see the model above)."""
    if interval_s >= MULTIPART_BELOW_INTERVAL_S:
        return 1
    return 2 + max(1, math.ceil(object_bytes / MIN_PART_BYTES))


def requests_usd(region: str, s3_puts: float, lambda_invocations: float) -> dict[str, float] | None:
    """What ``s3_puts`` S3 PUT requests and ``lambda_invocations`` Lambda requests cost (None: no
    price table for the region)."""
    table = price_table(region)
    if table is None:
        return None
    return {
        "s3_put_usd": _usd(s3_puts / 1000 * table.s3_put_usd_per_1000),
        "lambda_requests_usd": _usd(lambda_invocations / 1e6 * table.lambda_usd_per_million_requests),
    }

"""The cost model: 5 KB rounding, the tiers, the projections, and a region without prices."""

from __future__ import annotations

from typing import Any

import pytest

from producer.telemetry import cost
from producer.telemetry.cost import GB, PB, TB, Features, billed_size, ingestion_usd

US = cost.PRICES["us-east-1"]


@pytest.mark.parametrize(
    ("size", "billed"),
    [(0, 0), (1, 5_120), (400, 5_120), (5_119, 5_120), (5_120, 5_120), (5_121, 10_240), (12_000, 15_360),
     (1_024_000, 1_024_000)],
)  # fmt: skip
def test_each_record_rounds_up_to_the_next_5120_bytes(size: int, billed: int) -> None:
    assert billed_size(size) == billed


def test_rounding_is_per_record_not_per_call() -> None:
    # The page's own example: two 1 KB records in one PutRecordBatch bill 10 KB, not 5 KB.
    assert cost.billed_bytes([1_024, 1_024]) == 10_240


def test_the_first_tier_prices_up_to_500_tb() -> None:
    assert ingestion_usd(GB, US.ingestion) == pytest.approx(0.029)
    assert ingestion_usd(500 * TB, US.ingestion) == pytest.approx(500 * 1024 * 0.029)


def test_bytes_past_a_tier_boundary_take_the_next_price() -> None:
    first = 500 * 1024 * 0.029
    assert ingestion_usd(500 * TB + GB, US.ingestion) == pytest.approx(first + 0.025)
    second = 1.5 * 1024 * 1024 * 0.025
    assert ingestion_usd(500 * TB + 1.5 * PB, US.ingestion) == pytest.approx(first + second)
    assert ingestion_usd(500 * TB + 1.5 * PB + GB, US.ingestion) == pytest.approx(first + second + 0.020)
    # Past 5 PB the page says "contact us": the last price carries on.
    top = 500 * TB + 4.5 * PB
    assert ingestion_usd(top + GB, US.ingestion) == pytest.approx(ingestion_usd(top, US.ingestion) + 0.020)


def test_zero_bytes_cost_nothing() -> None:
    assert ingestion_usd(0, US.ingestion) == 0.0
    block = cost.run_cost("us-east-1", {"a": 0}, 10.0)
    assert block["estimated_cost_usd"] == 0 and block["per_month_usd"] == 0


def test_projections_price_the_achieved_rate_for_an_hour_and_730() -> None:
    # 1 GB billed in 10 s: 360 GB an hour, 262,800 GB a month (all in the first tier).
    block = cost.run_cost("us-east-1", {"a": GB}, 10.0)
    assert block["billed_bytes_per_s"] == pytest.approx(GB / 10, abs=0.1)
    assert block["estimated_cost_usd"] == pytest.approx(0.029)
    assert block["per_hour_usd"] == pytest.approx(360 * 0.029)
    assert block["per_month_usd"] == pytest.approx(360 * 730 * 0.029, abs=0.01)
    assert block["prices"].startswith("us-east-1 as published ") and cost.PRICING_URL in block["prices"]
    assert "S3 storage and requests" in block["not_modelled"]


def test_a_month_past_the_first_tier_is_tiered_and_the_hour_is_its_730th() -> None:
    # 1 TB in 1 s: 2,628,000 TB a month, well past 500 TB.
    block = cost.run_cost("us-east-1", {"a": TB}, 1.0)
    month = ingestion_usd(TB * 3600 * 730, US.ingestion)
    assert block["per_month_usd"] == pytest.approx(month, rel=1e-9)
    assert block["per_hour_usd"] == pytest.approx(month / 730, rel=1e-6)
    assert block["per_month_usd"] < TB * 3600 * 730 / GB * 0.029  # cheaper than all at tier 1


def test_tiers_count_the_streams_together_and_share_out_by_billed_bytes() -> None:
    block = cost.run_cost("us-east-1", {"a": 3 * GB, "b": GB}, 1.0)
    a, b = block["streams"]["a"], block["streams"]["b"]
    assert a["estimated_cost_usd"] == pytest.approx(3 * b["estimated_cost_usd"])
    assert a["per_month_usd"] + b["per_month_usd"] == pytest.approx(block["per_month_usd"], abs=0.02)
    assert block["per_month_usd"] == pytest.approx(ingestion_usd(4 * GB * 3600 * 730, US.ingestion), rel=1e-6)


def test_format_conversion_and_dynamic_partitioning_add_their_per_gb_prices() -> None:
    features = {"a": Features(format_conversion=True), "b": Features(dynamic_partitioning=True)}
    block = cost.run_cost("us-east-1", {"a": GB, "b": GB, "c": GB}, 1.0, features)
    streams = block["streams"]
    assert streams["a"]["estimated_cost_usd"] == pytest.approx(0.029 + 0.018)
    assert streams["b"]["estimated_cost_usd"] == pytest.approx(0.029 + 0.020)
    assert streams["c"]["estimated_cost_usd"] == pytest.approx(0.029)
    assert streams["a"]["features"] == ["format_conversion"]
    # A run does not count S3 objects: the per-object charge is named as left out.
    assert block["not_modelled"][0].startswith("dynamic partitioning per-object charge")
    assert cost.objects_usd("us-east-1", 2_000) == pytest.approx(0.01)


def test_an_unknown_region_says_so_instead_of_guessing() -> None:
    block = cost.run_cost("eu-south-9", {"a": GB}, 1.0)
    assert block["error"].startswith("no price table for eu-south-9")
    assert block["billed_bytes"] == GB and "estimated_cost_usd" not in block
    assert "no price table for eu-south-9" in cost.cost_line(block)
    assert cost.objects_usd("eu-south-9", 10) is None


def test_features_are_read_from_the_stream_description() -> None:
    description = {
        "Destinations": [
            {
                "ExtendedS3DestinationDescription": {
                    "DataFormatConversionConfiguration": {"Enabled": True},
                    "DynamicPartitioningConfiguration": {"Enabled": False},
                }
            }
        ]
    }
    assert cost.features_of(description) == Features(format_conversion=True)
    opensearch: dict[str, Any] = {"Destinations": [{"AmazonopensearchserviceDestinationDescription": {}}]}
    assert cost.features_of(opensearch) == Features()
    assert Features.from_names(Features(True, True).names()) == Features(True, True)


def test_the_cost_line_shows_the_inflation_and_the_projections() -> None:
    block = cost.run_cost("us-east-1", {"a": 5_120 * 1_000}, 5.0, bytes_sent=400 * 1_000)
    line = cost.cost_line(block)
    assert block["billed_to_sent"] == 12.8
    assert line.startswith("cost: 5.12 MB billed (12.8x the bytes sent")
    assert "/hour" in line and "/month" in line and "us-east-1 as published" in line

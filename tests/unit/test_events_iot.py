"""IoT fleet: periodic reports, drift, anomalies and alerts, GPS for movers, firmware."""

from __future__ import annotations

import random
import re
import statistics
from collections import Counter, defaultdict
from typing import Any

import orjson
import pytest

from producer.events.catalog import build_catalog
from producer.events.iot import FIRMWARE, KINDS, IotGenerator, IotParams
from producer.events.pools import build_pools


def iot_events(n: int, params: IotParams | None = None, seed: int = 1) -> list[dict[str, Any]]:
    gen = IotGenerator(
        random.Random(seed),
        build_pools(random.Random(seed + 1)),
        build_catalog(random.Random(seed + 2)),
        params or IotParams(),
    )
    return [gen.next_event(1_700_000_000.0 + i / 1000) for i in range(n)]


def test_fields_and_value_ranges() -> None:
    for e in iot_events(5000):
        assert e["event_type"] in ("telemetry", "alert", "firmware_update")
        assert e["user_id"] == e["device_id"] and e["device_id"].startswith("dev-")
        assert e["device_kind"] in KINDS and e["firmware"] in FIRMWARE
        if e["event_type"] == "firmware_update":
            continue
        assert isinstance(e["temperature_c"], float) and -40 < e["temperature_c"] < 80
        assert 0 <= e["humidity_pct"] <= 100
        assert 0 <= e["battery_pct"] <= 100
        assert -110 <= e["signal_dbm"] < -50


def test_every_device_reports_once_per_round() -> None:
    fleet = 300
    batch = iot_events(fleet * 4, IotParams(fleet_size=fleet))
    for r in range(4):
        round_ids = [e["device_id"] for e in batch[r * fleet : (r + 1) * fleet]]
        assert len(set(round_ids)) == fleet


def test_only_movers_report_gps_and_they_move() -> None:
    tracks: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for e in iot_events(20_000, IotParams(fleet_size=200, firmware_update_share=0)):
        if e["device_kind"] == "delivery-van":
            gps = e["gps"]
            assert -90 <= gps["lat"] <= 90 and -180 <= gps["lon"] <= 180 and 0 <= gps["speed_kmh"] < 90
            tracks[e["device_id"]].append((gps["lat"], gps["lon"]))
        else:
            assert "gps" not in e
    assert tracks
    assert all(len(set(points)) > 1 for points in tracks.values())


def test_smart_shelves_report_a_catalog_product() -> None:
    products = {p.product_id for p in build_catalog(random.Random(3)).products}
    shelves = [e for e in iot_events(3000) if e["device_kind"] == "smart-shelf" and "temperature_c" in e]
    assert shelves and all(e["product_id"] in products and e["stock"] >= 0 for e in shelves)
    assert all("product_id" not in e for e in iot_events(3000) if e["device_kind"] == "kiosk")


def test_sensors_drift_and_more_drift_spreads_readings_more() -> None:
    def spread(drift: float) -> float:
        params = IotParams(fleet_size=20, drift_c=drift, anomaly_share=0, mover_share=0)
        readings: dict[str, list[float]] = defaultdict(list)
        for e in iot_events(20 * 2000, params):
            if "temperature_c" in e:
                readings[e["device_id"]].append(e["temperature_c"])
        # How far each device wandered between its first and last hundred reports.
        return statistics.mean(
            abs(statistics.mean(r[-100:]) - statistics.mean(r[:100])) for r in readings.values()
        )

    assert spread(0.2) > 3 * spread(0.0) > 0


def test_anomalies_raise_alerts_at_the_configured_share() -> None:
    batch = iot_events(50_000, IotParams(anomaly_share=0.02, firmware_update_share=0))
    alerts = Counter(e["alert"] for e in batch if e["event_type"] == "alert")
    assert alerts["sensor_anomaly"] / len(batch) == pytest.approx(0.02, abs=0.003)
    for e in batch:
        if e.get("alert") == "temperature_out_of_range":
            _, low, high = KINDS[e["device_kind"]]
            assert not low <= e["temperature_c"] <= high
        assert ("alert" in e) == (e["event_type"] == "alert")


def test_no_anomalies_when_the_share_is_zero() -> None:
    batch = iot_events(10_000, IotParams(anomaly_share=0.0))
    assert not [e for e in batch if e.get("alert") == "sensor_anomaly"]


def test_firmware_only_moves_forward() -> None:
    seen: dict[str, int] = {}
    updates = 0
    for e in iot_events(30_000, IotParams(fleet_size=100, firmware_update_share=0.01)):
        version = FIRMWARE.index(e["firmware"])
        assert version >= seen.get(e["device_id"], 0)
        if e["event_type"] == "firmware_update":
            updates += 1
            assert FIRMWARE.index(e["previous_firmware"]) == version - 1
        seen[e["device_id"]] = version
    assert updates > 10


def test_readings_are_written_with_their_stated_decimals() -> None:
    # Rounded as round(x * 10**n) / 10**n: the encoded record must still show at most n digits.
    places = {"temperature_c": 2, "humidity_pct": 1, "battery_pct": 1}
    movers = 0
    for e in iot_events(5000, IotParams(mover_share=0.5)):
        text = orjson.dumps(e).decode()
        for field, n in places.items():
            if field in e:
                assert re.search(rf'"{field}":-?\d+(\.\d{{1,{n}}})?[,}}]', text), text
        if "gps" in e:
            movers += 1
            assert re.search(r'"gps":\{"lat":-?\d+(\.\d{1,5})?,"lon":-?\d+(\.\d{1,5})?,', text), text
    assert movers > 100

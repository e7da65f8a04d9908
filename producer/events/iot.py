"""IoT fleet telemetry: drifting sensors, occasional anomalies and alerts."""

from __future__ import annotations

import random
from dataclasses import dataclass

from producer.events.base import Event, EventIds, Timestamps
from producer.events.catalog import Product
from producer.events.pools import Pools

FIRMWARE = ["2.4.1", "2.4.2", "2.5.0", "3.0.0-rc1"]
KINDS = ["smart-shelf", "cold-storage", "delivery-van", "kiosk"]


@dataclass(slots=True)
class _Device:
    device_id: str
    kind: str
    firmware: str
    temperature: float
    humidity: float
    battery: float
    lat: float
    lon: float
    moving: bool


class IotGenerator:
    source = "iot"

    def __init__(
        self,
        rng: random.Random,
        pools: Pools,
        catalog: list[Product],
        fleet_size: int = 1000,
        anomaly_share: float = 0.01,
    ) -> None:
        self._rng = rng
        self._anomaly_share = anomaly_share
        self._ids = EventIds(rng)
        self._ts = Timestamps()
        self._fleet = [self._device(i) for i in range(fleet_size)]

    def _device(self, i: int) -> _Device:
        rng = self._rng
        kind = KINDS[i % len(KINDS)]
        return _Device(
            device_id=f"dev-{i:05d}",
            kind=kind,
            firmware=rng.choice(FIRMWARE),
            temperature=2.0 if kind == "cold-storage" else rng.uniform(18, 24),
            humidity=rng.uniform(30, 60),
            battery=rng.uniform(60, 100),
            lat=rng.uniform(25, 48),
            lon=rng.uniform(-122, -70),
            moving=kind == "delivery-van",
        )

    def next_event(self, now: float) -> Event:
        rng = self._rng
        d = self._fleet[rng.randrange(len(self._fleet))]
        d.temperature += rng.gauss(0, 0.05)
        d.humidity = min(100.0, max(0.0, d.humidity + rng.gauss(0, 0.2)))
        d.battery = max(0.0, d.battery - rng.uniform(0, 0.02))
        if d.battery < 5:
            d.battery = 100.0  # recharged
        anomaly = rng.random() < self._anomaly_share
        temperature = d.temperature + (rng.choice((-1, 1)) * rng.uniform(8, 20) if anomaly else 0.0)
        event: Event = {
            "event_id": self._ids.next(),
            "user_id": d.device_id,
            "event_type": "alert" if anomaly else "telemetry",
            "timestamp": self._ts.format(now),
            "source": "iot",
            "device_id": d.device_id,
            "device_kind": d.kind,
            "firmware": d.firmware,
            "temperature_c": round(temperature, 2),
            "humidity_pct": round(d.humidity, 1),
            "battery_pct": round(d.battery, 1),
            "signal_dbm": rng.randrange(-110, -50),
        }
        if d.moving:
            d.lat += rng.gauss(0, 0.001)
            d.lon += rng.gauss(0, 0.001)
            event["gps"] = {"lat": round(d.lat, 5), "lon": round(d.lon, 5)}
        if anomaly:
            event["alert"] = "temperature_out_of_range"
        return event

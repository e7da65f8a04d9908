"""IoT fleet telemetry: devices report in turn, sensors drift, anomalies raise alerts."""

from __future__ import annotations

import random
from dataclasses import dataclass

from producer.events.base import Event, EventIds, Timestamps
from producer.events.catalog import Catalog, Product
from producer.events.pools import CITIES, Pools

FIRMWARE = ("2.4.1", "2.4.2", "2.5.0", "3.0.0")  # oldest to newest: updates move right
# kind: (temperature set point, lowest and highest acceptable reading) in degrees C
KINDS = {
    "smart-shelf": (21.0, 10.0, 32.0),
    "cold-storage": (3.0, 0.0, 8.0),
    "delivery-van": (5.0, 0.0, 10.0),  # chilled cargo; the only kind that moves
    "kiosk": (22.0, 5.0, 40.0),
}
LOW_BATTERY_PCT = 15.0


@dataclass(frozen=True, slots=True)
class IotParams:
    fleet_size: int = 1000
    anomaly_share: float = 0.01  # readings with a sudden sensor fault
    drift_c: float = 0.05  # std-dev of the per-report random walk of each sensor's bias
    mover_share: float = 0.25  # devices that are delivery vans (and report GPS)
    firmware_update_share: float = 0.0005  # reports that are a firmware update instead


@dataclass(slots=True)
class _Device:
    device_id: str
    kind: str
    firmware: int  # index into FIRMWARE
    setpoint: float
    low: float
    high: float
    bias: float  # drift: the sensor's slowly wandering error
    humidity: float
    battery: float
    lat: float
    lon: float
    moving: bool
    product: Product | None  # what a smart shelf holds
    stock: int


class IotGenerator:
    source = "iot"

    def __init__(self, rng: random.Random, pools: Pools, catalog: Catalog, params: IotParams) -> None:
        self._rng = rng
        self._random = rng.random
        self._params = params
        self._catalog = catalog
        self._ids = EventIds(rng)
        self._ts = Timestamps()
        self._fleet = [self._device(i) for i in range(params.fleet_size)]
        # Periodic telemetry: every device reports once per round, in a shuffled order.
        self._order = list(range(len(self._fleet)))
        rng.shuffle(self._order)
        self._next = 0

    def _device(self, i: int) -> _Device:
        rng = self._rng
        moving = rng.random() < self._params.mover_share
        kind = "delivery-van" if moving else ("smart-shelf", "cold-storage", "kiosk")[i % 3]
        setpoint, low, high = KINDS[kind]
        _, _, lat, lon = rng.choice(CITIES)
        return _Device(
            device_id=f"dev-{i:05d}",
            kind=kind,
            firmware=rng.randrange(len(FIRMWARE) - 1),
            setpoint=setpoint,
            low=low,
            high=high,
            bias=rng.gauss(0, 0.5),
            humidity=rng.uniform(30, 60),
            battery=rng.uniform(40, 100),
            lat=lat + rng.uniform(-0.1, 0.1),
            lon=lon + rng.uniform(-0.1, 0.1),
            moving=moving,
            product=self._catalog.pick(rng) if kind == "smart-shelf" else None,
            stock=rng.randrange(5, 60),
        )

    def _noise(self, sigma: float) -> float:
        """Zero-mean noise with standard deviation ``sigma``: the sum of two uniforms (a
        triangular distribution, bounded at +-2.45 sigma). Random.gauss is pure Python and
        cost more than the rest of a telemetry event; this is two C calls."""
        r = self._random
        return (r() + r() - 1.0) * sigma * 2.449489742783178  # 1 / sqrt(1/6)

    def next_event(self, now: float) -> Event:
        rng, p = self._rng, self._params
        d = self._fleet[self._order[self._next]]
        self._next = (self._next + 1) % len(self._order)
        event: Event = {
            "event_id": self._ids.next(),
            "user_id": d.device_id,  # a device is its own principal in the recipe's schema
            "event_type": "telemetry",
            "timestamp": self._ts.format(now),
            "source": "iot",
            "device_id": d.device_id,
            "device_kind": d.kind,
            "firmware": FIRMWARE[d.firmware],
        }
        if d.firmware < len(FIRMWARE) - 1 and rng.random() < p.firmware_update_share:
            event["event_type"] = "firmware_update"
            event["previous_firmware"] = FIRMWARE[d.firmware]
            d.firmware += 1
            event["firmware"] = FIRMWARE[d.firmware]
            d.bias = 0.0  # an update recalibrates the sensor
            return event
        # Drift: a random walk, pulled gently back so a long soak stays plausible.
        noise = self._noise
        d.bias = d.bias * 0.999 + noise(p.drift_c)
        d.humidity = min(100.0, max(0.0, d.humidity + noise(0.2)))
        was_low = d.battery < LOW_BATTERY_PCT
        d.battery -= rng.random() * 0.05
        if d.battery < 3:
            d.battery = 100.0  # swapped or recharged
        temperature = d.setpoint + d.bias + noise(0.3)
        anomaly = rng.random() < p.anomaly_share
        if anomaly:
            temperature += rng.choice((-1.0, 1.0)) * rng.uniform(8, 20)
        # round(x * 10**n) / 10**n: the same n-decimal values as round(x, n) at half its cost
        # (round with digits goes through decimal conversion), and repr still prints n decimals.
        event["temperature_c"] = round(temperature * 100) / 100
        event["humidity_pct"] = round(d.humidity * 10) / 10
        event["battery_pct"] = round(d.battery * 10) / 10
        # int(random() * n) for draws on the per-event path: see web.py
        event["signal_dbm"] = int(self._random() * 60) - 110
        if d.moving:
            d.lat += noise(0.002)
            d.lon += noise(0.002)
            speed = int(self._random() * 90)
            event["gps"] = {
                "lat": round(d.lat * 1e5) / 1e5,
                "lon": round(d.lon * 1e5) / 1e5,
                "speed_kmh": speed,
            }
        if d.product is not None:
            d.stock = d.stock - 1 if d.stock > 0 and rng.random() < 0.1 else (d.stock or 40)
            event["product_id"] = d.product.product_id
            event["stock"] = d.stock
        alert = ""
        if anomaly:
            alert = "sensor_anomaly"
        elif not d.low <= temperature <= d.high:
            alert = "temperature_out_of_range"
        elif d.battery < LOW_BATTERY_PCT and not was_low:
            alert = "battery_low"
        if alert:
            event["event_type"] = "alert"
            event["alert"] = alert
        return event

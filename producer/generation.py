"""The generation loop: the pacer says how many events are due, generators make them, the
encoder turns them into records, and every record is offered to its streams."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from producer.config import RunConfig
from producer.encoding import encode_json_line
from producer.events import EventGenerator
from producer.schedule import Pacer, scaled
from producer.sender import StreamChannel


@dataclass(slots=True)
class Progress:
    events: int = 0


async def generate(
    config: RunConfig,
    generator: EventGenerator,
    channels: list[StreamChannel],
    stop: asyncio.Event,
    progress: Progress,
) -> None:
    pacer = Pacer(scaled(config.profile.rate_shape, config.rate / config.profile.rate), config.duration_s)
    async for due in pacer.ticks(stop):
        now = time.time()
        for _ in range(due):
            data = encode_json_line(generator.next_event(now))
            progress.events += 1
            for channel in channels:
                wait = channel.offer(data)
                if wait is not None:
                    await wait  # backpressure: the stream is full (--on-full block)
        if not any(c.usable for c in channels):
            break

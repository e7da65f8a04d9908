"""The generation loop: the pacer says how many events are due, generators make them, the
encoder turns them into records (breaking the profile's malformed share on purpose), and
each record is offered to the streams its source is routed to."""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from producer.config import RunConfig
from producer.delivery.channel import Inlet
from producer.encoding import Encoder, RecordEncoder
from producer.events.base import Event, EventGenerator
from producer.events.registry import GENERATORS
from producer.firehose.wire import RAW
from producer.schedule import Pacer, scaled
from producer.templates.kdg import TEXT_FIELD, encode_text


@dataclass(slots=True)
class Progress:
    events: int = 0
    malformed: int = 0
    by_source: Counter[str] = field(default_factory=Counter)  # /metrics reads it live
    target_rate: float = 0.0  # what the rate shape asks for now (events/s)


class Named(Protocol):
    @property
    def name(self) -> str: ...


C = TypeVar("C", bound=Named)


def route(
    channels: Sequence[C], routes: Mapping[str, Sequence[str]], sources: Iterable[str] = GENERATORS
) -> dict[str, list[C]]:
    """For each source, the channels that get its events.

    A stream named in ``routes`` gets only the sources listed for it; every other stream
    gets every event (the default: fan-out to all). Routes naming a stream this run does
    not send to are ignored, so one profile works with any ``--stream`` set.
    """
    return {
        source: [c for c in channels if c.name not in routes or source in routes[c.name]]
        for source in sources
    }


# Records offered to the streams at once, at most (see generate). It also bounds how far past
# --max-held a stream may go under --on-full block (StreamChannel.offer_many).
CHUNK_RECORDS = 256


def record_encoder(config: RunConfig, transient: bool = False) -> RecordEncoder:
    # A separate RNG stream for breaking records, so turning malformed on or off does not
    # change which events are generated for a seed.
    rng = random.Random(None if config.seed is None else f"malformed-{config.seed}")
    return RecordEncoder(config.profile.record_format, config.profile.malformed, rng, transient)


def with_text_records(encode: Encoder) -> Encoder:
    """``encode``, and a KDG text record (CSV, a log line) as rendered: never broken on purpose,
    never JSON-encoded. Used only when the profile has a `kind: kdg` generator, so the built-in
    generators' path keeps its single C call."""

    def either(event: Event) -> bytes:
        if TEXT_FIELD in event:
            return encode_text(event)
        return encode(event)

    return either


async def generate(
    config: RunConfig,
    generator: EventGenerator,
    channels: Sequence[Inlet],
    stop: asyncio.Event,
    progress: Progress,
    run_id: str,
    pacer: Pacer | None = None,
    event_clock: Callable[[], float] = time.time,
) -> None:
    """Offer every due event to its streams. With ``config.trace_fields`` each event carries
    ``run_id`` and ``seq`` (0-based, one per event, the same in every stream), so an audit can
    count loss and duplication exactly. A sharded producer's k-th event has
    ``seq = k * shard.count + shard.index``: shards sharing a run id never share a seq."""
    profile = config.profile
    if pacer is None:
        pacer = Pacer(scaled(profile.rate_shape, config.rate / profile.rate), config.duration_s)
    targets = route(channels, profile.routes, [*GENERATORS, *profile.generator_params.templates])
    trace = config.trace_fields
    shard = config.shard if config.shard.count > 1 else None
    stride, offset = (shard.count, shard.index) if shard is not None else (1, 0)
    # Channels of one run share one client, so one held form (producer/firehose/wire.py): each
    # event is encoded for it once, whatever the number of streams. A packing stage takes events
    # as they are (RAW): they are kept as made too when one is in the run.
    held_forms = {c.wire for c in channels} - {RAW}
    if len(held_forms) > 1:
        raise ValueError(
            f"channels of one run must share a wire format, got {sorted(w.name for w in held_forms)}"
        )
    held_wire = held_forms.pop() if held_forms else None
    keep_raw = held_wire is None or any(c.wire is RAW for c in channels)
    encode_held = held_wire.encode if held_wire is not None else None
    # Held as given, a record must not pin orjson's oversized buffer; encoded, it is a copy.
    encoder = record_encoder(config, transient=not keep_raw)
    encode = encoder.per_event
    if any(u.kind == "kdg" for u in profile.generator_params.templates.values()):
        encode = with_text_records(encode)
    # Counted in locals and published to ``progress`` (which /metrics reads) once a tick and
    # before every wait: a Counter update per event cost more than the offer to a stream.
    events = progress.events
    counts = dict.fromkeys(targets, 0)

    def publish() -> None:
        progress.events = events
        for name, n in counts.items():
            if n:
                progress.by_source[name] += n
                counts[name] = 0

    # Records go to the streams a chunk at a time (offer_many): per record, two offers cost more
    # than the rest of the loop. A chunk holds consecutive events of sources routed to the same
    # streams, so each stream still gets its records in the order they were generated.
    groups: dict[tuple[int, ...], list[Inlet]] = {}
    for source, chans in targets.items():
        targets[source] = groups.setdefault(tuple(map(id, chans)), chans)
    current: list[Inlet] = []
    raws: list[bytes] = []  # the chunk's records as made (when some inlet takes RAW)
    helds: list[bytes] = []  # the same in the held form (when some channel holds another)
    sizes: list[int] = []

    async def flush() -> bool:
        """Offer the chunk; False once the run's duration has passed (Pacer.past_end: generation
        stops there).

        Every stream takes the chunk before any wait (offer_many under --on-full block), so
        a wait cancelled by a signal or by the end of the duration leaves no stream short of
        events the others have."""
        full = [c for c in current if c.offer_many(raws if c.wire is RAW else helds, sizes)]
        if full:
            publish()
            for channel in full:
                # Backpressure: the stream is full. The wait ends at the end of the duration at
                # the latest: at a rate the streams cannot take, the backlog is not generated
                # after the deadline; it is the schedule's shortfall.
                left = pacer.ends_at - pacer.clock()
                if left <= 0:
                    return False
                try:
                    # A run without end (--duration forever) waits as long as it takes.
                    async with asyncio.timeout(None if math.isinf(left) else left):
                        await channel.wait_for_space()
                except TimeoutError:
                    return False
        return not pacer.past_end()

    on_time = True
    async for due in pacer.ticks(stop):
        progress.target_rate = pacer.counter.current_rate
        now = event_clock()  # the wall clock, or a backfill's simulated one
        for _ in range(due):
            if not on_time:
                break  # past the duration: an event made now would not be on time
            event = generator.next_event(now)
            # A template's event_id may be anything, or absent; only a UUID-shaped one is stamped.
            if shard is not None and isinstance(event.get("event_id"), str) and len(event["event_id"]) == 36:
                event["event_id"] = shard.stamp(event["event_id"])
            if trace:
                # Sharded, seqs interleave (local count * shards + index) so the shards of one
                # run id never share a seq and together fill 0, 1, 2, ... up to the slowest one.
                # Added last (two stores; rebuilding the dict to put them first cost ~0.3 us);
                # the encoder moves them first in a record it cuts short, so it stays traceable.
                event["run_id"] = run_id
                event["seq"] = events * stride + offset
            data = encode(event)
            events += 1
            source = event["source"]
            counts[source] += 1
            chans = targets[source]
            if chans is not current:
                if sizes:
                    on_time = await flush()
                    raws, helds, sizes = [], [], []
                current = chans
            if keep_raw:
                raws.append(data)
            if encode_held is not None:
                helds.append(encode_held(data))
            sizes.append(len(data))
            if len(sizes) >= CHUNK_RECORDS:
                on_time = await flush()
                raws, helds, sizes = [], [], []
        if sizes:
            on_time = await flush()
            raws, helds, sizes = [], [], []
        publish()
        progress.malformed = encoder.malformed
        if not on_time or not any(c.usable for c in channels):
            break

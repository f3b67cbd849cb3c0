"""The micro-batch pipeline: verdicts stored while the next batch is searched, and what a failed store undoes."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Sequence
from typing import Any

import numpy as np

from services.dedup import gallery as dedup_gallery
from services.dedup.ektp import EnrolmentPipeline, Pending
from services.dedup.store import VerdictWrite
from services.dedup.vault import Vault
from sim import gallery as seeding
from tests.builders import packets
from tests.unit.test_dedup_enrolment import NOW, accepted, biometrics, seeded_engine


class Delivery:
    """What the pipeline does with one delivery: acked, or sent back to the queue."""

    def __init__(self) -> None:
        self.outcome: str | None = None
        self.raw_message = type("Raw", (), {"headers": {}})()

    async def ack(self) -> None:
        self.outcome = "ack"

    async def nack(self, requeue: bool = True) -> None:
        self.outcome = "requeue" if requeue else "nack"


class Verdicts:
    """Stores verdicts in memory; the first `fail` calls fail (after the next batch has been searched)."""

    def __init__(self, fail: int, searched_next: asyncio.Event) -> None:
        self.fail, self.searched_next = fail, searched_next
        self.stored: list[str] = []

    async def processed(self, message_ids: Sequence[str]) -> set[str]:
        return set()

    async def record_verdicts(self, writes: Sequence[VerdictWrite]) -> dict[str, int]:
        await self.searched_next.wait()
        if self.fail:
            self.fail -= 1
            raise ConnectionError("database gone")
        self.stored += [w.packet_id for w in writes]
        return {w.message_id: 1000 + i for i, w in enumerate(writes) if w.sealed is not None}


def pipeline_of(engine: Any, store: Verdicts) -> EnrolmentPipeline:
    vault = Vault(base64.b64decode(Vault.new_key()), dedup_gallery.LAYOUT)
    return EnrolmentPipeline(
        engine,
        store,
        vault,
        consumer=None,  # type: ignore[arg-type]
        registry_user="r",
        centre_user="c",
        clock=lambda: NOW,
    )


def newcomers(n: int, seed: int) -> list[Any]:
    rng = np.random.default_rng(seed)
    captures = seeding.MODEL.capture(rng, seeding.MODEL.identities(rng, n))
    bodies = packets(n, seed=seed)
    return [accepted(b, biometrics=biometrics(captures, i)) for i, b in enumerate(bodies)]


async def test_a_failed_store_undoes_its_batch_and_the_batch_searched_after_it() -> None:
    engine = seeded_engine(50)
    start = engine.gallery.size
    searched_next = asyncio.Event()
    store = Verdicts(fail=3, searched_next=searched_next)  # every retry of the store fails
    pipeline = pipeline_of(engine, store)
    first = [Pending(e, Delivery()) for e in newcomers(2, seed=61)]  # type: ignore[arg-type]
    second = [Pending(e, Delivery()) for e in newcomers(2, seed=62)]  # type: ignore[arg-type]
    pipeline._requeue = lambda batch: _requeue_now(batch)  # type: ignore[method-assign]

    await pipeline.process(first)
    assert engine.gallery.size == start + 2  # unique: in the gallery at once, not yet stored
    await pipeline.process(second)  # searched while the first batch's verdicts are being stored
    assert engine.gallery.size == start + 4
    searched_next.set()
    await pipeline.drain()

    assert [p.msg.outcome for p in first + second] == ["requeue"] * 4  # type: ignore[attr-defined]
    assert engine.gallery.size == start  # both batches' people taken out again
    assert store.stored == []

    # delivered again: decided against the gallery as it really is, stored, acked
    again = [Pending(p.event, Delivery()) for p in first + second]  # type: ignore[arg-type]
    await pipeline.process(again)
    await pipeline.drain()
    assert [p.msg.outcome for p in again] == ["ack"] * 4  # type: ignore[attr-defined]
    assert sorted(store.stored) == sorted(p.event.packet_id for p in again)
    assert engine.gallery.size == start + 4
    assert pipeline.decided == 4


async def _requeue_now(batch: list[Pending]) -> None:
    for p in batch:
        await p.msg.nack(requeue=True)


class GoneDelivery(Delivery):
    """A delivery whose channel closed while its batch was decided (the broker restarted)."""

    async def ack(self) -> None:
        raise ConnectionResetError("channel closed")


async def test_a_batch_whose_channel_closed_does_not_hold_back_the_batches_after_it() -> None:
    engine = seeded_engine(50)
    searched_next = asyncio.Event()
    searched_next.set()
    store = Verdicts(fail=0, searched_next=searched_next)
    pipeline = pipeline_of(engine, store)
    before = [Pending(e, GoneDelivery()) for e in newcomers(2, seed=71)]  # type: ignore[arg-type]
    after = [Pending(e, Delivery()) for e in newcomers(2, seed=72)]  # type: ignore[arg-type]
    await pipeline.process(before)
    await pipeline.process(after)
    await asyncio.wait_for(pipeline.drain(), 5)

    # stored, and the broker will deliver the first two again (the inbox knows them); the next batch answered
    assert sorted(store.stored) == sorted(p.event.packet_id for p in before + after)
    assert [p.msg.outcome for p in after] == ["ack", "ack"]  # type: ignore[attr-defined]
    assert pipeline.decided == 4

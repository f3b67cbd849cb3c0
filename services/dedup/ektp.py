"""The e-KTP side of dedup: accepted captures in, micro-batched 1:N search, verdicts out."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

import aio_pika
from faststream.rabbit.annotations import RabbitMessage

from shared import db, messaging
from shared.contracts import (
    AdjudicationDecision,
    EnrolmentAccepted,
    EnrolmentVerdict,
    Message,
    derive_message_id,
)
from shared.ektp import EktpStatus
from shared.runtime import Clock

from . import cases
from .batching import Batcher
from .domain import linkage
from .enrolment import Decided, Engine, verdict_event
from .store import Adjudicated, AdjudicationStore, VerdictStore, VerdictWrite
from .vault import Vault

log = logging.getLogger("simpul.dedup.ektp")


async def settle(answer: Callable[[], Awaitable[None]]) -> None:
    """Ack or nack a delivery that waited in a batch. Its channel may be gone meanwhile (the broker restarted):
    the broker then gives the message again to the consumer's new channel, and the inbox knows whether it was
    decided, so the lost answer costs nothing; it must not stop the batches after it (they waited on this one
    and never answered again: seen with the broker's stop_app/start_app, 230 captures held unacked for good)."""
    try:
        await answer()
    except Exception as gone:
        log.warning(
            "a delivery could not be answered; the broker delivers it again", extra={"error": repr(gone)}
        )


@dataclass
class Pending:
    event: EnrolmentAccepted
    msg: RabbitMessage


class EnrolmentPipeline:
    def __init__(
        self,
        engine: Engine,
        store: VerdictStore,
        vault: Vault,
        consumer: messaging.ReliableConsumer,
        *,
        registry_user: str,
        centre_user: str,
        clock: Clock,
        desk_user: str | None = None,
        adjudications: AdjudicationStore | None = None,
        batch_size: int = 128,
        batch_wait: float = 0.05,
        search_attempts: int = 3,
    ) -> None:
        self.engine, self.store, self.vault, self.consumer = engine, store, vault, consumer
        self.registry_user = registry_user
        self.centre_user = centre_user
        self.deciders = (centre_user, desk_user) if desk_user else (centre_user,)
        self.adjudications = adjudications
        self.clock = clock
        self.batcher: Batcher[Pending] = Batcher(self.process, max_size=batch_size, max_wait=batch_wait)
        self.decided = 0
        self.search_attempts = search_attempts
        self._storing: asyncio.Task[None] | None = None  # the last batch's verdicts, being stored
        self._epoch = 0  # counts rollbacks: a batch searched before one is searched again
        self._retries: set[asyncio.Task[None]] = set()

    async def receive(self, msg: RabbitMessage) -> None:
        """Read and check one delivery, then leave it (unacked) to the next batch; refusals are dead-lettered."""
        raw = msg.raw_message
        try:
            event = EnrolmentAccepted.model_validate_json(raw.body)
            messaging.check_envelope(raw, event)
            messaging.require_publisher(raw, self.registry_user)
        except Exception as exc:
            found = messaging.classify(exc, raw.body)
            if found is None:
                raise
            problem, detail = found
            await self.consumer.dead_letter(messaging.DeadLetter(problem, detail, "dedup", "dedup.ektp", raw))
            await settle(msg.ack)
            return
        await self.batcher.put(Pending(event, msg))

    async def process(self, batch: list[Pending]) -> None:
        try:
            done = await self.store.processed([p.event.message_id for p in batch])
        except Exception:
            log.exception("cannot read the inbox; the batch goes back to the queue")
            await self._requeue(batch)
            return
        for p in batch:
            if p.event.message_id in done:
                await settle(p.msg.ack)
        todo = [p for p in batch if p.event.message_id not in done]
        if not todo:
            return
        epoch, size = self._epoch, self.engine.gallery.size
        try:
            decided = await asyncio.to_thread(self.engine.decide_batch, [p.event for p in todo])
        except Exception:
            log.exception("the batch's search failed; its captures are searched one by one")
            self.engine.rollback(size)
            decided, todo = await self._one_by_one(todo)
            if not todo:
                return
        # The verdicts are stored while the next batch is searched; batches commit in the order searched.
        self._storing = asyncio.create_task(self._store(todo, decided, size, epoch, self._storing))

    async def _store(
        self,
        todo: list[Pending],
        decided: list[Decided],
        size: int,
        epoch: int,
        previous: asyncio.Task[None] | None,
    ) -> None:
        if previous is not None:
            await asyncio.wait([previous])  # its order, not its outcome: each batch answers for itself
        if epoch != self._epoch:
            # An earlier batch was rolled back after this one was searched (against its people): again.
            await self._requeue(todo)
            return
        try:
            rows = {d.row: d.packet.message_id for d in decided if d.row is not None}
            writes = [self._write(d, rows) for d in decided]
            people = await db.retrying(
                lambda: self.store.record_verdicts(writes), attempts=3, what="verdicts"
            )
        except Exception:
            # Never raises: the next batch's store awaits this one.
            log.exception("verdicts not stored; the batch goes back to the queue")
            async with self.batcher.lock:  # no search runs while the gallery is cut back
                self._epoch += 1
                self.engine.rollback(size)
            await self._requeue(todo)
            return
        for d, p in zip(decided, todo, strict=True):
            if d.row is not None:
                self.engine.gallery.person_ids[d.row] = people.get(p.event.message_id, -1)
            await settle(p.msg.ack)
        self.decided += len(todo)

    async def drain(self) -> None:
        """Decide what is waiting and store every verdict in flight (graceful stop)."""
        await self.batcher.drain()
        if self._storing is not None:
            await self._storing

    async def _one_by_one(self, batch: list[Pending]) -> tuple[list[Decided], list[Pending]]:
        """Each capture alone: a capture whose search fails again goes back to the queue with a back-off,
        and after `search_attempts` deliveries gets SEARCH_FAILURE_AT_CENTRAL with the reason."""
        decided: list[Decided] = []
        kept: list[Pending] = []
        for p in batch:
            size = self.engine.gallery.size
            try:
                decided += await asyncio.to_thread(self.engine.decide_batch, [p.event])
            except Exception as exc:
                self.engine.rollback(size)
                attempt = messaging.delivery_count(p.msg.raw_message) + 1
                reason = f"{type(exc).__name__}: {exc}"
                log.warning(
                    "search failed",
                    extra={"packet_id": p.event.packet_id, "attempt": attempt, "reason": reason[:200]},
                )
                if attempt < self.search_attempts:
                    task = asyncio.create_task(self._retry_later(p, messaging.retry_delay(p.msg.raw_message)))
                    self._retries.add(task)
                    task.add_done_callback(self._retries.discard)
                    continue
                decided.append(self.engine.failed(p.event, f"{reason} (after {attempt} attempts)"))
            kept.append(p)
        return decided, kept

    async def _retry_later(self, p: Pending, delay: float) -> None:
        await asyncio.sleep(delay)
        await settle(functools.partial(p.msg.nack, requeue=True))

    def _write(self, d: Decided, rows: dict[int, str]) -> VerdictWrite:
        now = self.clock()
        packet = d.packet
        keep = d.row is not None or d.verdict.status is EktpStatus.ADJUDICATE_RECORD
        sealed = self.vault.seal_people(d.probe.templates, [packet.nik])[0] if keep and d.probe else None
        gallery = self.engine.gallery

        def event(people: dict[str, int]) -> EnrolmentVerdict:
            return verdict_event(
                d,
                {row: people[mid] for row, mid in rows.items() if mid in people},
                gallery,
                now=now,
                message_id=derive_message_id("dedup", "verdict", packet.message_id),
            )

        demographics = packet.demographics
        person = (
            linkage.Person(
                packet.nik,
                demographics.full_name,
                demographics.sex.value,
                demographics.birth_date,
                demographics.birth_place,
                demographics.mother_name,
            )
            if d.row is not None
            else None
        )

        def case(verdict: Message, people: Mapping[str, linkage.Person]) -> Message:
            assert isinstance(verdict, EnrolmentVerdict)
            return cases.case_opened(verdict, demographics, people)

        return VerdictWrite(
            packet.message_id,
            packet.kabkota,
            packet.packet_id,
            packet.nik,
            sealed,
            d.verdict.status is EktpStatus.ADJUDICATE_RECORD,
            event,
            person,
            case,
        )

    async def adjudicate(self, cmd: AdjudicationDecision, raw: aio_pika.abc.AbstractIncomingMessage) -> str:
        """A centre user's decision on a grey-zone capture; refused for anyone else. Returns the outcome."""
        messaging.check_envelope(raw, cmd)
        # The centre's own user, or the monitor's adjudication desk deciding for a logged-in centre operator.
        messaging.require_publisher(raw, *self.deciders)
        assert self.adjudications is not None
        now = self.clock()
        limits = self.engine.thresholds()

        def events(person_id: int | None, nik: str) -> list[Message]:
            return [verdict(person_id, nik), cases.case_decided(cmd, nik, now)]

        def verdict(person_id: int | None, nik: str) -> EnrolmentVerdict:
            unique = cmd.decision == "unique"
            return EnrolmentVerdict(
                message_id=derive_message_id("dedup", "adjudicated", cmd.message_id),
                produced_at=now,
                packet_id=cmd.packet_id,
                kabkota=cmd.kabkota,
                nik=nik,
                status=EktpStatus.PRINT_READY_RECORD if unique else EktpStatus.DUPLICATE_RECORD,
                finding=f"adjudicated_{cmd.decision}",
                person_id=person_id,
                gallery_size=limits.gallery_size,
                duplicate_threshold=round(limits.duplicate, 3),
                adjudicate_threshold=round(limits.adjudicate, 3),
                decided_at=now,
            )

        store = self.adjudications
        async with self.batcher.lock:
            done: Adjudicated = await db.retrying(
                lambda: store.adjudicate(cmd.message_id, raw.user_id or "", cmd, events), what="adjudication"
            )
            if done.sealed is not None and done.nik is not None and done.person_id is not None:
                people = self.vault.open_people([done.sealed], [done.nik])
                self.engine.gallery.add(people, [done.person_id], [done.nik])
        log.info(
            "adjudication",
            extra={
                "outcome": done.outcome,
                "decision": cmd.decision,
                "kabkota": cmd.kabkota,
                "user": raw.user_id,
            },
        )
        return done.outcome

    async def _requeue(self, batch: list[Pending]) -> None:
        await asyncio.sleep(1.0)
        for p in batch:
            await settle(functools.partial(p.msg.nack, requeue=True))

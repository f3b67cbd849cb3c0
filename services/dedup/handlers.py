"""Translates broker messages to dedup decisions and back."""

from __future__ import annotations

from collections.abc import Sequence

from faststream import AckPolicy
from faststream.rabbit import Channel, RabbitRouter
from faststream.rabbit.annotations import RabbitMessage

from shared import db, messaging
from shared.contracts import (
    AdjudicationDecision,
    NikCollisionsFound,
    SdpRecordsAccepted,
    SdpRecordsChecked,
    derive_message_id,
)
from shared.runtime import Clock, utcnow

from . import domain
from .config import Settings
from .ektp import EnrolmentPipeline
from .population import PopulationStore, check_records
from .store import ClaimStore


def build_router(
    store: ClaimStore,
    settings: Settings,
    *,
    clock: Clock = utcnow,
    pipeline: EnrolmentPipeline | None = None,
    population: PopulationStore | None = None,
) -> RabbitRouter:
    router = RabbitRouter()

    if pipeline is not None:
        ektp = pipeline

        @router.subscriber(
            messaging.DEDUP_EKTP.subscribe_to(),
            messaging.EVENTS,
            title="dedup.ektp",
            # Acked by the pipeline once the capture's batch is decided and stored.
            ack_policy=AckPolicy.MANUAL,
            channel=Channel(prefetch_count=3 * settings.batch_size, on_return_raises=True),
            description="Captures sent for dedup (SENT_FOR_DEDUP): micro-batched 1:N search, then a verdict.",
        )
        async def on_enrolment_accepted(msg: RabbitMessage) -> None:
            await ektp.receive(msg)

        @router.subscriber(
            messaging.DEDUP_COMMANDS.subscribe_to(),
            messaging.COMMANDS,
            title="dedup.commands",
            ack_policy=messaging.ACK_POLICY,
            description="A centre user decides a grey-zone capture (audited; refused for anyone else).",
        )
        async def on_adjudication(cmd: AdjudicationDecision, msg: RabbitMessage) -> None:
            await ektp.adjudicate(cmd, msg.raw_message)

    @router.subscriber(
        messaging.DEDUP_SDP.subscribe_to(),
        messaging.EVENTS,
        channel=messaging.DEDUP_SDP.channel(),
        title="dedup.sdp",
        ack_policy=messaging.ACK_POLICY,
        description="Accepted SDP records, checked for NIKs claimed by two people.",
        decoder=messaging.decoded_as(SdpRecordsAccepted),
    )
    async def on_sdp_records_accepted(event: SdpRecordsAccepted, msg: RabbitMessage) -> None:
        raw = msg.raw_message
        messaging.check_envelope(raw, event)
        messaging.require_publisher(raw, settings.service_user("registry"))
        claims = domain.claims_of(event.upt_id, event.records)
        now = clock()
        checks = await check_records(event.records, population) if population is not None else []

        inmate_ids = [r.inmate_id for r in event.records]
        keys = [(event.upt_id, i) for i in inmate_ids]

        def decide(existing: Sequence[domain.Claim], seq: int) -> list[db.Outgoing]:
            sets = domain.flag_sets(keys, claims, existing)
            checked = SdpRecordsChecked(
                message_id=derive_message_id("dedup", "checked", event.message_id),
                produced_at=now,
                submission_id=event.submission_id,
                upt_id=event.upt_id,
                as_of=event.as_of,
                snapshot=event.snapshot,
                part=event.part,
                parts=event.parts,
                records=event.records,
                flag_seq=seq,
                flag_sets=sets,
                population_checks=checks,
            )
            out = [db.Outgoing("events", checked.ROUTING_KEY, checked)]
            if flagged := sum(1 for s in sets if s.flags):
                found = NikCollisionsFound(
                    message_id=derive_message_id("dedup", "collisions", event.message_id),
                    produced_at=now,
                    submission_id=event.submission_id,
                    upt_id=event.upt_id,
                    flagged_records=flagged,
                )
                out.append(db.Outgoing("events", found.ROUTING_KEY, found))
            return out

        await db.retrying(
            lambda: store.record_claims(event.message_id, event.upt_id, inmate_ids, claims, decide),
            what="record NIK claims",
        )

    return router

"""Translates broker messages to consolidator use cases: parse, check the sender, call, ack."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from faststream.rabbit import RabbitExchange, RabbitRouter
from faststream.rabbit.annotations import RabbitMessage
from faststream.rabbit.subscriber import RabbitSubscriber

from shared import db, messaging
from shared.contracts import (
    ConsolidationRunRequested,
    EnrolmentVerdict,
    PacketStatusChanged,
    PersonLinkRequested,
    SdpRecordsChecked,
    SubmissionProcessed,
)

from .config import Settings
from .usecases import Consolidator


def build_router(
    consolidator: Consolidator, settings: Settings, *, run_requested: Callable[[], None]
) -> RabbitRouter:
    router = RabbitRouter()
    registry, dedup = settings.service_user("registry"), settings.service_user("dedup")

    def subscriber(
        spec: messaging.QueueSpec, exchange: RabbitExchange, description: str, **options: Any
    ) -> RabbitSubscriber:
        return router.subscriber(
            spec.subscribe_to(),
            exchange,
            channel=spec.channel(),
            title=spec.name,
            ack_policy=messaging.ACK_POLICY,
            description=description,
            **options,
        )

    @subscriber(
        messaging.CONSOLIDATOR_SUBMISSIONS, messaging.EVENTS, "The registry's answer to every SDP part."
    )
    async def on_submission_processed(event: SubmissionProcessed, msg: RabbitMessage) -> None:
        messaging.check_envelope(msg.raw_message, event)
        messaging.require_publisher(msg.raw_message, registry)
        await db.retrying(lambda: consolidator.record_part_status(event), what="part status")

    @subscriber(
        messaging.CONSOLIDATOR_SDP,
        messaging.EVENTS,
        "Checked SDP records, staged per snapshot.",
        decoder=messaging.decoded_as(SdpRecordsChecked),
    )
    async def on_sdp_records_checked(checked: SdpRecordsChecked, msg: RabbitMessage) -> None:
        messaging.check_envelope(msg.raw_message, checked)
        messaging.require_publisher(msg.raw_message, dedup)
        await db.retrying(lambda: consolidator.stage_checked_part(checked), what="stage part")

    @subscriber(
        messaging.CONSOLIDATOR_EKTP_STATUS, messaging.EVENTS, "Every e-KTP status move the registry made."
    )
    async def on_packet_status_changed(change: PacketStatusChanged, msg: RabbitMessage) -> None:
        messaging.check_envelope(msg.raw_message, change)
        messaging.require_publisher(msg.raw_message, registry)
        await db.retrying(lambda: consolidator.record_capture_change(change), what="capture status")

    @subscriber(messaging.CONSOLIDATOR_EKTP, messaging.EVENTS, "Dedup's verdict on every e-KTP capture.")
    async def on_enrolment_verdict(verdict: EnrolmentVerdict, msg: RabbitMessage) -> None:
        messaging.check_envelope(msg.raw_message, verdict)
        messaging.require_publisher(msg.raw_message, dedup)
        await db.retrying(lambda: consolidator.record_verdict(verdict), what="verdict")

    @subscriber(
        messaging.CONSOLIDATOR_COMMANDS,
        messaging.COMMANDS,
        "The centre's command to consolidate a day (refused, with a failed run event, for anyone else).",
    )
    async def on_consolidation_run_requested(command: ConsolidationRunRequested, msg: RabbitMessage) -> None:
        raw = msg.raw_message
        messaging.check_envelope(raw, command)
        run_id = await db.retrying(
            lambda: consolidator.request_run(
                command, publisher=raw.user_id or "", centre=settings.unit_user("pusat")
            ),
            what="run request",
        )
        if run_id is not None:
            run_requested()

    @subscriber(
        messaging.CONSOLIDATOR_LINKS,
        messaging.COMMANDS,
        "The centre confirms a person's NIK (refused, and recorded, for anyone else).",
    )
    async def on_person_link_requested(command: PersonLinkRequested, msg: RabbitMessage) -> None:
        raw = msg.raw_message
        messaging.check_envelope(raw, command)
        await db.retrying(
            lambda: consolidator.link_person(
                command, publisher=raw.user_id or "", centre=settings.unit_user("pusat")
            ),
            what="person link",
        )

    return router

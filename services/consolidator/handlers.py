"""Translates broker messages to consolidator decisions and back."""

from __future__ import annotations

from faststream.rabbit import RabbitRouter
from faststream.rabbit.annotations import RabbitMessage

from shared import db, messaging
from shared.contracts import CentralInmatesUpdated, SdpRecordsChecked, derive_message_id
from shared.runtime import Clock, utcnow

from .config import Settings
from .store import InmateStore, Totals


def build_router(store: InmateStore, settings: Settings, *, clock: Clock = utcnow) -> RabbitRouter:
    router = RabbitRouter()

    @router.subscriber(
        messaging.CONSOLIDATOR_SDP.subscribe_to(),
        messaging.EVENTS,
        title="consolidator.sdp",
        ack_policy=messaging.ACK_POLICY,
        description="Checked SDP records, upserted into the central inmate records.",
    )
    async def on_sdp_records_checked(checked: SdpRecordsChecked, msg: RabbitMessage) -> None:
        raw = msg.raw_message
        messaging.check_envelope(raw, checked)
        messaging.require_publisher(raw, settings.service_user("dedup"))
        now = clock()

        def announce(totals: Totals, version: int) -> list[db.Outgoing]:
            return [
                db.Outgoing(
                    "events",
                    CentralInmatesUpdated.ROUTING_KEY,
                    CentralInmatesUpdated(
                        message_id=derive_message_id("consolidator", "inmates", checked.message_id, upt_id),
                        produced_at=now,
                        submission_id=checked.submission_id,
                        upt_id=upt_id,
                        as_of=checked.as_of,
                        upserted=len(checked.records) if upt_id == checked.upt_id else 0,
                        version=version,
                        central_total=total,
                        flagged_total=flagged,
                    ),
                )
                for upt_id, total, flagged in totals
            ]

        await db.retrying(lambda: store.consolidate(checked, announce), what="consolidate part")

    return router

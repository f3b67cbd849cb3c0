"""Translates status events and dead letters into the monitor's view, and pushes changes to browsers."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from faststream.rabbit import RabbitRouter
from faststream.rabbit.annotations import RabbitMessage

from shared import db, messaging
from shared.contracts import (
    WIB,
    CentralInmatesUpdated,
    NikCollisionsFound,
    PacketStatusChanged,
    SubmissionProcessed,
    derive_message_id,
)
from shared.runtime import Clock, utcnow

from . import domain
from .config import Settings
from .hub import Hub
from .store import DeadLetterSeen, MonitorStore

log = logging.getLogger("simpul.monitor")
PUSAT = domain.Scope(domain.Role.PUSAT, "pusat")


def _text(value: Any) -> str | None:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return None if value is None else str(value)


def dead_letter_of(raw: Any) -> DeadLetterSeen:
    """Reads the reason from our own dead-letter headers, or from the broker's x-death record."""
    headers = raw.headers or {}
    deaths = headers.get("x-death") or []
    death = deaths[0] if deaths and isinstance(deaths[0], dict) else {}
    reason = _text(headers.get("x-dead-reason"))
    if reason is None:
        broker_reason = _text(death.get("reason")) or "unknown"
        reason = "DELIVERY_LIMIT" if broker_reason == "delivery_limit" else f"BROKER_{broker_reason.upper()}"
    message_id = (
        _text(headers.get("x-original-message-id")) or raw.message_id or derive_message_id("dead", raw.body)
    )
    return DeadLetterSeen(
        message_id=message_id,
        reason=reason,
        detail=_text(headers.get("x-dead-detail")),
        service=_text(headers.get("x-dead-service")),
        queue=_text(headers.get("x-dead-queue")) or _text(death.get("queue")),
        routing_key=_text(headers.get("x-original-routing-key")) or raw.routing_key,
        sender=_text(headers.get("x-original-user-id")) or raw.user_id,
    )


def build_router(store: MonitorStore, hub: Hub, settings: Settings, *, clock: Clock = utcnow) -> RabbitRouter:
    router = RabbitRouter()
    publishers = {settings.service_user(s) for s in ("registry", "dedup", "consolidator")}

    async def push_unit(upt_id: str, day: Any) -> None:
        for row in await store.unit_rows(PUSAT, day, upt_id):
            hub.publish(
                {"type": "unit", "day": day.isoformat(), "row": domain.unit_row(row)},
                unit_id=upt_id,
                kanwil_id=row["kanwil_id"],
            )

    async def push_office(kabkota: str, day: Any) -> None:
        for office, counts, refused in await store.office_rows(PUSAT, day, f"dukcapil-{kabkota}"):
            hub.publish(
                {"type": "ektp", "day": day.isoformat(), "row": domain.office_row(office, counts, refused)},
                unit_id=office["unit_id"],
            )

    @router.subscriber(
        messaging.MONITOR_STATUS.subscribe_to(),
        messaging.EVENTS,
        title="monitor.status",
        ack_policy=messaging.ACK_POLICY,
        description="Status events of every service (status.#).",
    )
    async def on_status(body: dict[str, Any], msg: RabbitMessage) -> None:
        raw = msg.raw_message
        messaging.check_envelope(raw, None)
        messaging.require_publisher(raw, *publishers)
        key = raw.routing_key or ""
        if key == SubmissionProcessed.ROUTING_KEY:
            event = SubmissionProcessed.model_validate(body)
            messaging.check_envelope(raw, event)
            day = event.as_of or domain.today_wib(event.produced_at)
            if await db.retrying(lambda: store.submission_processed(event, day), what="submission status"):
                await push_unit(event.upt_id, day)
        elif key == CentralInmatesUpdated.ROUTING_KEY:
            central = CentralInmatesUpdated.model_validate(body)
            messaging.check_envelope(raw, central)
            if await db.retrying(lambda: store.central_updated(central), what="central status"):
                await push_unit(central.upt_id, domain.today_wib(clock()))
                if central.as_of != domain.today_wib(clock()):
                    await push_unit(central.upt_id, central.as_of)
        elif key == PacketStatusChanged.ROUTING_KEY:
            change = PacketStatusChanged.model_validate(body)
            messaging.check_envelope(raw, change)
            day = domain.today_wib(change.produced_at)
            if await db.retrying(lambda: store.capture_changed(change, day), what="capture status"):
                await push_office(change.kabkota, day)
        elif key == NikCollisionsFound.ROUTING_KEY:
            found = NikCollisionsFound.model_validate(body)
            hub.publish(
                {"type": "collisions", "upt_id": found.upt_id, "flagged_records": found.flagged_records},
                unit_id=found.upt_id,
                kanwil_id=await store.kanwil_of(found.upt_id),
            )
        else:
            log.debug("status event of a kind this monitor does not show", extra={"routing_key": key})

    @router.subscriber(
        messaging.MONITOR_DEAD.subscribe_to(),
        messaging.DEAD,
        title="monitor.dead",
        ack_policy=messaging.ACK_POLICY,
        description="Every dead-lettered message (counted, never shown in full).",
        decoder=messaging.raw_body,
    )
    async def on_dead_letter(msg: RabbitMessage) -> None:
        letter = dead_letter_of(msg.raw_message)
        if await db.retrying(lambda: store.dead_letter(letter), what="dead letter"):
            since = datetime.combine(domain.today_wib(clock()), datetime.min.time(), tzinfo=WIB)
            count = await store.dead_letter_count(since)
            hub.publish({"type": "dead_letters", "today": count, "reason": letter.reason})

    return router

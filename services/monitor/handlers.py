"""Translates status events and dead letters to the monitor's use cases: parse, check the sender, call, ack."""

from __future__ import annotations

import logging
from typing import Any

from faststream.rabbit import RabbitRouter
from faststream.rabbit.annotations import RabbitMessage

from shared import db, messaging
from shared.contracts import (
    AdjudicationCaseChanged,
    CentralInmatesUpdated,
    ConsolidationRunReported,
    NikCollisionsFound,
    PacketStatusChanged,
    RunLineReported,
    RunState,
    SubmissionProcessed,
    derive_message_id,
)

from .config import Settings
from .store import DeadLetterSeen
from .usecases import Monitor

log = logging.getLogger("simpul.monitor")


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


def build_router(monitor: Monitor, settings: Settings) -> RabbitRouter:
    router = RabbitRouter()
    # (the monitor hears its own alerts on status.alert.*: believed, and shown by no handler here)
    services = {settings.service_user(s): s for s in ("registry", "dedup", "consolidator", "monitor")}
    publishers = set(services)

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
        await db.retrying(lambda: monitor.heard_from(services[raw.user_id or ""]), what="service seen")
        key = raw.routing_key or ""
        kind = STATUS_EVENTS.get(key)
        if kind is None:
            log.debug("status event of a kind this monitor does not show", extra={"routing_key": key})
            return
        event = kind.model_validate(body)
        messaging.check_envelope(raw, event)
        await db.retrying(lambda: record(monitor, event), what=key)

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
        await db.retrying(lambda: monitor.record_dead_letter(letter), what="dead letter")

    return router


StatusEvent = (
    SubmissionProcessed
    | CentralInmatesUpdated
    | PacketStatusChanged
    | NikCollisionsFound
    | ConsolidationRunReported
    | RunLineReported
    | AdjudicationCaseChanged
)
STATUS_EVENTS: dict[str, type[StatusEvent]] = {
    **{
        k.ROUTING_KEY: k
        for k in (SubmissionProcessed, CentralInmatesUpdated, PacketStatusChanged, NikCollisionsFound)
    },
    **{
        ConsolidationRunReported.ROUTING_KEY.format(state=s.value): ConsolidationRunReported for s in RunState
    },
    RunLineReported.ROUTING_KEY: RunLineReported,
    AdjudicationCaseChanged.ROUTING_KEY: AdjudicationCaseChanged,
}


async def record(monitor: Monitor, event: StatusEvent) -> None:
    match event:
        case SubmissionProcessed():
            await monitor.record_submission(event)
        case CentralInmatesUpdated():
            await monitor.record_central_totals(event)
        case PacketStatusChanged():
            await monitor.record_capture_change(event)
        case NikCollisionsFound():
            await monitor.record_collisions(event)
        case ConsolidationRunReported():
            await monitor.record_run(event)
        case RunLineReported():
            await monitor.record_run_line(event)
        case AdjudicationCaseChanged():
            await monitor.record_case(event)

"""The monitor's decisions as messages: its alerts (events and live events) and the desk's adjudication commands."""

from __future__ import annotations

from datetime import datetime

from shared import db
from shared.contracts import AdjudicationDecision, AlertChanged, derive_message_id

from .domain.alerts import Alert
from .domain.cases import DecisionRequest
from .domain.live import LiveEvent


def alert_message(alert: Alert, state: str, now: datetime) -> db.Outgoing:
    message = AlertChanged(
        message_id=derive_message_id("monitor", "alert", alert.key, state, now.isoformat()),
        produced_at=now, key=alert.key, kind=alert.kind, state="opened" if state == "opened" else "closed",
        severity="critical" if alert.severity == "critical" else "warning", text_id=alert.text_id,
        text_en=alert.text_en, unit_id=alert.unit_id,
    )  # fmt: skip
    return db.Outgoing("events", AlertChanged.ROUTING_KEY.format(kind=alert.kind), message)


def alert_event(alert: Alert, state: str) -> LiveEvent:
    payload = {
        "key": alert.key, "kind": alert.kind, "state": state, "severity": alert.severity,
        "text_id": alert.text_id, "text_en": alert.text_en, "unit_id": alert.unit_id,
    }  # fmt: skip
    return LiveEvent("alert", payload, alert.unit_id, alert.kanwil_id, alert.centre_only)


def decision_command(r: DecisionRequest, now: datetime) -> db.Outgoing:
    command = AdjudicationDecision(
        message_id=derive_message_id("monitor", "adjudication", r.kabkota, r.packet_id, r.operator, now.isoformat()),
        produced_at=now, kabkota=r.kabkota, packet_id=r.packet_id, decision="unique" if r.decision == "unique"
        else "duplicate", operator=r.operator, reason=r.reason,
    )  # fmt: skip
    return db.Outgoing("commands", AdjudicationDecision.ROUTING_KEY, command)

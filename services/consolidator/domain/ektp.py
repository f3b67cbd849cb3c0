"""A capture's central history: the registry's status moves and dedup's finding, in time order."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from shared.contracts import EnrolmentVerdict, PacketStatusChanged
from shared.ektp import EktpStatus

from . import codes

S = EktpStatus
# Statuses a capture passes before the centre hears of it: a history starting elsewhere missed its arrival.
REGIONAL = frozenset({S.UNREGISTERED, S.BIO_CAPTURED, S.PROCESSING, S.SENT_FOR_ENROLLMENT})
# From here on the NIK is the person's, unique after the 1:N search: the capture makes a central person.
HOLDS_IDENTITY = frozenset(
    {S.PRINT_READY_RECORD, S.SENT_FOR_CARD_PRINTING, S.CARD_PRINTED, S.CARD_SHIPPED, S.CARD_ISSUED}
)


@dataclass(frozen=True)
class CaptureState:
    kabkota: str
    packet_id: str
    status: str | None
    status_at: datetime | None
    nik: str | None
    person_id: int | None
    anomalies: tuple[str, ...] = ()


@dataclass(frozen=True)
class Move:
    seq: int
    from_status: str
    to_status: str
    at: datetime
    code: str | None
    implied: bool
    out_of_order: bool


@dataclass(frozen=True)
class CaptureDecision:
    """The capture after a message, the moves to add to its history, and whether it makes a person."""

    state: CaptureState
    moves: tuple[Move, ...] = ()
    source: str = "registry"
    finding: str | None = None
    verdict: dict[str, Any] | None = None
    needs_person: bool = False  # create the NIK's person if it does not exist yet
    changed: bool = False


def _needs_person(state: CaptureState) -> bool:
    return state.nik is not None and state.status in HOLDS_IDENTITY


def decide_status_change(state: CaptureState | None, change: PacketStatusChanged) -> CaptureDecision | None:
    """Moves are kept even when they arrive late (flagged, in time order); the current status is the one
    of the latest move by time. None when the message carries nothing to keep (a refusal, no capture)."""
    if change.packet_id is None or not change.moves:
        return None
    current = state or CaptureState(change.kabkota, change.packet_id, None, None, None, None)
    anomalies = list(current.anomalies)
    moves = []
    status, status_at = current.status, current.status_at
    for seq, m in enumerate(change.moves):
        late = status_at is not None and m.at < status_at
        if late:
            anomalies.append(f"{codes.STATUS_OUT_OF_ORDER.code}:{m.to_status.value}")
        elif status is None and m.from_status not in REGIONAL:
            anomalies.append(f"{codes.CAPTURE_UNKNOWN.code}:{m.from_status.value}")
        elif status is not None and m.from_status != status:
            anomalies.append(f"{codes.STATUS_GAP.code}:{status}->{m.from_status.value}")
        moves.append(Move(seq, m.from_status.value, m.to_status.value, m.at, m.code, m.implied, late))
        if not late:
            status, status_at = m.to_status.value, m.at
    after = replace(current, status=status, status_at=status_at, anomalies=tuple(dict.fromkeys(anomalies)))
    return CaptureDecision(after, tuple(moves), needs_person=_needs_person(after), changed=True)


def decide_verdict(state: CaptureState | None, verdict: EnrolmentVerdict) -> CaptureDecision:
    """Dedup's finding and evidence join the capture (its status moves come from the registry's events,
    which carry the same verdict as a move); a unique capture's NIK makes a central person."""
    current = state or CaptureState(verdict.kabkota, verdict.packet_id, None, None, None, None)
    after = replace(current, nik=verdict.nik)
    evidence = {
        "status": verdict.status.value,
        "finding": verdict.finding,
        "gallery_size": verdict.gallery_size,
        "duplicate_threshold": verdict.duplicate_threshold,
        "adjudicate_threshold": verdict.adjudicate_threshold,
        "decided_at": verdict.decided_at.isoformat(),
        "candidates": [
            {"nik": c.nik, "llr": c.llr, "modalities": c.modalities} for c in verdict.candidates[:10]
        ],
    }
    needs = _needs_person(after) or verdict.status == S.PRINT_READY_RECORD
    return CaptureDecision(
        after, source="dedup", finding=verdict.finding, verdict=evidence, needs_person=needs, changed=True
    )

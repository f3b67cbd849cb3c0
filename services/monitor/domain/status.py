"""What the monitor keeps of each status event: pure decisions, no I/O."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from shared.contracts import PacketStatusChanged, SubmissionProcessed
from shared.ektp import EktpStatus

from .pipeline import VERDICTS, WAITING_I
from .views import today_wib


@dataclass(frozen=True)
class PartSeen:
    """The registry's verdict on one part of a UPT's snapshot (the latest copy of a part wins)."""

    upt_id: str
    day: date
    snapshot: int
    part: int
    parts: int
    status: str
    received: int
    accepted: int
    rejected: int
    warnings: int
    received_at: datetime
    lateness: str | None


@dataclass(frozen=True)
class RefusalSeen:
    """A message refused as a whole (unreadable, another unit's, superseded): counted, part of no snapshot."""

    unit_id: str
    day: date


def decide_submission(event: SubmissionProcessed) -> PartSeen | RefusalSeen:
    day = event.as_of or today_wib(event.produced_at)
    if event.snapshot_state is None or event.as_of is None or event.part is None:
        return RefusalSeen(event.upt_id, day)
    return PartSeen(
        upt_id=event.upt_id, day=day, snapshot=event.snapshot or 1, part=event.part,
        parts=event.parts or event.part, status=event.status.value, received=event.received,
        accepted=event.accepted, rejected=event.rejected, warnings=event.warnings,
        received_at=event.produced_at, lateness=event.lateness.value if event.lateness else None,
    )  # fmt: skip


@dataclass(frozen=True)
class CaptureSeen:
    """A capture's latest status (messages about one capture can overtake each other: the latest move wins)."""

    kabkota: str
    packet_id: str
    status: str
    changed_at: datetime
    # When it entered the statuses that bound the centre's two critical times (the first time, if it did again).
    sent_at: datetime | None = None
    received_at: datetime | None = None
    verdict_at: datetime | None = None
    code: str | None = None  # why its last move happened, for a failure or a refusal
    nik_masked: str | None = None  # as the registry masked it


@dataclass(frozen=True)
class CaptureDecision:
    day: date
    capture: CaptureSeen | None
    refused: RefusalSeen | None


def decide_capture(event: PacketStatusChanged) -> CaptureDecision:
    day = today_wib(event.produced_at)
    capture = None
    if event.packet_id and event.status and event.moves:

        def first(statuses: frozenset[EktpStatus]) -> datetime | None:
            return min((m.at for m in event.moves if m.to_status in statuses), default=None)

        capture = CaptureSeen(
            event.kabkota, event.packet_id, event.status.value, event.moves[-1].at,
            sent_at=first(WAITING_I), received_at=first(frozenset({EktpStatus.RECEIVED_AT_CENTRAL})),
            verdict_at=first(VERDICTS), code=next((m.code for m in reversed(event.moves) if m.code), None),
            nik_masked=event.nik_masked,
        )  # fmt: skip
    return CaptureDecision(day, capture, RefusalSeen(event.kabkota, day) if event.refused else None)

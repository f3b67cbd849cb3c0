"""The e-KTP pipeline as a supervisor reads it: how long captures take through the centre's two critical
times, which are stuck, and the backlogs. Pure functions over the captures' milestones."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from shared.ektp import EktpStatus as S

# Critical time I: sent by the region until received at the centre. II: received until the centre's verdict.
WAITING_I = frozenset({S.SENT_FOR_ENROLLMENT})
WAITING_II = frozenset({S.RECEIVED_AT_CENTRAL, S.PACKET_RETRY, S.SENT_FOR_DEDUP})
VERDICTS = frozenset({
    S.DUPLICATE_RECORD, S.ADJUDICATE_RECORD, S.REQUEST_VALIDATION, S.PRINT_READY_RECORD,
    S.ENROLL_FAILURE_AT_CENTRAL, S.ENROLL_FAILURE_AT_REGIONAL, S.SEARCH_FAILURE_AT_CENTRAL,
})  # fmt: skip
# Captures a supervisor follows however long ago they last moved: waiting, or in a backlog.
OPEN_STATUSES = frozenset(
    {str(x) for x in (*WAITING_I, *WAITING_II, S.ADJUDICATE_RECORD, S.PRINT_READY_RECORD)}
)
# Age buckets (upper bounds) a histogram counts into; the last one is open.
BUCKETS: tuple[tuple[str, timedelta | None], ...] = (
    ("< 1 jam", timedelta(hours=1)),
    ("1–6 jam", timedelta(hours=6)),
    ("6–24 jam", timedelta(hours=24)),
    ("1–3 hari", timedelta(days=3)),
    ("> 3 hari", None),
)


@dataclass(frozen=True)
class CaptureTimes:
    kabkota: str
    packet_id: str
    status: str
    changed_at: datetime
    sent_at: datetime | None
    received_at: datetime | None
    verdict_at: datetime | None
    code: str | None
    nik_masked: str | None = None


@dataclass(frozen=True)
class Stuck:
    kabkota: str
    packet_id: str
    status: str
    phase: str  # "I" or "II"
    since: datetime
    hours: float
    reason: str  # the last move's code, or what the capture waits for
    nik_masked: str | None = None


@dataclass
class Pipeline:
    waiting_i: list[int] = field(default_factory=lambda: [0] * len(BUCKETS))
    waiting_ii: list[int] = field(default_factory=lambda: [0] * len(BUCKETS))
    took_i: list[int] = field(default_factory=lambda: [0] * len(BUCKETS))
    took_ii: list[int] = field(default_factory=lambda: [0] * len(BUCKETS))
    statuses: dict[str, int] = field(default_factory=dict)
    stuck: list[Stuck] = field(default_factory=list)
    stuck_total: int = 0
    adjudication_backlog: int = 0
    print_backlog: int = 0

    def as_dict(self) -> dict[str, object]:
        return {
            "buckets": [label for label, _ in BUCKETS],
            "waiting_i": self.waiting_i, "waiting_ii": self.waiting_ii,
            "took_i": self.took_i, "took_ii": self.took_ii,
            "statuses": self.statuses, "adjudication_backlog": self.adjudication_backlog,
            "print_backlog": self.print_backlog, "stuck_total": self.stuck_total,
            "stuck": [
                {"kabkota": s.kabkota, "packet_id": s.packet_id, "nik_masked": s.nik_masked, "status": s.status,
                 "phase": s.phase,
                 "since": s.since.isoformat(), "hours": round(s.hours, 1), "reason": s.reason}
                for s in self.stuck
            ],
        }  # fmt: skip


def bucket(age: timedelta) -> int:
    for i, (_, upper) in enumerate(BUCKETS):
        if upper is None or age < upper:
            return i
    return len(BUCKETS) - 1


def summarise(
    captures: Iterable[CaptureTimes],
    now: datetime,
    *,
    stuck_after: timedelta,
    recent: timedelta,
    limit: int = 200,
) -> Pipeline:
    """Histograms of the captures waiting in each critical time (by age) and of those that went through it in the
    `recent` past (by how long it took); the stuck ones (waiting longer than `stuck_after`), oldest first."""
    out = Pipeline()
    stuck: list[Stuck] = []
    for c in captures:
        out.statuses[c.status] = out.statuses.get(c.status, 0) + 1
        status = S(c.status)
        out.adjudication_backlog += status is S.ADJUDICATE_RECORD
        out.print_backlog += status is S.PRINT_READY_RECORD
        if c.sent_at and c.received_at and now - c.received_at < recent:
            out.took_i[bucket(c.received_at - c.sent_at)] += 1
        if c.received_at and c.verdict_at and now - c.verdict_at < recent:
            out.took_ii[bucket(c.verdict_at - c.received_at)] += 1
        phase, since = None, None
        if status in WAITING_I:
            phase, since = "I", c.sent_at or c.changed_at
            out.waiting_i[bucket(now - since)] += 1
        elif status in WAITING_II:
            phase, since = "II", c.received_at or c.changed_at
            out.waiting_ii[bucket(now - since)] += 1
        if phase is not None and since is not None and now - since > stuck_after:
            reason = c.code or ("menunggu diterima pusat" if phase == "I" else "menunggu keputusan pusat")
            hours = (now - since).total_seconds() / 3600
            stuck.append(Stuck(c.kabkota, c.packet_id, c.status, phase, since, hours, reason, c.nik_masked))
    stuck.sort(key=lambda s: (s.since, s.kabkota, s.packet_id))
    out.stuck, out.stuck_total = stuck[:limit], len(stuck)
    # a funnel: the statuses in the order a capture passes them (the e-KTP status machine's), not by count
    place = {s.value: n for n, s in enumerate(S)}
    out.statuses = dict(sorted(out.statuses.items(), key=lambda kv: place.get(kv[0], len(place))))
    return out

"""Alerts: conditions a supervisor must not have to look for. Pure rules over what the monitor already knows;
an alert keeps its key while its condition holds, so it opens once and closes once."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, time

from shared.contracts import WIB

from .operations import QueueState, ServiceState


@dataclass(frozen=True)
class AlertPolicy:
    deadline: time = time(14, 0)  # WIB: a UPT that sent nothing of the day by then is silent
    stuck_captures: int = 10  # an office with more captures stuck than this
    stuck_spike: int = 5  # an office with more captures than this that became stuck within the last hour
    dead_letters: int = 20  # dead letters within the recent window


@dataclass(frozen=True)
class Alert:
    key: str
    kind: str
    severity: str  # warning or critical
    text_id: str
    text_en: str
    unit_id: str | None = None
    kanwil_id: str | None = None
    centre_only: bool = False


@dataclass(frozen=True)
class UnitDay:
    upt_id: str
    kanwil_id: str
    name: str
    sent: bool
    overstaying: int = 0  # in the day's latest finished run


@dataclass(frozen=True)
class Watched:
    now: datetime
    units: Sequence[UnitDay] = ()
    stuck_by_office: dict[str, int] = field(default_factory=dict)
    newly_stuck_by_office: dict[str, int] = field(default_factory=dict)  # stuck for less than an hour
    dead_letters_recent: int = 0
    services: Sequence[ServiceState] = ()
    queues: Sequence[QueueState] = ()


def decide_alerts(w: Watched, policy: AlertPolicy) -> list[Alert]:
    local = w.now.astimezone(WIB)
    day = local.date().isoformat()
    out: list[Alert] = []
    if local.time() >= policy.deadline:
        out += [
            Alert(f"upt_silent:{u.upt_id}:{day}", "upt_silent", "warning",
                  f"{u.name} belum mengirim data SDP {day} (batas {policy.deadline:%H:%M} WIB)",
                  f"{u.name} has sent no SDP data for {day} (deadline {policy.deadline:%H:%M} WIB)",
                  u.upt_id, u.kanwil_id)
            for u in w.units if not u.sent
        ]  # fmt: skip
    out += [
        Alert(f"overstaying:{u.upt_id}:{day}", "overstaying", "critical",
              f"{u.name}: {u.overstaying} tahanan melebihi masa penahanan", f"{u.name}: {u.overstaying} detainees "
              "held past their authorised detention", u.upt_id, u.kanwil_id)
        for u in w.units if u.overstaying > 0
    ]  # fmt: skip
    out += [
        Alert(f"stuck_captures:{office}", "stuck_captures", "warning",
              f"{office}: {n} perekaman e-KTP macet", f"{office}: {n} e-KTP captures stuck", office)
        for office, n in sorted(w.stuck_by_office.items()) if n > policy.stuck_captures
    ]  # fmt: skip
    out += [
        Alert(f"stuck_spike:{office}", "stuck_spike", "critical",
              f"{office}: {n} perekaman e-KTP baru macet dalam satu jam terakhir",
              f"{office}: {n} e-KTP captures became stuck within the last hour", office)
        for office, n in sorted(w.newly_stuck_by_office.items()) if n > policy.stuck_spike
    ]  # fmt: skip
    if w.dead_letters_recent > policy.dead_letters:
        out.append(Alert("dead_letters", "dead_letters", "warning",
                         f"{w.dead_letters_recent} pesan mati dalam 15 menit terakhir",
                         f"{w.dead_letters_recent} dead letters in the last 15 minutes", centre_only=True))  # fmt: skip
    out += [
        Alert(f"service_quiet:{s.name}", "service_quiet", "critical",
              f"Layanan {s.name} diam ({'tanpa konsumen' if not s.consuming else f'{s.waiting} pesan menunggu'})",
              f"Service {s.name} is quiet ({'no consumer' if not s.consuming else f'{s.waiting} messages wait'})",
              centre_only=True)
        for s in w.services if s.quiet
    ]  # fmt: skip
    out += [
        Alert(f"queue_unconsumed:{q.name}", "queue_unconsumed", "critical",
              f"Antrean {q.name} bertambah tanpa konsumen ({q.messages} pesan)",
              f"Queue {q.name} grows without a consumer ({q.messages} messages)", centre_only=True)
        for q in w.queues if q.state == "growing_without_consumer"
    ]  # fmt: skip
    return out


def decide_changes(open_keys: Iterable[str], current: Sequence[Alert]) -> tuple[list[Alert], list[str]]:
    """(alerts to open: not open yet; keys to close: open, and their condition no longer holds)."""
    known = set(open_keys)
    now = {a.key for a in current}
    return [a for a in current if a.key not in known], sorted(known - now)

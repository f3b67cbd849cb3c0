"""A run's report as data: one line per UPT, the lists behind the figures, and their sums per Kanwil and nation."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import date, datetime
from typing import Any

# The counted columns of a UPT line, in report order; Kanwil and national lines sum them.
COUNTS = (
    "received",
    "accepted",
    "refused",
    "warnings",
    "inmates",
    "previous",
    "admissions",
    "releases",
    "transfers_in",
    "transfers_out",
    "in_transit",
    "dual_custody",
    "overstaying",
    "notices",
    "without_ektp",
)
# The kinds of listed items a run keeps (run_items.kind).
ITEM_KINDS = (
    "overstaying",
    "notice_3",
    "notice_10",
    "dual_custody",
    "transfer",
    "release",
    "in_transit",
    "without_ektp",
    "held",
)


@dataclass(frozen=True)
class UptLine:
    """One UPT on the run's day. `applied`: applied, held (shrunken), unchanged (nothing newer), not_sent."""

    upt_id: str
    upt_name: str
    kanwil_id: str
    kanwil_name: str
    sent: bool
    complete: bool
    lateness: str | None  # on_time, after_10, after_14 (registry's deadlines), None when not sent
    snapshot: int | None
    applied: str
    received: int = 0
    accepted: int = 0
    refused: int = 0
    warnings: int = 0
    inmates: int = 0  # in custody centrally after the run
    previous: int = 0  # in custody centrally before the run
    admissions: int = 0
    releases: int = 0
    transfers_in: int = 0
    transfers_out: int = 0
    in_transit: int = 0
    dual_custody: int = 0
    overstaying: int = 0
    notices: int = 0
    without_ektp: int = 0

    def counts(self) -> dict[str, int]:
        return {name: int(getattr(self, name)) for name in COUNTS}


@dataclass(frozen=True)
class Item:
    """One inmate behind a figure (an overstayer, a transfer, a work-list entry...); `detail` is plain JSON."""

    kind: str
    upt_id: str
    inmate_id: str
    detail: Mapping[str, Any]


@dataclass(frozen=True)
class Totals:
    """Sums over a group of UPTs, with how many sent, completed, were late or sent nothing."""

    upts: int
    sent: int
    complete: int
    late_10: int
    late_14: int
    not_sent: int
    held: int
    counts: Mapping[str, int]

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "counts"} | dict(self.counts)


@dataclass(frozen=True)
class RunReport:
    run_id: str
    day: date
    trigger: str
    requested_by: str
    reason: str
    started_at: datetime
    finished_at: datetime | None
    lines: Sequence[UptLine]
    items: Sequence[Item]


def totals(lines: Iterable[UptLine]) -> Totals:
    lines = list(lines)
    return Totals(
        upts=len(lines),
        sent=sum(line.sent for line in lines),
        complete=sum(line.complete for line in lines),
        late_10=sum(line.lateness == "after_10" for line in lines),
        late_14=sum(line.lateness == "after_14" for line in lines),
        not_sent=sum(not line.sent for line in lines),
        held=sum(line.applied == "held" for line in lines),
        counts={name: sum(line.counts()[name] for line in lines) for name in COUNTS},
    )


def by_kanwil(lines: Iterable[UptLine]) -> list[tuple[str, str, Totals]]:
    """(kanwil_id, kanwil_name, totals) per Kanwil, in kanwil_id order."""
    groups: dict[tuple[str, str], list[UptLine]] = {}
    for line in lines:
        groups.setdefault((line.kanwil_id, line.kanwil_name), []).append(line)
    return [(k, name, totals(group)) for (k, name), group in sorted(groups.items())]

"""The centre's consolidation runs as supervisors follow them: what each run event leaves, each login's view."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from shared.contracts import ConsolidationRunReported, RunLineReported

from . import views

FINAL = frozenset({"finished", "failed"})
FIGURES = (
    "received", "accepted", "refused", "warnings", "inmates", "previous", "admissions", "releases", "transfers_in",
    "transfers_out", "in_transit", "dual_custody", "overstaying", "notices", "without_ektp",
)  # fmt: skip


@dataclass(frozen=True)
class RunSeen:
    """A run as its latest event says. Events can overtake each other: the store keeps the one furthest on
    (a final state, else the most steps done), never an earlier one over it."""

    run_id: str
    day: date | None
    state: str
    trigger: str
    requested_by: str | None
    step: str | None
    steps_done: int
    steps_total: int
    code: str | None
    reason: str | None
    summary: dict[str, Any] | None
    at: datetime

    @property
    def rank(self) -> int:
        return 1_000 if self.state in FINAL else self.steps_done


def decide_run(event: ConsolidationRunReported) -> RunSeen:
    return RunSeen(
        run_id=event.run_id, day=event.day, state=event.state.value, trigger=event.trigger,
        requested_by=event.requested_by, step=event.step, steps_done=event.steps_done,
        steps_total=event.steps_total, code=event.code, reason=event.reason_id, summary=event.summary,
        at=event.produced_at,
    )  # fmt: skip


@dataclass(frozen=True)
class LineSeen:
    run_id: str
    upt_id: str
    sent: bool
    complete: bool
    lateness: str | None
    snapshot: int | None
    applied: str
    figures: dict[str, int]


def decide_line(event: RunLineReported) -> LineSeen:
    figures = {k: int(event.figures.get(k, 0)) for k in FIGURES}
    return LineSeen(
        event.run_id,
        event.upt_id,
        event.sent,
        event.complete,
        event.lateness,
        event.snapshot,
        event.applied,
        figures,
    )


def run_view(run: dict[str, Any]) -> dict[str, Any]:
    """A run as every SDP login may see it: its progress, not the national figures (the centre's alone)."""
    return {
        "run_id": run["run_id"], "day": run["day"].isoformat() if run["day"] else None, "state": run["state"],
        "trigger": run["trigger"], "requested_by": run["requested_by"], "step": run["step"],
        "steps_done": run["steps_done"], "steps_total": run["steps_total"], "code": run["code"],
        "reason": run["reason"], "started_at": run["started_at"].isoformat(),
        "updated_at": run["updated_at"].isoformat(),
    }  # fmt: skip


def totals(lines: list[dict[str, Any]]) -> dict[str, int]:
    """The figures summed over the lines a login sees (for the centre, the national figures)."""
    out = dict.fromkeys(FIGURES, 0)
    for line in lines:
        for k in FIGURES:
            out[k] += int(line["figures"].get(k, 0))
    out["upts"] = len(lines)
    out["upts_sent"] = sum(1 for line in lines if line["sent"])
    return out


def line_view(line: dict[str, Any]) -> dict[str, Any]:
    return {
        "upt_id": line["upt_id"], "name": line["name"], "kanwil_id": line["kanwil_id"],
        "kanwil_name": line["kanwil_name"], "sent": line["sent"], "complete": line["complete"],
        "lateness": line["lateness"], "snapshot": line["snapshot"], "applied": line["applied"],
        **{k: int(line["figures"].get(k, 0)) for k in FIGURES},
    }  # fmt: skip


LINE_COLUMNS = ("upt_id", "name", "kanwil_id", "sent", "complete", "lateness", "applied", *FIGURES)


def lines_csv(lines: list[dict[str, Any]]) -> str:
    """The report's lines as CSV, the same columns as the table (a name that a spreadsheet would read as a
    formula is quoted with an apostrophe)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(LINE_COLUMNS)
    for line in lines:
        writer.writerow([views.spreadsheet_safe(line.get(c)) for c in LINE_COLUMNS])
    return out.getvalue()

"""The centre's consolidation runs as supervisors follow them: what each run event leaves, each login's view."""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
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


BREAKDOWNS = (
    "overstaying_by_register", "notice_10_by_register", "notice_3_by_register", "without_ektp_by_reason",
    "without_ektp_by_nik_kabkota",
)  # fmt: skip
KEY_LIMIT = 40  # a register, a reason or a kab/kota code is far shorter


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
    breakdowns: dict[str, dict[str, int]]


def decide_line(event: RunLineReported) -> LineSeen:
    """Only the figures and breakdowns the monitor knows are kept: a message cannot add columns to a page."""
    figures = {k: int(event.figures.get(k, 0)) for k in FIGURES}
    breakdowns = {
        name: {key[:KEY_LIMIT]: int(n) for key, n in counts.items() if n > 0}
        for name, counts in event.breakdowns.items()
        if name in BREAKDOWNS
    }
    return LineSeen(
        event.run_id,
        event.upt_id,
        event.sent,
        event.complete,
        event.lateness,
        event.snapshot,
        event.applied,
        figures,
        breakdowns,
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


def breakdowns(
    lines: list[dict[str, Any]], kabkota_names: Mapping[str, str]
) -> dict[str, list[dict[str, Any]]]:
    """The lists behind the lines a login sees, counted: each breakdown as rows (key, label, count), largest
    first. Beside the consolidator's, the work list by the kab/kota where each UPT lies (from the lines)."""
    summed: dict[str, dict[str, int]] = {name: {} for name in BREAKDOWNS}
    upt_kabkota: dict[str, int] = {}
    for line in lines:
        for name, counts in (line.get("breakdowns") or {}).items():
            if name in summed:
                for key, n in counts.items():
                    summed[name][key] = summed[name].get(key, 0) + int(n)
        without = int(line["figures"].get("without_ektp", 0))
        if without:
            upt_kabkota[line["kabkota_code"]] = upt_kabkota.get(line["kabkota_code"], 0) + without
    summed["without_ektp_by_upt_kabkota"] = upt_kabkota

    def label(name: str, key: str) -> str:
        return kabkota_names.get(key, key) if name.endswith("_kabkota") else key

    return {
        name: [{"key": k, "label": label(name, k), "count": n}
               for k, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]
        for name, counts in summed.items()
    }  # fmt: skip


TREND_DAYS_MAX = 366
TREND_FIGURES = (
    "inmates",
    "admissions",
    "releases",
    "transfers_out",
    "overstaying",
    "notices",
    "without_ektp",
)


def trend(per_day: list[tuple[dict[str, Any], list[dict[str, Any]]]]) -> list[dict[str, Any]]:
    """Each day's last finished run, its figures summed over the lines the login sees, oldest day first."""
    out = []
    for run, lines in sorted(per_day, key=lambda rl: rl[0]["day"]):
        summed = totals(lines)
        out.append({"day": run["day"].isoformat(), "run_id": run["run_id"],
                    **{k: summed[k] for k in TREND_FIGURES}, "upts_sent": summed["upts_sent"]})  # fmt: skip
    return out


BREAKDOWN_COLUMNS = ("breakdown", "key", "label", "count")


def breakdowns_csv(counted: dict[str, list[dict[str, Any]]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(BREAKDOWN_COLUMNS)
    for name, rows in counted.items():
        for row in rows:
            writer.writerow([name, *(views.spreadsheet_safe(row[c]) for c in BREAKDOWN_COLUMNS[1:])])
    return out.getvalue()


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

"""The consolidator's decisions as messages: run events, the report's lines and the monitor's central totals."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

from shared import db
from shared.contracts import (
    CentralInmatesUpdated,
    ConsolidationRunReported,
    RunLineReported,
    RunState,
    derive_message_id,
)
from shared.problems import Problem

from .domain.report import UptLine
from .domain.runs import STEPS


def run_event(
    run_id: str,
    day: date | None,
    state: RunState,
    *,
    now: datetime,
    trigger: str = "command",
    requested_by: str | None = None,
    step: str | None = None,
    steps_done: int = 0,
    problem: Problem | None = None,
    detail: str = "",
    summary: Mapping[str, Any] | None = None,
    discriminator: str = "",
) -> db.Outgoing:
    """`consolidation.run.<state>`, its id derived from the run and step, so a resumed run repeats none."""
    event = ConsolidationRunReported(
        message_id=derive_message_id("consolidator", "run", run_id, state, step or "", discriminator),
        produced_at=now,
        run_id=run_id,
        day=day,
        state=state,
        trigger="schedule" if trigger == "schedule" else "command",
        requested_by=requested_by,
        step=step,
        steps_done=steps_done,
        steps_total=len(STEPS),
        code=problem.code if problem else None,
        reason_id=(problem.reason_id + (f" ({detail})" if detail else "")) if problem else None,
        reason_en=(problem.reason_en + (f" ({detail})" if detail else "")) if problem else None,
        summary=dict(summary) if summary is not None else None,
    )
    return db.Outgoing("events", ConsolidationRunReported.ROUTING_KEY.format(state=state.value), event)


def central_totals(
    run_id: str,
    day: date,
    totals: list[tuple[str, int, int]],
    upserted: Mapping[str, int],
    *,
    version: int,
    now: datetime,
) -> list[db.Outgoing]:
    """What the monitor shows per UPT after a run applied its snapshot."""
    return [
        db.Outgoing(
            "events",
            CentralInmatesUpdated.ROUTING_KEY,
            CentralInmatesUpdated(
                message_id=derive_message_id("consolidator", "central-totals", run_id, upt_id),
                produced_at=now,
                submission_id=run_id,
                upt_id=upt_id,
                as_of=day,
                upserted=upserted.get(upt_id, 0),
                version=version,
                central_total=total,
                flagged_total=flagged,
            ),
        )
        for upt_id, total, flagged in totals
    ]


def run_lines(
    run_id: str,
    day: date,
    lines: list[UptLine],
    breakdowns: Mapping[str, Mapping[str, dict[str, int]]],
    *,
    now: datetime,
) -> list[db.Outgoing]:
    """Each UPT's line of a finished run's report, for the monitor (which shows each login its own UPTs')."""
    return [
        db.Outgoing(
            "events",
            RunLineReported.ROUTING_KEY,
            RunLineReported(
                message_id=derive_message_id("consolidator", "run-line", run_id, line.upt_id),
                produced_at=now,
                run_id=run_id,
                day=day,
                upt_id=line.upt_id,
                sent=line.sent,
                complete=line.complete,
                lateness=line.lateness,
                snapshot=line.snapshot,
                applied=line.applied,
                figures=line.counts(),
                breakdowns={k: dict(v) for k, v in breakdowns.get(line.upt_id, {}).items()},
            ),
        )
        for line in lines
    ]

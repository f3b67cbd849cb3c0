"""One UPT's own page: its day (every part of every snapshot as the registry answered it), its last days and what
the consolidation runs found for it. Pure: counts from what the monitor holds, never a person."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

from . import runs

HISTORY_DAYS = 14  # the days the page looks back on, the chosen one included


PART_FIELDS = (
    "snapshot",
    "part",
    "parts",
    "status",
    "received",
    "accepted",
    "rejected",
    "warnings",
    "lateness",
)


def part_rows(parts: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The day's parts in order; a part of an older snapshot than the UPT's latest is `superseded` (the centre
    applies the latest complete snapshot only)."""
    latest = max((p["snapshot"] for p in parts), default=None)
    return [
        {k: p[k] for k in PART_FIELDS}
        | {"received_at": p["received_at"].isoformat(), "superseded": p["snapshot"] != latest}
        for p in parts
    ]


def history_row(day: date, row: dict[str, Any]) -> dict[str, Any]:
    """One past day as the overview showed it (`row` as views.unit_row gives it)."""
    keep = (
        "state",
        "lateness",
        "parts",
        "parts_received",
        "accepted",
        "rejected",
        "warnings",
        "refusal_rate",
    )
    return {"day": day.isoformat(), **{k: row[k] for k in keep}}


def run_row(run: dict[str, Any], line: dict[str, Any]) -> dict[str, Any]:
    """What a finished run found for the UPT (`line` as the store gives a report line)."""
    view = runs.line_view(line)
    return {
        "day": run["day"].isoformat(), "run_id": run["run_id"], "snapshot": view["snapshot"],
        "applied": view["applied"], **{k: view[k] for k in runs.FIGURES},
    }  # fmt: skip


def detail(
    row: dict[str, Any],
    day: date,
    parts: Sequence[dict[str, Any]],
    history: Sequence[tuple[date, dict[str, Any]]],
    found: Sequence[tuple[dict[str, Any], dict[str, Any]]],
    live_id: int,
) -> dict[str, Any]:
    """The page's JSON: the UPT's row for `day`, its parts, its last days (newest first) and its runs' lines
    (newest first); `live_id` is where the page's live updates follow on."""
    return {
        "day": day.isoformat(),
        "unit": row,
        "parts": part_rows(parts),
        "history": [history_row(d, r) for d, r in sorted(history, key=lambda h: h[0], reverse=True)],
        "runs": [run_row(r, line) for r, line in sorted(found, key=lambda f: f[0]["day"], reverse=True)],
        "live_id": live_id,
    }

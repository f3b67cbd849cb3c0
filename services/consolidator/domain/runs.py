"""The centre's daily run: who may start it, which snapshots it applies, and what a departure becomes."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Literal

from shared.contracts import WIB, ConsolidationRunRequested, derive_message_id
from shared.problems import Problem

from . import codes

# The run's steps, each committed with the step number, so a run killed between them resumes at the next.
# The central feed of the persons a run changed is written after it, in batches (store.feed_pending).
STEPS = ("lines", "apply", "movements", "report", "finish")


@dataclass(frozen=True)
class RunRequest:
    """A run to start (or to resume, if one with this id exists)."""

    run_id: str
    day: date
    trigger: Literal["command", "schedule"]
    requested_by: str
    reason: str
    accept: tuple[str, ...] = ()


@dataclass(frozen=True)
class Refusal:
    problem: Problem
    detail: str


@dataclass(frozen=True)
class RunPolicy:
    """The run's knobs (settings): how much a snapshot may shrink, the transfer window, how far back."""

    max_loss: float = 0.20
    transfer_window_days: int = 7
    keep_days: int = 30
    schedule: time | None = field(default=time(15, 0))


def run_id_for(day: date, trigger: str, source: str) -> str:
    """Stable: the same command (or the day's schedule) always names the same run."""
    return f"{day.isoformat()}-{trigger}-{derive_message_id('run', day, trigger, source)[:8]}"


def decide_run_request(
    command: ConsolidationRunRequested,
    *,
    from_centre: bool,
    today: date,
    policy: RunPolicy,
) -> RunRequest | Refusal:
    """Only the centre runs, only for a day that has happened and whose snapshots are still kept."""
    if not from_centre:
        return Refusal(codes.RUN_NOT_CENTRE, "the command was not published by the centre's user")
    if command.day > today:
        return Refusal(codes.RUN_DAY_IN_FUTURE, f"{command.day} is after today ({today}, WIB)")
    if command.day < today - timedelta(days=policy.keep_days):
        return Refusal(codes.RUN_DAY_TOO_OLD, f"snapshots are kept {policy.keep_days} days")
    return RunRequest(
        run_id=run_id_for(command.day, "command", command.message_id),
        day=command.day,
        trigger="command",
        requested_by=command.requested_by,
        reason=command.reason,
        accept=tuple(sorted(set(command.accept_shrunken))),
    )


def decide_scheduled_run(now: datetime, policy: RunPolicy, *, ran_today: bool) -> RunRequest | None:
    """The centre's schedule: once a day, at or after the configured time (WIB)."""
    if policy.schedule is None or ran_today:
        return None
    local = now.astimezone(WIB)
    if local.time() < policy.schedule:
        return None
    day = local.date()
    return RunRequest(
        run_id=run_id_for(day, "schedule", "schedule"),
        day=day,
        trigger="schedule",
        requested_by="jadwal pusat",
        reason=f"konsolidasi terjadwal {policy.schedule:%H:%M} WIB",
    )


def decide_snapshot(
    inmates: int, previous: int, *, max_loss: float, accepted: bool
) -> Literal["apply", "hold"]:
    """A snapshot that lost more than `max_loss` of the UPT's inmates is held until the centre accepts it
    or a newer complete snapshot arrives (a half-sent export must not release hundreds of people)."""
    if accepted or previous == 0:
        return "apply"
    return "hold" if inmates < previous * (1 - max_loss) else "apply"


def settled_state(current: str, implied: str) -> str:
    """The state an episode takes when its record is applied (steps.sql, settled_state in migration 0009): a
    departure already found to be a transfer or ended as a release stays so when the record says transferred
    out again; otherwise the state the record's custody status implies."""
    return current if implied == "departed" and current in ("transferred", "released") else implied


def classify_departure(
    departed_on: date, seen_elsewhere_on: date | None, day: date, window_days: int
) -> Literal["transfer", "in_transit", "release"]:
    """An inmate gone from a UPT's snapshot is a transfer if the same person is in custody in another UPT
    within the window (before or after the departure), in transit while the window lasts, then a release."""
    if seen_elsewhere_on is not None and abs((seen_elsewhere_on - departed_on).days) <= window_days:
        return "transfer"
    if (day - departed_on).days > window_days:
        return "release"
    return "in_transit"


@dataclass(frozen=True)
class IdentityDecision:
    """Which central person a UPT record belongs to. kind: new, same, set_nik (the person learns its NIK),
    merge (the person known by this record and the person holding the NIK are one: `merged` goes into
    `person`)."""

    kind: Literal["new", "same", "set_nik", "merge"]
    person: int | None
    merged: int | None = None


def decide_identity(
    linked: int | None, linked_nik: str | None, holder: int | None, nik: str | None
) -> IdentityDecision:
    """`linked`: the person this UPT record was attached to before (and its NIK); `holder`: the person
    holding the record's NIK now. Keyed by NIK where one is known, otherwise by the central id."""
    if linked is None:
        return IdentityDecision("same", holder) if holder is not None else IdentityDecision("new", None)
    if nik is None or nik == linked_nik or holder == linked:
        return IdentityDecision("same", linked)
    if holder is None:
        if linked_nik is None:
            return IdentityDecision("set_nik", linked)
        return IdentityDecision("new", None)  # the record now claims another NIK: that is someone else's
    if linked_nik is None:
        return IdentityDecision("merge", holder, merged=linked)
    return IdentityDecision("same", holder)

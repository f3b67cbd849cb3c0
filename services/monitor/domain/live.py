"""Live events: what each login may be shown, and how a reconnecting page picks up where it stopped."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .scope import Role, Scope

# A page further behind than this reloads its view rather than replaying every change it missed.
MAX_REPLAY = 5_000


@dataclass(frozen=True)
class LiveEvent:
    """One change a browser may be shown. Its id (from the monitor's event log, in commit order) is the SSE
    event id: the same on every monitor instance, so a page can resume on any of them."""

    kind: str  # unit, ektp, collisions, dead_letters, run
    payload: dict[str, Any] = field(default_factory=dict)
    unit_id: str | None = None  # the unit it is about; None: about no unit
    kanwil_id: str | None = None
    centre_only: bool = False
    id: int = 0

    def data(self) -> dict[str, Any]:
        return {"type": self.kind, "id": self.id, **self.payload}


# Events about the SDP side as a whole (a consolidation run's progress), for the prisons' logins: the centre,
# the Kanwil and the UPT, as /api/runs; a Dukcapil office sees its e-KTP pipeline only.
PRISONS_ONLY = frozenset({"run"})


def visible(event: LiveEvent, scope: Scope) -> bool:
    if event.centre_only:
        return scope.role is Role.PUSAT
    if event.kind in PRISONS_ONLY and scope.role is Role.DUKCAPIL:
        return False
    return event.unit_id is None or scope.sees(event.unit_id, event.kanwil_id)


@dataclass(frozen=True)
class Resume:
    """Replay what followed `after`; or, when that is no longer possible, tell the page to reload its view
    (then follow from `after`, the newest event)."""

    after: int
    reload: bool


def decide_resume(last_seen: int | None, oldest: int | None, newest: int) -> Resume:
    """`last_seen`: the page's Last-Event-ID (or the id its view was read at); `oldest`/`newest`: the log's."""
    if last_seen is None:
        return Resume(newest, reload=False)
    if last_seen > newest:  # an id this log never gave (the log was reset): the page's view is from elsewhere
        return Resume(newest, reload=True)
    if newest - last_seen > MAX_REPLAY or (oldest is not None and last_seen + 1 < oldest):
        return Resume(newest, reload=True)  # too far behind, or what it missed was pruned
    return Resume(last_seen, reload=False)

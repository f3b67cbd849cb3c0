"""Monitor rules: who may see which unit, and how a unit's day is summarised."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from shared.contracts import WIB


class Role(enum.StrEnum):
    PUSAT = "pusat"  # the centre: sees everything
    KANWIL = "kanwil"  # a regional office: watches its own UPTs
    UPT = "upt"  # a UPT: sees its own status


@dataclass(frozen=True)
class Scope:
    role: Role
    unit_id: str  # "pusat", a kanwil id or an upt id

    def sees(self, upt_id: str, kanwil_id: str) -> bool:
        if self.role is Role.PUSAT:
            return True
        if self.role is Role.KANWIL:
            return kanwil_id == self.unit_id
        return upt_id == self.unit_id


def scope_of_login(unit_id: str) -> Scope:
    """Monitor logins are provisioned per scope: `pusat`, `kanwil-<prov>` or an `upt-...` id."""
    if unit_id == "pusat":
        return Scope(Role.PUSAT, unit_id)
    if unit_id.startswith("kanwil-"):
        return Scope(Role.KANWIL, unit_id)
    return Scope(Role.UPT, unit_id)


def scope_label(scope: Scope, rows: list[dict[str, Any]]) -> str:
    """What the page header says the login watches."""
    if scope.role is Role.PUSAT:
        return "Pusat · seluruh UPT"
    if scope.role is Role.KANWIL:
        return next((r["kanwil_name"] for r in rows), scope.unit_id)
    return next((r["name"] for r in rows), scope.unit_id)


def today_wib(now: datetime) -> date:
    return now.astimezone(WIB).date()


def unit_row(row: dict[str, Any]) -> dict[str, Any]:
    """The JSON a browser gets for one UPT's day; never personal data, only counts."""
    parts, received_parts = row.get("parts"), row.get("parts_received") or 0
    if not received_parts:
        state = "missing"
    elif parts and received_parts >= parts:
        state = "complete"
    else:
        state = "partial"
    last = row.get("last_submission_at")
    return {
        "upt_id": row["upt_id"],
        "name": row["name"],
        "kanwil_id": row["kanwil_id"],
        "kanwil_name": row["kanwil_name"],
        "state": state,
        "parts": parts,
        "parts_received": received_parts,
        "received": row.get("received") or 0,
        "accepted": row.get("accepted") or 0,
        "rejected": row.get("rejected") or 0,
        "warnings": row.get("warnings") or 0,
        "refused_messages": row.get("refused_messages") or 0,
        "central_total": row.get("central_total") or 0,
        "flagged_total": row.get("flagged_total") or 0,
        "last_submission_at": last.isoformat() if isinstance(last, datetime) else None,
    }

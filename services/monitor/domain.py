"""Monitor rules: who may see which unit, and how a unit's day is summarised."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from shared.contracts import WIB


class Role(enum.StrEnum):
    PUSAT = "pusat"  # the centre: sees everything
    KANWIL = "kanwil"  # a Ditjenpas regional office: watches its own UPTs
    UPT = "upt"  # a UPT: sees its own status
    DUKCAPIL = "dukcapil"  # a kab/kota civil registry: watches its own e-KTP pipeline


@dataclass(frozen=True)
class Scope:
    role: Role
    unit_id: str  # "pusat", a kanwil id, an upt id or a dukcapil id

    def sees(self, unit_id: str, kanwil_id: str | None) -> bool:
        """Whether this login may see a unit (a UPT with its Kanwil, or a Dukcapil office with none)."""
        if self.role is Role.PUSAT:
            return True
        if self.role is Role.KANWIL:
            return kanwil_id == self.unit_id
        return unit_id == self.unit_id


def scope_of_login(unit_id: str) -> Scope:
    """Monitor logins are provisioned per scope: `pusat`, `kanwil-<prov>`, an `upt-...` or a `dukcapil-...` id."""
    if unit_id == "pusat":
        return Scope(Role.PUSAT, unit_id)
    for prefix, role in (("kanwil-", Role.KANWIL), ("dukcapil-", Role.DUKCAPIL)):
        if unit_id.startswith(prefix):
            return Scope(role, unit_id)
    return Scope(Role.UPT, unit_id)


def scope_label(scope: Scope, rows: list[dict[str, Any]], offices: list[dict[str, Any]]) -> str:
    """What the page header says the login watches."""
    if scope.role is Role.PUSAT:
        return "Pusat · seluruh UPT dan Disdukcapil"
    if scope.role is Role.KANWIL:
        return next((r["kanwil_name"] for r in rows), scope.unit_id)
    if scope.role is Role.DUKCAPIL:
        return next((o["name"] for o in offices), scope.unit_id)
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
    lateness = row.get("lateness")
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
        "lateness": lateness,
        "central_total": row.get("central_total") or 0,
        "flagged_total": row.get("flagged_total") or 0,
        "last_submission_at": last.isoformat() if isinstance(last, datetime) else None,
    }


# e-KTP statuses grouped as a supervisor reads the pipeline of one kab/kota.
PIPELINE = {
    "regional": ("BIO_CAPTURED", "PROCESSING", "SENT_FOR_ENROLLMENT"),
    "central": (
        "RECEIVED_AT_CENTRAL",
        "PACKET_RETRY",
        "SENT_FOR_DEDUP",
        "SEARCH_FAILURE_AT_CENTRAL",
        "ADJUDICATE_RECORD",
    ),
    "failed": ("ENROLL_FAILURE_AT_REGIONAL", "ENROLL_FAILURE_AT_CENTRAL"),
    "to_resolve": ("DUPLICATE_RECORD", "REQUEST_VALIDATION"),
    "printing": ("PRINT_READY_RECORD", "SENT_FOR_CARD_PRINTING", "CARD_PRINTED", "CARD_SHIPPED"),
    "issued": ("CARD_ISSUED",),
}


def office_row(office: dict[str, Any], counts: dict[str, int], refused: int) -> dict[str, Any]:
    """The JSON a browser gets for one kab/kota's e-KTP pipeline: counts only."""
    row: dict[str, Any] = {
        "unit_id": office["unit_id"],
        "kabkota": office["kabkota_code"],
        "name": office["name"],
        "refused_messages": refused,
        "statuses": counts,
    }
    row |= {group: sum(counts.get(s, 0) for s in members) for group, members in PIPELINE.items()}
    return row

"""How a unit's day and an office's e-KTP pipeline are summarised for a browser: counts, never personal data."""

from __future__ import annotations

import csv
import io
from datetime import date, datetime
from typing import Any

from shared.contracts import WIB


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
    received, rejected = row.get("received") or 0, row.get("rejected") or 0
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
        "refusal_rate": round(rejected / received, 4) if received else 0.0,
        "severity": severity(state, lateness),
    }


# How badly a UPT's day stands, worst first: nothing sent, a snapshot still missing parts, complete but after
# 14:00 WIB, after 10:00 WIB, complete on time. The overview lists UPTs in this order (then by refusal rate).
SEVERITY = {"missing": 0, "partial": 1, "after_14": 2, "after_10": 3, "complete": 4}


def severity(state: str, lateness: str | None) -> int:
    if state != "complete":
        return SEVERITY[state]
    return SEVERITY.get(lateness or "", SEVERITY["complete"])


def worst_first(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """UPT rows (unit_row) worst first: by severity, then the higher refusal rate, then by name."""
    return sorted(rows, key=lambda r: (r["severity"], -r["refusal_rate"], r["name"]))


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


UNIT_CSV_COLUMNS = (
    "upt_id", "name", "kanwil_id", "kanwil_name", "state", "parts", "parts_received", "lateness", "received",
    "accepted", "rejected", "warnings", "refused_messages", "central_total", "flagged_total", "last_submission_at",
)  # fmt: skip


def units_csv(rows: list[dict[str, Any]]) -> str:
    """The unit table as CSV (counts only). A cell that a spreadsheet would read as a formula is quoted with a
    leading apostrophe: unit names come from files and messages."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(UNIT_CSV_COLUMNS)
    for row in rows:
        writer.writerow([spreadsheet_safe(row.get(c)) for c in UNIT_CSV_COLUMNS])
    return out.getvalue()


def spreadsheet_safe(value: Any) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def timeline(hours: list[tuple[int, str, int, int]]) -> dict[str, list[int]]:
    """A day's parts per WIB hour (0..23), by lateness, and the records they brought (counts only)."""
    out = {k: [0] * 24 for k in ("on_time", "after_10", "after_14", "accepted")}
    for hour, lateness, parts, accepted in hours:
        out[lateness if lateness in out else "on_time"][hour] += parts
        out["accepted"][hour] += accepted
    return out


def case_row(case: dict[str, Any]) -> dict[str, Any]:
    """A desk case as the list shows it (the detail, with the candidates, is sent only when it is opened)."""
    return {
        "kabkota": case["kabkota"], "packet_id": case["packet_id"], "opened_at": case["opened_at"].isoformat(),
        "requested": case["requested"], "requested_by": case["requested_by"], "decision": case["decision"],
        "operator": case["operator"],
        "decided_at": case["decided_at"].isoformat() if case["decided_at"] else None,
    }  # fmt: skip

"""A consolidation run's report as a supervisor prints it: the lines of the UPTs the login sees, their totals and
the lists counted, on A4 in Bahasa Indonesia. Pure: the same words and layout as the consolidator's printable
report (shared.printing), from what the monitor holds (counts, never a person)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from shared.printing import LABELS, REASONS, TRIGGER, day_text, moment_text, page, table, upt_rank, upt_status

from .runs import FIGURES

# fmt: off
_STATE = {"started": "dimulai", "progress": "berjalan", "finished": "selesai", "failed": "gagal"}
_COUNTED = (  # the breakdowns as the page lists them: name, heading, first column
    ("overstaying_by_register", "Melebihi masa penahanan per register", "Register"),
    ("notice_10_by_register", "Pemberitahuan 10 hari per register", "Register"),
    ("notice_3_by_register", "Pemberitahuan 3 hari per register", "Register"),
    ("without_ektp_by_reason", "Tanpa e-KTP per sebab", "Sebab"),
    ("without_ektp_by_upt_kabkota", "Tanpa e-KTP per kab/kota UPT", "Kab/kota UPT"),
    ("without_ektp_by_nik_kabkota", "Tanpa e-KTP per kab/kota NIK", "Kab/kota NIK"),
)
# fmt: on


def _rank(line: Mapping[str, Any]) -> tuple[int, int, str]:
    return (*upt_rank(line["sent"], line["applied"], line["lateness"], int(line["refused"])), line["upt_id"])


def _status(line: Mapping[str, Any]) -> str:
    return upt_status(line["sent"], line["applied"], line["lateness"], line["complete"])


def run_page(
    run: Mapping[str, Any],
    lines: Sequence[Mapping[str, Any]],
    totals: Mapping[str, int],
    counted: Mapping[str, Sequence[Mapping[str, Any]]],
    *,
    scope: str,
    printed_by: str,
    generated_at: datetime,
) -> str:
    """`lines` as runs.line_view gives them, `totals` as runs.totals, `counted` as runs.breakdowns: all in the
    login's scope, which the header names (`scope`) with who printed it."""
    day = run["day"]
    meta = {
        "Hari": day_text(day) if day else "-",
        "ID proses": run["run_id"],
        "Keadaan": _STATE.get(run["state"], run["state"]),
        "Pemicu": TRIGGER.get(run["trigger"], run["trigger"]),
        "Dijalankan oleh": run["requested_by"],
        "Mulai": moment_text(run["started_at"]),
        "Terakhir diperbarui": moment_text(run["updated_at"]),
        "Cakupan": scope,
        "Dicetak oleh": printed_by,
    }
    summary = [[LABELS["upts"], totals.get("upts", 0)], [LABELS["sent"], totals.get("upts_sent", 0)]]
    summary += [[LABELS[k], totals.get(k, 0)] for k in FIGURES]
    head = [LABELS[k] for k in FIGURES]
    rows = [
        [
            f"{line['name']} ({line['upt_id']})",
            line["kanwil_name"],
            _status(line),
            *(line[k] for k in FIGURES),
        ]
        for line in sorted(lines, key=_rank)
    ]

    def label(name: str, key: str, shown: str) -> str:
        if name == "without_ektp_by_reason":
            return REASONS.get(key, key)
        return f"{shown} ({key})" if shown != key else key

    sections = [
        ("", "Ringkasan", table(("Ukuran", "Jumlah"), summary, (1,))),
        (
            ' class="lebar"',
            "Per UPT (terburuk lebih dulu)",
            table(("UPT", "Kanwil", "Status", *head), rows, range(3, 3 + len(head))),
        ),
        *(
            ("", heading, table((first, "Jumlah"),
                                [[label(name, r["key"], r["label"]), r["count"]] for r in counted.get(name, [])],
                                (1,)))
            for name, heading, first in _COUNTED
        ),
    ]  # fmt: skip
    title = "Laporan Konsolidasi Harian SDP"
    return page(f"{title}, {meta['Hari']}", title, meta, sections, generated_at=generated_at)

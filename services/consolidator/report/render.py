"""A run's report as CSV files, a printable HTML page and a terminal summary; pure, returns strings."""

from __future__ import annotations

import csv
import html
import io
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from services.consolidator.domain.report import COUNTS, Item, RunReport, UptLine, by_kanwil, totals
from shared.nik import mask
from shared.printing import (
    LABELS,
    REASONS,
    TRIGGER,
    day_text,
    moment_text,
    number_text,
    page,
    plain,
    table,
    upt_rank,
    upt_status,
)

# fmt: off
TOTALS = ("upts", "sent", "complete", "late_10", "late_14", "not_sent", "held", *COUNTS)
UPT_COLUMNS = ("upt_id", "upt_name", "kanwil_id", "sent", "complete", "lateness", "snapshot", "applied", *COUNTS)
# The item files: name, item kinds, columns (item fields, upt_name or detail keys), leading sort columns.
ITEM_FILES: tuple[tuple[str, tuple[str, ...], tuple[str, ...], tuple[str, ...]], ...] = (
    ("overstaying.csv", ("overstaying",), ("upt_id", "upt_name", "inmate_id", "register", "full_name",
     "detention_start", "authorised_until", "days_over", "rule"), ("upt_id", "inmate_id")),
    ("notices.csv", ("notice_3", "notice_10"), ("kind", "upt_id", "upt_name", "inmate_id", "register",
     "full_name", "authorised_until", "days_left", "rule"), ("kind", "upt_id", "inmate_id")),
    ("dual_custody.csv", ("dual_custody",), ("upt_id", "upt_name", "inmate_id", "central_id", "other_upt",
     "other_inmate_id"), ("upt_id", "inmate_id")),
    ("transfers.csv", ("transfer",), ("upt_id", "upt_name", "inmate_id", "central_id", "from_upt", "to_upt"),
     ("upt_id", "inmate_id")),
    ("releases.csv", ("release",), ("upt_id", "upt_name", "inmate_id", "central_id", "reason"),
     ("upt_id", "inmate_id")),
    ("in_transit.csv", ("in_transit",), ("upt_id", "upt_name", "inmate_id", "from_upt", "since"),
     ("upt_id", "inmate_id")),
    ("held.csv", ("held",), ("upt_id", "upt_name", "inmate_id", "inmates", "previous", "share_lost"),
     ("upt_id", "inmate_id")),
    ("without_ektp.csv", ("without_ektp",), ("kabkota_upt", "kabkota_nik", "upt_id", "inmate_id",
     "central_id", "full_name", "birth_date", "nik_masked", "reason"), ("kabkota_upt", "upt_id", "inmate_id")),
)
# The page's lists: title, item kinds, grouped per register, sort field ("-": descending), columns. A column
# shows a detail key; "@" names the UPT, "#" is a number (right-aligned), "%" a share shown in percent.
_LISTS: tuple[tuple[str, tuple[str, ...], bool, str, tuple[tuple[str, str], ...]], ...] = (
    ("Melebihi masa penahanan", ("overstaying",), True, "-days_over", (("UPT", "@upt_id"),
     ("No. WBP", "inmate_id"), ("Nama", "full_name"), ("Mulai ditahan", "detention_start"),
     ("Berlaku sampai", "authorised_until"), ("Lewat (hari)", "#days_over"), ("Dasar hukum", "rule"))),
    ("Pemberitahuan masa penahanan (10 dan 3 hari)", ("notice_3", "notice_10"), False, "days_left", (
     ("UPT", "@upt_id"), ("No. WBP", "inmate_id"), ("Nama", "full_name"), ("Register", "register"),
     ("Berlaku sampai", "authorised_until"), ("Sisa (hari)", "#days_left"), ("Dasar hukum", "rule"))),
    ("Tercatat di dua UPT", ("dual_custody",), False, "", (("UPT", "@upt_id"), ("No. WBP", "inmate_id"),
     ("ID pusat", "central_id"), ("UPT lain", "@other_upt"), ("No. WBP lain", "other_inmate_id"))),
    ("Pindahan", ("transfer",), False, "", (("ID pusat", "central_id"), ("Dari UPT", "@from_upt"),
     ("Ke UPT", "@to_upt"), ("No. WBP", "inmate_id"))),
    ("Ditahan (snapshot menyusut)", ("held",), False, "", (("UPT", "@upt_id"),
     ("Penghuni di snapshot", "#inmates"), ("Sebelumnya", "#previous"), ("Berkurang", "%share_lost"))),
)
_TABLE_COUNTS = ("received", "accepted", "refused", "warnings", "inmates", "previous", "admissions", "releases",
                 "transfers", "in_transit", "dual_custody", "overstaying", "notices", "without_ektp")
# fmt: on
# Spreadsheets run a cell starting with these as a formula; names come from UPT systems.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_WORST = 10  # UPTs named in the terminal summary


def _detail(item: Item) -> dict[str, Any]:
    """The item's detail without anything that could be a full NIK: reports leave the centre's store."""
    detail: dict[str, Any] = {}
    for key, value in item.detail.items():
        if key.lower() == "nik":
            continue
        detail[key] = (
            mask(value) if isinstance(value, str) and len(value) == 16 and value.isdigit() else value
        )
    return detail


def _items(report: RunReport) -> list[dict[str, Any]]:
    """Every item as one flat row (detail, kind, UPT and inmate), in a fixed order."""
    names = {line.upt_id: line.upt_name for line in report.lines}
    rows = [
        _detail(item)
        | {
            "kind": item.kind,
            "upt_id": item.upt_id,
            "inmate_id": item.inmate_id,
            "upt_name": names.get(item.upt_id),
        }
        for item in report.items
    ]
    return sorted(rows, key=lambda row: (row["upt_id"], row["inmate_id"], row["kind"]))


def _cell(value: Any) -> str:
    text = plain(value)
    return "'" + text if isinstance(value, str | Mapping) and text.startswith(_FORMULA_START) else text


def _csv(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows([_cell(value) for value in row] for row in rows)
    return buffer.getvalue()


def csv_files(report: RunReport) -> dict[str, str]:
    """File name -> CSV text; the same report gives the same bytes whatever the order of lines and items."""
    lines = sorted(report.lines, key=lambda line: line.upt_id)
    files = {
        "upt.csv": _csv(UPT_COLUMNS, ([getattr(line, c) for c in UPT_COLUMNS] for line in lines)),
        "kanwil.csv": _csv(
            ("kanwil_id", "kanwil_name", *TOTALS),
            ([k, name, *(t.as_dict()[c] for c in TOTALS)] for k, name, t in by_kanwil(lines)),
        ),
        "national.csv": _csv(TOTALS, [[totals(lines).as_dict()[c] for c in TOTALS]]),
    }
    items = _items(report)
    for name, kinds, columns, order in ITEM_FILES:
        rows = [[row.get(c) for c in columns] for row in items if row["kind"] in kinds]
        at = [columns.index(c) for c in order]
        files[name] = _csv(
            columns, sorted(rows, key=lambda r: ([plain(r[i]) for i in at], [plain(v) for v in r]))
        )
    return files


def _int(value: Any) -> int:
    return value if isinstance(value, int) else 0


def _listing(
    rows: Sequence[Mapping[str, Any]], columns: Sequence[tuple[str, str]], upt: Callable[[Any], str]
) -> str:
    def shown(row: Mapping[str, Any], column: str) -> Any:
        value = row.get(column.lstrip("@#%"))
        if column.startswith("@"):
            return upt(value)
        if column.startswith("%") and isinstance(value, int | float):
            return f"{100 * value:.1f} %".replace(".", ",")
        return value

    cells = [[shown(row, column) for _, column in columns] for row in rows]
    numeric = [i for i, (_, column) in enumerate(columns) if column[0] in "#%"]
    return table([label for label, _ in columns], cells, numeric)


def _lists(items: Sequence[Mapping[str, Any]], upt: Callable[[Any], str]) -> list[tuple[str, str]]:
    """The lists behind the figures, each as (title, HTML), then the work list counted per kab/kota."""
    out = []
    for title, kinds, per_register, order, columns in _LISTS:
        rows = [row for row in items if row["kind"] in kinds]
        if order:
            sign, field = (-1, order[1:]) if order.startswith("-") else (1, order)
            rows.sort(key=lambda row: sign * _int(row.get(field)))
        if not per_register:
            out.append((title, _listing(rows, columns, upt)))
            continue
        registers = sorted({plain(row.get("register")) for row in rows})
        groups = {r: [row for row in rows if plain(row.get("register")) == r] for r in registers}
        parts = [
            f"<h3>Register {html.escape(r or '-')} ({len(g)})</h3>\n{_listing(g, columns, upt)}"
            for r, g in groups.items()
        ]
        out.append((title, "".join(parts) or _listing([], columns, upt)))
    per_kabkota: dict[str, list[int]] = {}
    for row in items:
        if row["kind"] == "without_ektp":
            counts = per_kabkota.setdefault(plain(row.get("kabkota_upt")), [0] * (1 + len(REASONS)))
            counts[0] += 1
            for i, reason in enumerate(REASONS, start=1):
                counts[i] += row.get("reason") == reason
    head = ("Kab/kota UPT", "Jumlah", *REASONS.values())
    rows_ektp = [[kabkota, *counts] for kabkota, counts in sorted(per_kabkota.items())]
    out.append(
        ("Tanpa e-KTP per kab/kota (daftar lengkap: without_ektp.csv)", table(head, rows_ektp, range(1, 5)))
    )
    return out


def _counts(values: Mapping[str, Any]) -> list[Any]:
    return [
        f"{number_text(values['transfers_in'])}/{number_text(values['transfers_out'])}"
        if c == "transfers"
        else values[c]
        for c in _TABLE_COUNTS
    ]


def _rank(line: UptLine) -> tuple[int, int, str]:
    return (*upt_rank(line.sent, line.applied, line.lateness, line.refused), line.upt_id)


def _status(line: UptLine) -> str:
    return upt_status(line.sent, line.applied, line.lateness, line.complete)


def html_page(report: RunReport, *, generated_at: datetime) -> str:
    """The printable page (A4, Bahasa Indonesia); every value from the run is escaped, nothing is fetched."""
    names = {line.upt_id: f"{line.upt_name} ({line.upt_id})" for line in report.lines}

    def upt(upt_id: Any) -> str:
        return names.get(plain(upt_id), plain(upt_id))

    meta = {
        "Hari": day_text(report.day),
        "ID proses": report.run_id,
        "Pemicu": TRIGGER.get(report.trigger, report.trigger),
        "Dijalankan oleh": report.requested_by,
        "Alasan": report.reason,
        "Mulai": moment_text(report.started_at),
        "Selesai": moment_text(report.finished_at),
    }
    national = totals(report.lines).as_dict()
    head = [LABELS[c] for c in (*TOTALS[1:7], *_TABLE_COUNTS)]
    kanwil = [
        [f"{name} ({k})", *(t.as_dict()[c] for c in TOTALS[:7]), *_counts(t.as_dict())]
        for k, name, t in by_kanwil(report.lines)
    ]
    upts = [
        [upt(line.upt_id), line.kanwil_name, _status(line), *_counts(line.counts())]
        for line in sorted(report.lines, key=_rank)
    ]
    sections = [
        (
            "",
            "Ringkasan nasional",
            table(("Ukuran", "Jumlah"), [[LABELS[c], national[c]] for c in TOTALS], (1,)),
        ),
        (
            ' class="lebar"',
            "Per Kanwil",
            table(("Kanwil", LABELS["upts"], *head), kanwil, range(1, 2 + len(head))),
        ),
        (
            ' class="lebar"',
            "Per UPT (terburuk lebih dulu)",
            table(("UPT", "Kanwil", "Status", *head[6:]), upts, range(3, 3 + len(_TABLE_COUNTS))),
        ),
        *(("", title, content) for title, content in _lists(_items(report), upt)),
    ]
    return page(
        f"Laporan Konsolidasi Harian SDP, {day_text(report.day)}",
        "Laporan Konsolidasi Harian SDP",
        meta,
        sections,
        generated_at=generated_at,
    )


def _printable(text: str) -> str:
    # Names come from UPT messages: no terminal escape sequence may reach the operator's screen.
    return "".join(c if c.isprintable() else "?" for c in text)


def text_summary(report: RunReport) -> str:
    """National figures and the UPTs most in need of attention, for a terminal."""
    t = totals(report.lines).as_dict()
    trigger = TRIGGER.get(report.trigger, report.trigger)
    out = [
        f"Laporan Konsolidasi Harian SDP: {day_text(report.day)}, {report.run_id} ({trigger}, {report.requested_by})"
    ]
    out += [
        ", ".join(f"{LABELS[c]}: {number_text(t[c])}" for c in part)
        for part in (TOTALS[:7], COUNTS[:4], COUNTS[4:11], COUNTS[11:])
    ]
    bad = [line for line in sorted(report.lines, key=_rank) if _rank(line)[0] < 4 or line.refused]
    if bad:
        out.append(f"UPT terburuk ({min(len(bad), _WORST)} dari {len(bad)} bermasalah):")
        out += [
            f"  {line.upt_id} {line.upt_name}: {_status(line)}; {number_text(line.refused)} ditolak"
            for line in bad[:_WORST]
        ]
    return "".join(_printable(line) + "\n" for line in out)

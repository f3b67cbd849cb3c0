"""Printable pages in Bahasa Indonesia (A4): the words, numbers, dates and tables the centre's reports share.

Pure: returns strings. Every value is escaped; nothing is fetched (no fonts, no files), so a page prints the
same offline. The consolidator's run report and the monitor's printable view of a run are built from these."""

from __future__ import annotations

import base64
import hashlib
import html
from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any

from shared.contracts import WIB

# fmt: off
LABELS = {
    "upts": "Jumlah UPT", "sent": "Terkirim", "complete": "Lengkap", "late_10": "Terlambat (setelah 10.00 WIB)",
    "late_14": "Terlambat (setelah 14.00 WIB)", "not_sent": "Tidak mengirim", "held": "Ditahan (snapshot menyusut)",
    "received": "Rekaman masuk", "accepted": "Rekaman diterima", "refused": "Rekaman ditolak",
    "warnings": "Peringatan", "inmates": "Penghuni", "previous": "Penghuni sebelumnya",
    "admissions": "Penerimaan", "releases": "Pembebasan", "transfers_in": "Pindahan masuk",
    "transfers_out": "Pindahan keluar", "transfers": "Pindahan masuk/keluar", "in_transit": "Dalam perjalanan",
    "dual_custody": "Tercatat di dua UPT", "overstaying": "Melebihi masa penahanan",
    "notices": "Pemberitahuan masa penahanan", "without_ektp": "Tanpa e-KTP",
}
APPLIED = {"applied": "Diterapkan", "held": "Ditahan (snapshot menyusut)", "unchanged": "Tidak berubah",
           "not_sent": "Tidak mengirim"}
LATENESS = {"on_time": "Tepat waktu", "after_10": "Terlambat (setelah 10.00 WIB)",
            "after_14": "Terlambat (setelah 14.00 WIB)"}
TRIGGER = {"command": "perintah", "schedule": "jadwal"}
REASONS = {"no_nik": "Tanpa NIK", "nik_not_in_population": "NIK tidak ada di data kependudukan",
           "no_print_ready_capture": "Belum ada perekaman siap cetak"}
_DAYS = ("Senin", "Selasa", "Rabu", "Kamis", "Jumat", "Sabtu", "Minggu")
_MONTHS = ("Januari", "Februari", "Maret", "April", "Mei", "Juni", "Juli", "Agustus", "September", "Oktober",
           "November", "Desember")
# fmt: on
# Wide tables get a landscape page; everything is local (no fonts or files fetched).
CSS = """
@page { size: A4; margin: 15mm }
@page lebar { size: A4 landscape; margin: 15mm }
.lebar { page: lebar }
body { font-family: "DejaVu Sans", Arial, Helvetica, sans-serif; font-size: 10pt; color: #000; margin: 0 }
h1 { font-size: 16pt; margin: 0 0 3mm }
h2 { font-size: 13pt; margin: 6mm 0 2mm; break-after: avoid }
h3 { font-size: 11pt; margin: 4mm 0 1mm; break-after: avoid }
dl { display: grid; grid-template-columns: max-content auto; gap: 1mm 4mm; margin: 0 }
dt { font-weight: bold }
dd { margin: 0 }
table { border-collapse: collapse; width: 100%; font-size: 10pt; margin-bottom: 3mm }
th, td { border: 0.5pt solid #555; padding: 1mm 1.5mm; vertical-align: top; text-align: left }
th { background: #e8e8e8; font-size: 9pt; print-color-adjust: exact; -webkit-print-color-adjust: exact }
td.n { text-align: right; white-space: nowrap; font-variant-numeric: tabular-nums }
thead { display: table-header-group }
tr, th, td { break-inside: avoid; page-break-inside: avoid }
.kosong, footer { font-style: italic }
"""
# For a Content-Security-Policy that lets exactly this stylesheet apply and nothing else.
CSS_HASH = "sha256-" + base64.b64encode(hashlib.sha256(CSS.encode()).digest()).decode()


def plain(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.4f}"
    if isinstance(value, Mapping):  # a rule: the law first, then its citation
        keys = [k for k in ("law", "citation") if k in value] + sorted(set(value) - {"law", "citation"})
        return " ".join(plain(value[k]) for k in keys)
    if isinstance(value, list | tuple):
        return ", ".join(plain(v) for v in value)
    return str(value)


def day_text(day: date) -> str:
    """`Rabu, 2 Desember 2026`."""
    return f"{_DAYS[day.weekday()]}, {day.day} {_MONTHS[day.month - 1]} {day.year}"


def moment_text(at: datetime | None) -> str:
    """`Rabu, 2 Desember 2026 pukul 15.04.09 WIB`."""
    if at is None:
        return "belum selesai"
    local = (at if at.tzinfo else at.replace(tzinfo=UTC)).astimezone(WIB)
    return f"{day_text(local.date())} pukul {local:%H.%M.%S} WIB"


def number_text(value: Any) -> str:
    """Whole numbers the Indonesian way (12.345); anything else as plain text."""
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}".replace(",", ".")
    return plain(value)


def upt_rank(sent: bool, applied: str, lateness: str | None, refused: int) -> tuple[int, int]:
    """A UPT's place in a report, worst first: not sent, then held, then late (after 14.00 before after 10.00),
    then on time; within each, by refused records."""
    late = {"after_14": 2, "after_10": 3}.get(lateness or "", 4)
    return (0 if not sent else 1 if applied == "held" else late, -refused)


def upt_status(sent: bool, applied: str, lateness: str | None, complete: bool) -> str:
    """`Diterapkan, Terlambat (setelah 10.00 WIB), lengkap`."""
    parts = [APPLIED.get(applied, applied)]
    if sent:
        parts += [LATENESS.get(lateness or "", lateness or ""), "lengkap" if complete else "tidak lengkap"]
    return ", ".join(part for part in parts if part)


def table(head: Sequence[str], rows: Sequence[Sequence[Any]], numeric: Collection[int] = ()) -> str:
    if not rows:
        return '<p class="kosong">Tidak ada.</p>'
    th = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    body = "".join(
        "<tr>"
        + "".join(
            f"<td{' class=n' if i in numeric else ''}>{html.escape(number_text(v))}</td>"
            for i, v in enumerate(row)
        )
        + "</tr>\n"
        for row in rows
    )
    return f"<table><thead><tr>{th}</tr></thead><tbody>\n{body}</tbody></table>\n"


def page(
    title: str,
    heading: str,
    meta: Mapping[str, str | None],
    sections: Iterable[tuple[str, str, str]],
    *,
    generated_at: datetime,
) -> str:
    """A whole page titled `title`: a header (`heading`, then `meta` as a list of terms), each section as (CSS
    class attribute, heading, HTML content), and when it was made. Titles and `meta` are escaped here;
    contents already are."""
    dl = "".join(f"<dt>{html.escape(k)}</dt><dd>{html.escape(v or '')}</dd>" for k, v in meta.items())
    main = "".join(
        f"<section{css}>\n<h2>{html.escape(heading)}</h2>\n{content}</section>\n"
        for css, heading, content in sections
    )
    return (
        '<!DOCTYPE html>\n<html lang="id">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{html.escape(title)}</title>\n<style>{CSS}</style>\n"
        f"</head>\n<body>\n<header><h1>{html.escape(heading)}</h1><dl>{dl}</dl></header>\n"
        f"<main>\n{main}</main>\n<footer>Dibuat {html.escape(moment_text(generated_at))}</footer>\n</body>\n</html>\n"
    )

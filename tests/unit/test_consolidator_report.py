"""Consolidator report rendering: deterministic CSVs, a safe printable page, no full NIK anywhere."""

from __future__ import annotations

import csv
import dataclasses
import io
import re
from datetime import UTC, date, datetime
from typing import Any

import pytest

from services.consolidator.domain.report import COUNTS, ITEM_KINDS, Item, RunReport, UptLine
from services.consolidator.report.render import csv_files, html_page, text_summary

GENERATED = datetime(2026, 12, 2, 9, 30, tzinfo=UTC)
ITEM_FILES = {
    "overstaying.csv",
    "notices.csv",
    "dual_custody.csv",
    "transfers.csv",
    "releases.csv",
    "in_transit.csv",
    "held.csv",
    "without_ektp.csv",
}


def line(upt_id: str, kanwil_id: str = "K01", **overrides: Any) -> UptLine:
    fields: dict[str, Any] = {
        "upt_id": upt_id,
        "upt_name": f"Lapas {upt_id}",
        "kanwil_id": kanwil_id,
        "kanwil_name": f"Kanwil {kanwil_id}",
        "sent": True,
        "complete": True,
        "lateness": "on_time",
        "snapshot": 3,
        "applied": "applied",
    }
    fields |= {name: 10 + i for i, name in enumerate(COUNTS)}
    return UptLine(**(fields | overrides))


RULE = {"law": "UU 8/1981 (KUHAP)", "citation": "Pasal 24 ayat (1)"}
ITEMS = [
    Item("overstaying", "U01", "W1", {"register": "A II", "detention_start": "2026-10-01",
         "authorised_until": "2026-11-30", "days_over": 2, "rule": RULE, "full_name": "Andi"}),
    Item("notice_3", "U01", "W2", {"register": "A III", "authorised_until": "2026-12-05", "days_left": 3,
         "rule": RULE, "full_name": "Budi"}),
    Item("notice_10", "U02", "W3", {"register": "A II", "authorised_until": "2026-12-12", "days_left": 10,
         "rule": RULE, "full_name": "Citra"}),
    Item("dual_custody", "U01", "W4", {"other_upt": "U03", "other_inmate_id": "X9", "central_id": "C100"}),
    Item("transfer", "U02", "W5", {"from_upt": "U01", "to_upt": "U02", "central_id": "C101"}),
    Item("release", "U03", "W6", {"central_id": "C102", "reason": "bebas"}),
    Item("in_transit", "U03", "W7", {"from_upt": "U02", "since": "2026-12-01"}),
    Item("held", "U03", "", {"inmates": 40, "previous": 100, "share_lost": 0.6}),
    Item("without_ektp", "U02", "W8", {"reason": "no_nik", "kabkota_upt": "3273", "kabkota_nik": None,
         "nik_masked": "", "full_name": "Dedi", "birth_date": "1990-01-01", "central_id": "C103"}),
    Item("without_ektp", "U01", "W9", {"reason": "nik_not_in_population", "kabkota_upt": "3201",
         "kabkota_nik": "3201", "nik_masked": "3201********0001", "full_name": "Eka",
         "birth_date": "1991-02-02", "central_id": "C104"}),
    Item("without_ektp", "U03", "W10", {"reason": "no_print_ready_capture", "kabkota_upt": "3201",
         "kabkota_nik": "3273", "nik_masked": "3273********0002", "full_name": "Fajar",
         "birth_date": "1992-03-03", "central_id": "C105"}),
]  # fmt: skip


def make_report(lines: list[UptLine] | None = None, items: list[Item] | None = None) -> RunReport:
    return RunReport(
        run_id="2026-12-02/command/abc",
        day=date(2026, 12, 2),
        trigger="command",
        requested_by="Sri Wahyuni",
        reason="Rekap harian",
        started_at=datetime(2026, 12, 2, 8, 15, 3, tzinfo=UTC),
        finished_at=datetime(2026, 12, 2, 8, 20, tzinfo=UTC),
        lines=[
            line("U01"),
            line("U02", sent=False, complete=False, lateness=None, snapshot=None, applied="not_sent"),
            line("U03", "K02", applied="held", lateness="after_10"),
        ]
        if lines is None
        else lines,
        items=ITEMS if items is None else items,
    )


def rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_csv_files_are_the_same_whatever_the_order_of_lines_and_items() -> None:
    report = make_report()
    shuffled = dataclasses.replace(
        report, lines=list(reversed(report.lines)), items=list(reversed(report.items))
    )

    first = csv_files(report)

    assert first == csv_files(report) == csv_files(shuffled)
    assert set(first) == {"upt.csv", "kanwil.csv", "national.csv"} | ITEM_FILES
    assert all("\r" not in text and text.endswith("\n") for text in first.values())
    assert not any(report.run_id in text for text in first.values())


def test_every_file_has_its_header_when_there_are_no_items() -> None:
    files = csv_files(make_report(items=[]))

    assert files["without_ektp.csv"] == (
        "kabkota_upt,kabkota_nik,upt_id,inmate_id,central_id,full_name,birth_date,nik_masked,reason\n"
    )
    for name in ITEM_FILES:
        assert files[name].count("\n") == 1, name
    assert files["upt.csv"].splitlines()[0].split(",") == [
        "upt_id", "upt_name", "kanwil_id", "sent", "complete", "lateness", "snapshot", "applied", *COUNTS,
    ]  # fmt: skip


def test_the_work_list_is_sorted_by_the_upts_kabkota_then_upt_and_inmate() -> None:
    work = rows(csv_files(make_report())["without_ektp.csv"])

    assert [(r["kabkota_upt"], r["upt_id"], r["inmate_id"]) for r in work] == [
        ("3201", "U01", "W9"),
        ("3201", "U03", "W10"),
        ("3273", "U02", "W8"),
    ]
    assert work[2]["kabkota_nik"] == ""
    assert work[0]["nik_masked"] == "3201********0001"


def test_notices_of_both_kinds_share_one_file() -> None:
    notices = rows(csv_files(make_report())["notices.csv"])

    assert sorted((r["kind"], r["inmate_id"], r["days_left"]) for r in notices) == [
        ("notice_10", "W3", "10"),
        ("notice_3", "W2", "3"),
    ]
    assert notices[0]["rule"] == "UU 8/1981 (KUHAP) Pasal 24 ayat (1)"


@pytest.mark.parametrize("start", ["=", "+", "-", "@"])
def test_a_cell_that_would_run_as_a_formula_is_neutralised(start: str) -> None:
    name = f'{start}HYPERLINK("x")'
    report = make_report(
        lines=[line("U01", upt_name=name)],
        items=[
            Item(
                "dual_custody", "U01", "W1", {"other_upt": "U09", "other_inmate_id": name, "central_id": "C1"}
            )
        ],
    )

    files = csv_files(report)

    assert rows(files["upt.csv"])[0]["upt_name"] == "'" + name
    assert rows(files["dual_custody.csv"])[0]["other_inmate_id"] == "'" + name
    assert rows(files["dual_custody.csv"])[0]["upt_name"] == "'" + name


def test_national_row_is_the_sum_of_the_upt_rows() -> None:
    files = csv_files(make_report())
    upts = rows(files["upt.csv"])
    (national,) = rows(files["national.csv"])

    for name in COUNTS:
        assert int(national[name]) == sum(int(r[name]) for r in upts), name
    assert national["upts"] == "3"
    assert (national["sent"], national["not_sent"], national["held"], national["late_10"]) == (
        "2",
        "1",
        "1",
        "1",
    )


def test_kanwil_rows_group_their_upts() -> None:
    kanwil = {r["kanwil_id"]: r for r in rows(csv_files(make_report())["kanwil.csv"])}

    assert list(kanwil) == ["K01", "K02"]
    assert (kanwil["K01"]["kanwil_name"], kanwil["K01"]["upts"], kanwil["K01"]["not_sent"]) == (
        "Kanwil K01",
        "2",
        "1",
    )
    assert kanwil["K01"]["received"] == str(2 * 10)
    assert (kanwil["K02"]["upts"], kanwil["K02"]["held"]) == ("1", "1")


def test_no_full_nik_reaches_any_output() -> None:
    leaky = [
        Item(i.kind, i.upt_id, i.inmate_id, {**i.detail, "nik": "3273011503850001", "NIK": "3273011503850002"})
        for i in ITEMS
    ] + [
        Item("without_ektp", "U01", "W11", {"reason": "no_nik", "kabkota_upt": "3201", "kabkota_nik": "3273",
             "nik_masked": "3273011503850003", "full_name": "Gita", "birth_date": "1993-04-04"}),
    ]  # fmt: skip
    report = make_report(items=leaky)

    outputs = [*csv_files(report).values(), html_page(report, generated_at=GENERATED), text_summary(report)]

    assert not [o for o in outputs if re.search(r"\d{16}", o)]
    assert "3273********0003" in csv_files(report)["without_ektp.csv"]


def test_html_escapes_names_from_messages() -> None:
    hostile = '<script>alert("x")</script>'
    report = make_report(
        lines=[line("U01", upt_name=hostile, kanwil_name="K & <b>")],
        items=[
            Item("overstaying", "U01", "W1", {"register": "<i>A</i>", "full_name": hostile, "days_over": 1})
        ],
    )

    page = html_page(report, generated_at=GENERATED)

    assert "<script" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page
    assert "<b>" not in page
    assert "<i>" not in page


def test_html_is_a_printable_self_contained_indonesian_page() -> None:
    page = html_page(make_report(), generated_at=GENERATED)

    assert page.startswith("<!DOCTYPE html>")
    assert '<html lang="id">' in page
    assert "@page { size: A4; margin: 15mm }" in page
    assert "thead { display: table-header-group }" in page
    assert "Laporan Konsolidasi Harian SDP" in page
    assert "Rabu, 2 Desember 2026" in page
    assert "pukul 15.15.03 WIB" in page  # 08:15:03 UTC
    assert "perintah" in page
    assert "Sri Wahyuni" in page
    assert "Rekap harian" in page
    assert not re.search(r"https?:|//\w|<script|<link|@import|url\(", page, re.IGNORECASE)
    for label in ("Terkirim", "Lengkap", "Terlambat (setelah 10.00 WIB)", "Tidak mengirim",
                  "Ditahan (snapshot menyusut)", "Penerimaan", "Pembebasan", "Pindahan masuk/keluar",
                  "Dalam perjalanan", "Melebihi masa penahanan", "Tanpa e-KTP"):  # fmt: skip
        assert label in page, label


def test_html_puts_the_worst_upts_first_and_counts_the_work_list_per_kabkota() -> None:
    lines = [
        line("U01"),
        line("U02", refused=50),
        line("U03", lateness="after_10"),
        line("U04", applied="held"),
        line("U05", sent=False, complete=False, lateness=None, snapshot=None, applied="not_sent"),
    ]
    page = html_page(make_report(lines=lines), generated_at=GENERATED)
    upt_table = page[page.index("Per UPT") :]

    order = [upt_table.index(f"Lapas {u} ({u})") for u in ("U05", "U04", "U03", "U02", "U01")]
    assert order == sorted(order)
    ektp = page[page.index("Tanpa e-KTP per kab/kota") :]
    assert re.search(
        r"<td>3201</td><td class=n>2</td><td class=n>0</td><td class=n>1</td><td class=n>1</td>", ektp
    )
    assert re.search(r"<td>3273</td><td class=n>1</td><td class=n>1</td>", ektp)


def test_html_groups_overstaying_detainees_per_register() -> None:
    items = [
        Item("overstaying", "U01", "W1", {"register": "A II", "days_over": 1, "full_name": "Andi"}),
        Item("overstaying", "U01", "W2", {"register": "A III", "days_over": 4, "full_name": "Budi"}),
        Item("overstaying", "U03", "W3", {"register": "A II", "days_over": 9, "full_name": "Citra"}),
    ]
    page = html_page(make_report(items=items), generated_at=GENERATED)

    assert "Register A II (2)" in page
    assert "Register A III (1)" in page
    a2 = page[page.index("Register A II") : page.index("Register A III")]
    assert a2.index("Citra") < a2.index("Andi")  # the longest over first


def test_text_summary_gives_national_figures_and_worst_upts() -> None:
    lines = [*make_report().lines, line("U04", refused=0), line("U05", upt_name="Lapas\x1b[2J", refused=99)]

    summary = text_summary(make_report(lines=lines))

    assert "Jumlah UPT: 5" in summary
    assert "Tidak mengirim: 1" in summary
    assert summary.index("U02") < summary.index("U03") < summary.index("U05") < summary.index("U01")
    assert "U04" not in summary  # on time, complete, nothing refused
    assert "Lapas?[2J" in summary  # a name cannot drive the operator's terminal


def test_every_item_kind_has_a_file() -> None:
    kinds_in_files = {
        "notice_3": "notices.csv", "notice_10": "notices.csv", "transfer": "transfers.csv",
        "release": "releases.csv",
    }  # fmt: skip
    files = csv_files(make_report())
    for kind in ITEM_KINDS:
        name = kinds_in_files.get(kind, f"{kind}.csv")
        assert files[name].count("\n") >= 2, kind

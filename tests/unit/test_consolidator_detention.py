"""Detention limits per law and register: the last authorised day, overstaying, notices and the data file."""

import copy
import re
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from services.consolidator.domain.detention import (
    DetentionRule,
    authorised_until,
    decide_detention,
    parse_rules,
    rule_for,
    rule_rows,
)
from services.consolidator.rules import load_rules

OLD = "KUHAP 1981 (UU 8/1981)"
NEW = "KUHAP 2025 (UU 20/2025)"
START = date(2025, 3, 1)
MIGRATION = Path(__file__).parents[2] / "services/consolidator/migrations/0003_central.sql"


def limits(initial: int, extension: int, exceptional: int = 60) -> dict[str, Any]:
    return {
        "initial_days": initial,
        "extension_days": extension,
        "exceptional_days": exceptional,
        "citation": "Pasal x",
    }


def document() -> dict[str, Any]:
    """Two laws whose A I limits differ, so the law chosen shows in the dates."""
    registers = {r: limits(20, 40) for r in ("A I", "A II", "A III", "A IV", "A V")}
    return {
        "version": "test-1",
        "laws": [
            {
                "law": "old",
                "valid_from": date(1981, 12, 31),
                "valid_until": date(2026, 1, 2),
                "verified": True,
                "source": "test",
                "registers": copy.deepcopy(registers),
            },
            {
                "law": "new",
                "valid_from": "2026-01-02",
                "valid_until": None,
                "verified": False,
                "source": "test",
                "registers": {**copy.deepcopy(registers), "A I": limits(10, 5, 0)},
            },
        ],
    }


@pytest.fixture(scope="module")
def packaged() -> list[DetentionRule]:
    return load_rules()


# Hand-counted last days from 1 March 2025 (day 1) with the full ordinary extension.
@pytest.mark.parametrize(
    ("register", "extension", "last_day"),
    [
        ("A I", 40, date(2025, 4, 29)),  # 20 + 40 = 60 days
        ("A II", 30, date(2025, 4, 19)),  # 20 + 30 = 50
        ("A III", 60, date(2025, 5, 29)),  # 30 + 60 = 90
        ("A IV", 60, date(2025, 5, 29)),  # 30 + 60 = 90
        ("A V", 60, date(2025, 6, 18)),  # 50 + 60 = 110
    ],
)
def test_each_register_under_kuhap_1981_overstays_the_day_after_its_last_authorised_day(
    packaged: list[DetentionRule], register: str, extension: int, last_day: date
) -> None:
    on_last_day = decide_detention(packaged, register, START, extension, last_day)
    assert on_last_day is not None
    assert (on_last_day.kind, on_last_day.days_left, on_last_day.days_over) == ("notice_3", 0, 0)
    assert on_last_day.authorised_until == last_day
    assert on_last_day.rule.law == OLD

    next_day = decide_detention(packaged, register, START, extension, last_day + timedelta(days=1))
    assert next_day is not None
    assert (next_day.kind, next_day.days_over, next_day.days_left) == ("overstaying", 1, 0)

    a_month_on = decide_detention(packaged, register, START, extension, date(2025, 7, 31))
    assert a_month_on is not None
    assert a_month_on.kind == "overstaying"
    assert a_month_on.days_over == (date(2025, 7, 31) - last_day).days


@pytest.mark.parametrize(
    ("register", "last_day"),
    [
        ("A I", date(2025, 3, 20)),
        ("A II", date(2025, 3, 20)),
        ("A III", date(2025, 3, 30)),
        ("A IV", date(2025, 3, 30)),
        ("A V", date(2025, 4, 19)),
    ],
)
def test_without_extension_only_the_initial_order_counts(
    packaged: list[DetentionRule], register: str, last_day: date
) -> None:
    rule = rule_for(packaged, register, START)
    assert rule is not None
    assert authorised_until(rule, START, 0) == last_day


def test_the_law_is_chosen_by_the_day_the_detention_started() -> None:
    rules = parse_rules(document())
    before = decide_detention(rules, "A I", date(2026, 1, 1), 0, date(2026, 1, 20))
    after = decide_detention(rules, "A I", date(2026, 1, 2), 0, date(2026, 1, 20))
    assert before is not None
    assert after is not None
    assert (before.rule.law, before.authorised_until, before.kind) == ("old", date(2026, 1, 20), "notice_3")
    assert (after.rule.law, after.authorised_until, after.kind) == ("new", date(2026, 1, 11), "overstaying")
    assert after.days_over == 9


def test_the_packaged_file_switches_law_on_2_january_2026(packaged: list[DetentionRule]) -> None:
    first = rule_for(packaged, "A III", date(2026, 1, 1))
    second = rule_for(packaged, "A III", date(2026, 1, 2))
    assert first is not None
    assert second is not None
    assert (first.law, second.law) == (OLD, NEW)
    assert rule_for(packaged, "A III", date(1981, 12, 30)) is None


def test_extensions_count_only_up_to_ordinary_plus_exceptional(packaged: list[DetentionRule]) -> None:
    rule = rule_for(packaged, "A I", START)
    assert rule is not None
    assert authorised_until(rule, START, 70) == date(2025, 5, 29)  # 20 + 70 = 90 days
    assert authorised_until(rule, START, 100) == date(2025, 6, 28)  # 20 + 40 + 60 = 120 days
    assert authorised_until(rule, START, 500) == date(2025, 6, 28)
    finding = decide_detention(packaged, "A I", START, 500, date(2025, 7, 1))
    assert finding is not None
    assert (finding.kind, finding.days_over) == ("overstaying", 3)


@pytest.mark.parametrize(
    ("days_left", "kind"),
    [
        (11, None),
        (10, "notice_10"),
        (4, "notice_10"),
        (3, "notice_3"),
        (1, "notice_3"),
        (0, "notice_3"),
        (-1, "overstaying"),
    ],
)
def test_notices_ten_and_three_days_before_the_end(
    packaged: list[DetentionRule], days_left: int, kind: str | None
) -> None:
    last_day = date(2025, 4, 29)  # A I with the full 40-day extension
    finding = decide_detention(packaged, "A I", START, 40, last_day - timedelta(days=days_left))
    if kind is None:
        assert finding is None
        return
    assert finding is not None
    assert finding.kind == kind
    assert finding.authorised_until == last_day
    assert finding.days_left == max(days_left, 0)
    assert finding.days_over == max(-days_left, 0)


@pytest.mark.parametrize("register", ["B I", "B IIa", "B IIb", "B III", "C"])
def test_sentenced_registers_have_no_detention_limit(packaged: list[DetentionRule], register: str) -> None:
    assert rule_for(packaged, register, START) is None
    assert decide_detention(packaged, register, START, 0, date(2030, 1, 1)) is None


def test_no_detention_start_means_no_finding(packaged: list[DetentionRule]) -> None:
    assert decide_detention(packaged, "A I", None, 0, date(2030, 1, 1)) is None


def test_the_packaged_file_covers_every_a_register_for_every_law(packaged: list[DetentionRule]) -> None:
    laws = {r.law for r in packaged}
    assert laws == {OLD, NEW}
    for law in laws:
        assert sorted(r.register for r in packaged if r.law == law) == ["A I", "A II", "A III", "A IV", "A V"]
    old = [r for r in packaged if r.law == OLD]
    new = [r for r in packaged if r.law == NEW]
    assert all(r.valid_until == date(2026, 1, 2) and r.verified for r in old)
    # The new law's figures are partly carried over from 1981 and must say so.
    assert all(r.valid_from == date(2026, 1, 2) and r.valid_until is None and not r.verified for r in new)
    maxima = {r.register: r.initial_days + r.extension_days for r in old}
    assert maxima == {"A I": 60, "A II": 50, "A III": 90, "A IV": 90, "A V": 110}
    assert all(r.exceptional_days == 60 for r in old)


def test_rule_rows_follow_the_columns_of_the_detention_rules_table(packaged: list[DetentionRule]) -> None:
    table = re.search(r"CREATE TABLE detention_rules \((.*?)\n\);", MIGRATION.read_text(), re.S)
    assert table is not None
    columns = [line.split()[0] for line in table.group(1).strip().splitlines() if "PRIMARY KEY" not in line]
    rows = rule_rows(packaged)
    assert len(rows) == 10
    assert len({(row[0], row[2]) for row in rows}) == 10  # the table's primary key (law, register)
    for rule, row in zip(packaged, rows, strict=True):
        assert dict(zip(columns, row, strict=True)) == {c: getattr(rule, c) for c in columns}


def broken(change: Any) -> dict[str, Any]:
    doc = document()
    change(doc)
    return doc


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda d: d["laws"][0]["registers"].update({"A VI": limits(1, 1)}),
            r"law 'old'.*unknown register.*A VI",
        ),
        (lambda d: d["laws"][0]["registers"].pop("A V"), r"law 'old'.*missing register.*A V"),
        (
            lambda d: d["laws"][1]["registers"]["A II"].update(extension_days=-1),
            r"law 'new'.*'A II'.*extension_days",
        ),
        (
            lambda d: d["laws"][0]["registers"]["A I"].update(initial_days=0),
            r"law 'old'.*'A I'.*initial_days",
        ),
        (
            lambda d: d["laws"][0]["registers"]["A I"].update(exceptional_days=True),
            r"'A I'.*exceptional_days",
        ),
        (
            lambda d: d["laws"][0]["registers"]["A III"].pop("citation"),
            r"law 'old'.*'A III'.*missing.*citation",
        ),
        (lambda d: d["laws"][1].pop("verified"), r"law 'new'.*missing.*verified"),
        (lambda d: d["laws"][1].update(verified="no"), r"law 'new'.*verified"),
        (lambda d: d["laws"][0].update(valid_until=date(2026, 1, 3)), r"law 'new'.*overlaps law 'old'"),
        (lambda d: d["laws"][0].update(valid_until=None), r"overlaps law 'old'"),
        (lambda d: d["laws"][1].update(valid_from="2nd January"), r"law 'new'.*valid_from"),
        (lambda d: d["laws"][0].update(valid_until=date(1981, 12, 31)), r"law 'old'.*valid_until"),
        (lambda d: d["laws"][0].update(law="new"), r"law 'new'.*twice"),
        (lambda d: d["laws"][0].update(registers=["A I"]), r"law 'old'.*registers"),
        (lambda d: d["laws"][0]["registers"]["A I"].update(initail_days=20), r"'A I'.*unknown.*initail_days"),
        (lambda d: d.pop("version"), r"missing.*version"),
        (lambda d: d.update(laws=[]), r"laws"),
    ],
)
def test_parse_rules_rejects_a_bad_document_naming_the_law_and_field(change: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_rules(broken(change))


def test_parse_rules_accepts_the_sample_document() -> None:
    rules = parse_rules(document())
    assert len(rules) == 10
    assert {r.version for r in rules} == {"test-1"}


def test_load_rules_names_the_file_it_could_not_use(tmp_path: Path) -> None:
    missing = tmp_path / "absent.yaml"
    with pytest.raises(ValueError, match=re.escape(str(missing))):
        load_rules(missing)
    garbled = tmp_path / "garbled.yaml"
    garbled.write_text("laws: [unclosed\n", encoding="utf-8")
    with pytest.raises(ValueError, match=re.escape(str(garbled))):
        load_rules(garbled)
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text("version: '1'\nlaws: []\n", encoding="utf-8")
    with pytest.raises(ValueError, match=re.escape(str(wrong)) + ".*laws"):
        load_rules(wrong)

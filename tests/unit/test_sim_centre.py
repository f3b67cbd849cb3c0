"""The centre's planted days: shares, identities, the silent and held UPTs, and the truth's rules."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest

from services.consolidator.domain.detention import REGISTERS, decide_detention
from shared.settings import PROJECT_ROOT
from shared.units import load_units
from sim import centre, population
from tests.builders import inmate

DAY = date(2026, 11, 20)
UNITS = load_units(PROJECT_ROOT / "deploy" / "units")
SMALL = UNITS.subset({u.upt_id for u in UNITS.upts[:60]})
OPTIONS = centre.CentreOptions(units=SMALL, day=DAY, seed=3)


@pytest.fixture(scope="module")
def day() -> tuple[centre.Records, centre.DayTruth]:
    by_upt = population.generate(SMALL, population.Options(as_of=DAY, total=20_000, seed=3))
    return by_upt, centre.plant_day(by_upt, OPTIONS)


@pytest.fixture(scope="module")
def following(day: tuple[centre.Records, centre.DayTruth]) -> tuple[centre.Records, centre.NextDayTruth]:
    by_upt, truth = day
    return centre.next_day(by_upt, truth, OPTIONS)


def records(by_upt: centre.Records) -> dict[tuple[str, str], dict[str, Any]]:
    return {(u, p.inmate_id): p.raw for u, ps in by_upt.items() for p in ps}


def test_the_generator_holds_nobody_beyond_the_authorised_period() -> None:
    by_upt = population.generate(SMALL, population.Options(as_of=DAY, total=5_000, seed=9))
    tahanan = [p.raw for ps in by_upt.values() for p in ps if p.raw["register"] in population.TAHANAN]
    assert len(tahanan) > 500
    findings = [centre.finding(r, DAY) for r in tahanan if r.get("detention_start")]
    assert not [f for f in findings if f is not None and f.kind == "overstaying"]
    extended = [r for r in tahanan if r.get("extensions")]
    assert 0 < len(extended) < len(tahanan)  # those past their first order, and only those
    for r in extended:
        (letter,) = r["extensions"]
        assert letter["until"] == r["detention_expiry"]
        assert letter["granted_by"] == population.EXTENDED_BY[r["register"]]


def test_the_plants_have_the_shares_asked(day: tuple[centre.Records, centre.DayTruth]) -> None:
    by_upt, truth = day
    total = truth.records
    assert total == 20_000
    assert len(truth.transfers) == round(OPTIONS.transfer_share * total)
    assert len(truth.releases) == round(OPTIONS.release_share * total)
    assert len(truth.admissions) == round(OPTIONS.admission_share * total)
    assert len(truth.overstayers) == round(OPTIONS.overstay_share * total)
    raw = records(by_upt)
    assert {raw[k]["custody_status"] for k in truth.releases} == {"released"}
    assert {raw[k]["entry_date"] for k in truth.admissions} == {DAY.isoformat()}
    planted = [*truth.releases, *truth.admissions, *(t[:2] for t in truth.transfers),
               *(t[:2] for t in truth.overstayers)]  # fmt: skip
    assert len(planted) == len(set(planted))  # no record carries two plants
    expected = truth.expected
    assert {k[:2] for k in expected.items["release"]} == set(truth.releases)
    assert {(u, i, str(d)) for u, i, d in truth.overstayers} == expected.items["overstaying"]
    assert sum(line["admissions"] for line in expected.lines.values()) == len(truth.admissions)


def test_transfers_keep_the_nik_and_identity(day: tuple[centre.Records, centre.DayTruth]) -> None:
    by_upt, truth = day
    raw = records(by_upt)
    for from_upt, inmate_id, to_upt, new_id in truth.transfers:
        origin, arrival = raw[(from_upt, inmate_id)], raw[(to_upt, new_id)]
        assert from_upt != to_upt
        assert new_id != inmate_id
        assert (origin["custody_status"], arrival["custody_status"]) == ("transferred_out", "transferred_in")
        assert arrival["entry_date"] == DAY.isoformat()
        for name in ("nik", "full_name", "birth_date", "sex", "mother_name"):
            assert origin[name] == arrival[name]
    assert {(u, i, to) for u, i, to, _ in truth.transfers} == truth.expected.items["transfer"]


def test_the_silent_upt_sends_nothing(day: tuple[centre.Records, centre.DayTruth]) -> None:
    by_upt, truth = day
    assert by_upt[truth.silent_upt] == []
    assert truth.silent_upt not in centre.snapshots(by_upt, truth.silent_upt)
    assert truth.expected.lines[truth.silent_upt]["applied"] == "not_sent"
    assert all(to != truth.silent_upt for _, _, to, _ in truth.transfers)


def test_the_next_day_changes_about_one_percent_and_halves_one_upt(
    day: tuple[centre.Records, centre.DayTruth], following: tuple[centre.Records, centre.NextDayTruth]
) -> None:
    before, truth = day
    after, nxt = following
    assert nxt.day == DAY + timedelta(days=1)
    assert 0.007 <= nxt.changed / truth.records <= 0.013
    assert {kind for _, _, kind in nxt.field_changes} == {"extension", "register_number"}
    old, new = records(before), records(after)
    departed = [t[:2] for t in nxt.transfers] + list(nxt.vanished)
    assert departed
    assert not set(departed) & set(new)
    assert all(new[(to, i)]["nik"] == old[(u, o)]["nik"] for u, o, to, i in nxt.transfers)
    assert set(nxt.dropped) == {
        k for k, r in old.items() if r["custody_status"] in ("released", "transferred_out")
    }
    assert not set(nxt.dropped) & set(new)
    still = [p.inmate_id for p in before[nxt.held_upt] if (nxt.held_upt, p.inmate_id) not in set(nxt.dropped)]
    assert len(after[nxt.held_upt]) == len(still) // 2
    assert {p.inmate_id for p in after[nxt.held_upt]} <= set(still)
    assert after[truth.silent_upt] == []
    expected = nxt.expected
    assert expected.items["held"] == {(nxt.held_upt, "-")}
    assert {k[:2] for k in expected.items["in_transit"]} == set(nxt.vanished)
    assert {(u, i, to) for u, i, to, _ in nxt.transfers} == expected.items["transfer"]
    # Only the planted overstayers (a day older) and the held UPT's kept state may overstay.
    overstaying = {k[:2] for k in expected.items["overstaying"] if k[0] != nxt.held_upt}
    assert overstaying == {(u, i) for u, i, _ in truth.overstayers if u != nxt.held_upt}


def test_days_chain_each_with_its_own_changes_and_no_inmate_id_twice(
    following: tuple[centre.Records, centre.NextDayTruth],
) -> None:
    by_upt, truth = following
    seen_transfers: set[tuple[str, str, str, str]] = set(truth.transfers)
    for k in (2, 3):
        by_upt, truth = centre.next_day(by_upt, truth, OPTIONS)
        assert truth.day == DAY + timedelta(days=k)
        for upt, records in by_upt.items():
            ids = [p.inmate_id for p in records]
            assert len(ids) == len(set(ids)), upt
        assert truth.transfers
        assert not set(truth.transfers) & seen_transfers
        seen_transfers |= set(truth.transfers)
        assert all(f"-M{k}-" in new for _, _, _, new in truth.transfers)
        assert truth.admissions
        assert all(f"-N{k}-" in i for _, i in truth.admissions)
        assert truth.expected.items["transfer"] == {(u, i, to) for u, i, to, _ in truth.transfers}
        assert by_upt[truth.silent_upt] == []
        assert truth.expected.items["held"] >= {(truth.held_upt, "-")}


@pytest.mark.parametrize("register", REGISTERS)
@pytest.mark.parametrize("beyond_law", [False, True])
@pytest.mark.parametrize(
    ("days_over", "kind", "days"),
    [(30, "overstaying", 30), (1, "overstaying", 1), (0, "notice_3", 0), (-3, "notice_3", 3),
     (-4, "notice_10", 4), (-10, "notice_10", 10), (-11, None, 0)],
)  # fmt: skip
def test_a_planted_overstay_is_what_decide_detention_finds_at_the_boundaries(
    register: str, beyond_law: bool, days_over: int, kind: str | None, days: int
) -> None:
    record = inmate(register=register, sentence_days=None)
    centre.overstay(record, DAY, days_over, beyond_law=beyond_law)
    start = date.fromisoformat(record["detention_start"])
    granted = sum(e["days"] for e in record["extensions"])
    found = decide_detention(centre.RULES, register, start, granted, DAY)
    assert (found and found.kind) == kind
    if found is not None:
        assert (found.days_over, found.days_left) == ((days, 0) if kind == "overstaying" else (0, days))
        assert found.authorised_until == DAY - timedelta(days=days_over)
    assert centre.finding(record, DAY) == found
    if beyond_law:  # the letters grant more than the law allows: the excess does not count
        assert date.fromisoformat(record["extensions"][-1]["until"]) > DAY - timedelta(days=days_over)


def test_the_model_follows_the_runs_rules_day_by_day() -> None:
    a, b = "upt-a", "upt-b"
    model = centre.Central((a, b, "upt-c"))
    at_a = [inmate(inmate_id=f"A-{i}") for i in range(20)]
    at_b = [inmate(inmate_id=f"B-{i}") for i in range(5)]
    at_a[19]["entry_date"] = DAY.isoformat()
    first = model.run(DAY, {a: at_a, b: at_b})
    # A UPT's first snapshot registers who is there: only the entry dated on the day is an admission.
    assert (first.lines[a]["admissions"], first.lines[a]["inmates"], first.lines[b]["admissions"]) == (
        1,
        20,
        0,
    )
    assert first.lines["upt-c"]["applied"] == "not_sent"
    day2 = DAY + timedelta(days=1)
    moved = at_a[2] | {"inmate_id": "B-from-A"}
    second = model.run(day2, {a: at_a[3:], b: [*at_b, moved]})
    assert (second.lines[a]["transfers_out"], second.lines[a]["in_transit"]) == (1, 2)
    assert (second.lines[b]["transfers_in"], second.lines[b]["admissions"], second.lines[b]["inmates"]) == (
        1,
        0,
        6,
    )
    assert second.items["transfer"] == {(a, "A-2", b)}
    assert second.items["in_transit"] == {(a, "A-0", day2.isoformat()), (a, "A-1", day2.isoformat())}
    day10 = DAY + timedelta(days=9)
    third = model.run(day10, {a: at_a[3:], b: at_b[:2]})
    assert third.items["release"] == {(a, "A-0", "not_seen_elsewhere"), (a, "A-1", "not_seen_elsewhere")}
    assert (third.lines[b]["applied"], third.lines[b]["inmates"], third.lines[b]["previous"]) == (
        "held",
        2,
        6,
    )
    assert third.items["held"] == {(b, "-")}
    assert model.active()[b] == 6  # the held snapshot changed nothing

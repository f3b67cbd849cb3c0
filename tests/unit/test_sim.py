"""The simulated day is deterministic and its ground truth is coherent."""

from datetime import date

from shared.settings import PROJECT_ROOT
from shared.units import load_units
from sim import population

UNITS = load_units(PROJECT_ROOT / "deploy" / "units")
OPTIONS = population.Options(as_of=date(2026, 11, 20), total=20_000, seed=7)


def test_inmates_are_allocated_to_upts_summing_exactly_to_the_total() -> None:
    counts = population.allocate(UNITS, 275_600)
    assert sum(counts.values()) == 275_600
    assert min(counts.values()) > 0


def test_the_same_seed_gives_the_same_day() -> None:
    a = population.generate(UNITS, OPTIONS)
    b = population.generate(UNITS, OPTIONS)
    assert [p.raw for p in a["upt-3273-1"]] == [p.raw for p in b["upt-3273-1"]]


def test_planted_faults_match_the_requested_shares_and_valid_niks_are_valid() -> None:
    day = population.generate(UNITS, OPTIONS)
    everyone = [p for records in day.values() for p in records]
    refused = [p for p in everyone if not p.accepted]
    assert len(everyone) == 20_000
    assert abs(len(refused) - 20_000 * (OPTIONS.invalid_nik_share + OPTIONS.invalid_record_share)) <= 2
    assert sum(1 for p in everyone if p.raw.get("nik") is None) == round(20_000 * OPTIONS.missing_nik_share)
    assert population.check_nik_sample(day, OPTIONS.as_of) == 0


def test_shared_niks_come_in_pairs_of_different_people_within_and_across_upts() -> None:
    day = population.generate(UNITS, OPTIONS)
    flagged = population.expected_flagged(day)
    assert len(flagged) == 2 * round(20_000 * OPTIONS.shared_nik_share)
    by_key = {(upt, p.inmate_id): p for upt, records in day.items() for p in records}
    same_upt = sum(1 for upt, i in flagged if (by_key[(upt, i)].shares_nik_with or ("",))[0] == upt)
    assert 0 < same_upt < len(flagged)
    for key in flagged:
        mine, other = by_key[key], by_key[by_key[key].shares_nik_with]  # type: ignore[index]
        assert mine.raw["nik"] == other.raw["nik"]
        assert (mine.raw["full_name"], mine.raw["birth_date"]) != (
            other.raw["full_name"],
            other.raw["birth_date"],
        )

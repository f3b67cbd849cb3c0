"""Demographic linkage: tolerant Indonesian names, blocking, Fellegi–Sunter scores, NIK checks, and the
simulator's truth."""

from __future__ import annotations

import itertools
from dataclasses import replace
from datetime import date
from typing import Any

import pytest

from bench.linkage import evaluate
from services.dedup.domain import linkage as lk
from services.dedup.domain.linkage import (
    DEFAULT_MODEL,
    LINK_THRESHOLD,
    NIK_BIRTH_DATE_DIFFERS,
    NIK_NAME_DIFFERS,
    NIK_NOT_IN_POPULATION,
    NIK_SEX_DIFFERS,
    REVIEW_FLOOR,
    DateLevel,
    NameLevel,
    Person,
    blocking_keys,
    canonical_tokens,
    check_claimed_nik,
    compare_names,
    name_key,
    rank,
    score,
)
from shared import nik as nik_rules
from sim import linkage as simlink

BORN = date(1985, 3, 12)
HOLDER = Person(
    nik="3273011203850001",
    full_name="JOKO SUSILO WIBOWO",
    sex="L",
    birth_date=BORN,
    birth_place="BANDUNG",
    mother_name="SITI AMINAH",
)


WRITTEN = Person(
    nik=None,
    full_name="Joko Susilo Wibowo",
    sex="L",
    birth_date=BORN,
    birth_place="Bandung",
    mother_name="Siti Aminah",
)


def inmate(full_name: str = "Joko Susilo Wibowo", **kw: Any) -> Person:
    """An inmate without a NIK, by default HOLDER as a UPT would write them."""
    return replace(WRITTEN, full_name=full_name, **kw)


# --- names -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("Djoko Soesilo", "Joko Susilo"),
        ("Jusuf", "Yusuf"),
        ("Tjahjo", "Cahyo"),
        ("Njoman", "Nyoman"),
        ("Sjahrir", "Syahrir"),
        ("Chairul", "Khairul"),
        ("Aditja", "Aditya"),
        ("Soeharto", "Suharto"),
        ("Widjastuti", "Widyastuti"),
        ("Abdullah", "Abdulah"),
        ("Rizky", "Rizki"),
        ("Taufiq", "Taufik"),
    ],
)
def test_old_and_new_spellings_share_one_key(old: str, new: str) -> None:
    assert name_key(old) == name_key(new)
    assert compare_names(old, new) is NameLevel.EXACT


def test_the_key_does_not_merge_names_that_differ() -> None:
    assert name_key("Joko") != name_key("Jaka")
    assert name_key("Budi Santoso") != name_key("Budi Santosa")
    assert compare_names("Joko Susilo", "Agus Salim") is NameLevel.DISAGREE


@pytest.mark.parametrize(
    "written",
    [
        "Drs. H. Bambang Santoso, S.H., M.M.",
        "Prof. Dr. Ir. Bambang Santoso, M.Si.",
        "Bapak Bambang Santoso, S.Pd.",
        "Raden Bambang Santoso, A.Md.",
        "K.H. Bambang Santoso",
        "Ustadz Bambang Santoso S.Kom.",
        "bambang  SANTOSO",
    ],
)
def test_titles_and_honorifics_are_dropped(written: str) -> None:
    assert canonical_tokens(written) == ("bambang", "santoso")


def test_honorific_letters_are_dropped_only_in_front_where_elsewhere_they_are_initials() -> None:
    assert canonical_tokens("H. Budi") == ("budi",)
    assert canonical_tokens("Budi H.") == ("budi", "h")
    assert canonical_tokens("Hj. St. Aminah") == ("siti", "aminah")
    assert canonical_tokens("Cut Nyak Dien") == canonical_tokens("Nyak Dien")


@pytest.mark.parametrize(
    "variant",
    [
        "Muhammad",
        "Muhamad",
        "Mohammad",
        "Mohamad",
        "Mohammed",
        "Muhammed",
        "Mochammad",
        "Mokhamad",
        "Moch.",
        "Moh.",
        "Muh.",
        "Mhd.",
        "M.",
        "Moehammad",
    ],
)
def test_muhammad_variants_are_one_token(variant: str) -> None:
    assert canonical_tokens(f"{variant} Rizki") == (lk.MUHAMMAD, "rizki")
    assert compare_names(f"{variant} Rizki", "Muhammad Rizki") is NameLevel.EXACT


def test_bin_and_the_fathers_name_are_dropped_but_not_a_leading_word() -> None:
    assert canonical_tokens("Ahmad Fauzi bin Abdullah") == ("ahmad", "fauzi")
    assert canonical_tokens("Siti Aminah binti H. Yusuf") == ("siti", "aminah")


def test_name_levels() -> None:
    assert compare_names("Susilo Joko", "Joko Susilo") is NameLevel.EXACT  # order
    assert compare_names("Joko Susilo Wibowo", "Joko Susilo Wibowi") is NameLevel.HIGH  # one typo
    assert compare_names("Joko Suislo", "Joko Susilo") is NameLevel.HIGH  # transposition
    assert compare_names("Joko Wibowo", "Joko Susilo Wibowo") is NameLevel.SUBSET  # dropped second name
    assert compare_names("Joko S. Wibowo", "Joko Susilo Wibowo") is NameLevel.SUBSET  # initial
    assert compare_names("Sukarno", "Sukarno Wijaya") is NameLevel.SUBSET  # mononym
    assert compare_names("Joko Hartono", "Joko Susilo") is NameLevel.LOW
    assert compare_names("Budi", "Agus") is NameLevel.DISAGREE
    assert compare_names("Dedi Saputra", "Deni Saputra") is NameLevel.LOW  # four letters: no typo allowed


def test_balinese_birth_order_names_are_weak() -> None:
    assert compare_names("I Wayan Sudarsana", "Wayan Sudarsana") is NameLevel.EXACT
    assert compare_names("I Made Sudarsana", "I Wayan Sudarsana") is NameLevel.EXACT
    assert compare_names("I Made Sudarsana", "I Made Artawan") is NameLevel.DISAGREE
    assert compare_names("Made", "I Made Sudarsana") is NameLevel.SUBSET


# --- scores ------------------------------------------------------------------------------------------------


def test_the_same_person_written_with_every_tolerated_variant_is_a_link() -> None:
    for written in (
        "Drs. Djoko Soesilo Wibowo, S.H.",
        "Joko Susilo",
        "Joko S. Wibowo",
        "Wibowo Joko Susilo",
        "Joko Susilo Wibowo bin Ahmad",
    ):
        s = score(inmate(written), HOLDER)
        assert s.weight >= LINK_THRESHOLD, written
        assert s.probability > 0.9, written


def test_different_people_with_the_same_birth_date_score_low() -> None:
    other = inmate("Agus Salim", birth_place="Medan", mother_name="Rohani")
    s = score(other, HOLDER)
    assert s.comparison.birth_date is DateLevel.EXACT
    assert s.weight < REVIEW_FLOOR
    assert s.probability < 0.001
    # a namesake born another day of the same year, elsewhere, to another mother
    namesake = inmate(birth_date=date(1985, 8, 30), birth_place="Medan", mother_name="Rohani")
    assert score(namesake, HOLDER).weight < REVIEW_FLOOR


def test_a_swapped_day_and_month_or_a_year_off_is_tolerated_but_weighs_less_than_the_exact_date() -> None:
    exact = score(inmate(), HOLDER)
    swapped = score(inmate(birth_date=date(1985, 12, 3)), HOLDER)
    year_off = score(inmate(birth_date=date(1986, 3, 12)), HOLDER)
    other = score(inmate(birth_date=date(1985, 7, 1)), HOLDER)
    assert swapped.comparison.birth_date is DateLevel.SWAPPED
    assert year_off.comparison.birth_date is DateLevel.NEAR_YEAR
    assert other.comparison.birth_date is DateLevel.DISAGREE
    assert exact.weight > swapped.weight >= LINK_THRESHOLD
    assert exact.weight > year_off.weight >= LINK_THRESHOLD
    assert min(swapped.weight, year_off.weight) > other.weight


def test_missing_fields_weigh_nothing_and_aliases_are_tried() -> None:
    bare = score(inmate(birth_place=None, mother_name=None), HOLDER)
    weights = DEFAULT_MODEL.partial_weights(bare.comparison)
    assert weights["birth_place"] == 0.0
    assert weights["mother_name"] == 0.0
    nickname = score(inmate("Gondrong", aliases=("Joko Susilo Wibowo",)), HOLDER)
    assert nickname.comparison.name is NameLevel.EXACT


def test_probability_follows_the_prior() -> None:
    big = DEFAULT_MODEL.with_prior(270_000_000, 0.8)
    s = score(inmate(), HOLDER)
    assert big.probability(s.weight) < s.probability
    assert DEFAULT_MODEL.probability(0.0) < 1e-4  # a weight of 0 is no evidence: the prior stays tiny


def test_rank_orders_best_first_applies_the_floor_and_the_limit() -> None:
    variant = replace(HOLDER, nik="3273011203850002", full_name="JOKO WIBOWO")  # a second name dropped
    namesake = replace(HOLDER, nik="3273011208850003", birth_date=date(1985, 8, 12))
    stranger = replace(HOLDER, nik="3273012507900004", full_name="AGUS SALIM", birth_date=date(1990, 7, 25))
    ranked = rank(inmate(), [stranger, namesake, variant, HOLDER], floor=REVIEW_FLOOR)
    assert [s.candidate.nik for s in ranked] == [HOLDER.nik, variant.nik, namesake.nik]
    assert all(a.weight >= b.weight for a, b in itertools.pairwise(ranked))
    assert all(s.weight >= REVIEW_FLOOR for s in ranked)
    assert [s.candidate.nik for s in rank(inmate(), [stranger, namesake, HOLDER], floor=0, limit=1)] == [
        HOLDER.nik
    ]
    assert rank(inmate(), [HOLDER], floor=1_000.0) == []


def test_a_link_needs_the_threshold_and_some_agreement_of_names() -> None:
    assert lk.probable_link(rank(inmate(), [HOLDER], floor=REVIEW_FLOOR)) is not None
    weak = rank(inmate("Joko"), [HOLDER], floor=0)
    assert lk.probable_link(weak, threshold=weak[0].weight + 1) is None
    # a twin: same date, place and mother, another name
    twin = rank(inmate("Agus Salim"), [HOLDER], floor=0)
    assert twin[0].weight >= LINK_THRESHOLD
    assert lk.probable_link(twin) is None


# --- blocking ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "variant",
    [
        inmate("Drs. H. Djoko Soesilo Wibowo, S.H."),  # old spelling and titles
        inmate("Joko Susilo", birth_date=date(1985, 12, 3)),  # dropped name, day and month swapped
        inmate("Joko Susilo Wibowo", birth_date=date(1984, 3, 12)),  # a year off
        inmate("Jkoo Susilo Wibowo", birth_date=date(1986, 3, 12)),  # a typo and a year off
        inmate("Wibowo", birth_date=date(1985, 12, 3), birth_place=None, mother_name=None),
        inmate("Joko Susilo Wibowo", birth_date=date(1979, 6, 30)),  # a wrong date: the mother's name
        inmate("Gondrong", aliases=("Joko Susilo",)),
    ],
)
def test_the_blocking_keys_of_a_variant_meet_the_originals(variant: Person) -> None:
    assert blocking_keys(variant) & blocking_keys(HOLDER)


def test_blocking_keys_need_no_nik_and_keep_apart_unrelated_people() -> None:
    assert blocking_keys(HOLDER) == blocking_keys(replace(HOLDER, nik=None))
    stranger = inmate("Agus Salim", birth_date=date(1990, 7, 25), birth_place="Medan", mother_name="Rohani")
    assert not blocking_keys(stranger) & blocking_keys(HOLDER)
    assert all(len(k) <= 64 for k in blocking_keys(HOLDER))


def test_very_common_tokens_do_not_make_blocks_when_a_name_has_others() -> None:
    keys = blocking_keys(inmate("Muhammad Rizki"))
    assert any("rizki" in k for k in keys)
    assert not any(k.startswith(("tmuhamad", "mmuh")) for k in keys)
    assert any(k.startswith("tmuhamad") for k in blocking_keys(inmate("Muhammad")))


# --- checking a claimed NIK ----------------------------------------------------------------------------------


def test_check_claimed_nik_codes() -> None:
    claim = inmate(nik=HOLDER.nik)
    assert check_claimed_nik(claim, None) == [NIK_NOT_IN_POPULATION]
    assert check_claimed_nik(claim, HOLDER) == []
    for tolerated in (
        "Drs. Djoko Soesilo",
        "Joko S. Wibowo",
        "Jkoo Susilo Wibowo",
        "Moch. Joko Susilo Wibowo",
    ):
        assert check_claimed_nik(inmate(tolerated, nik=HOLDER.nik), HOLDER) == [], tolerated
    assert check_claimed_nik(inmate("Agus Salim"), HOLDER) == [NIK_NAME_DIFFERS]
    assert check_claimed_nik(inmate("Joko Hartono"), HOLDER) == [NIK_NAME_DIFFERS]
    assert check_claimed_nik(inmate(sex="P"), HOLDER) == [NIK_SEX_DIFFERS]
    assert check_claimed_nik(inmate(birth_date=date(1985, 12, 3)), HOLDER) == [NIK_BIRTH_DATE_DIFFERS]
    assert check_claimed_nik(inmate("Siti Rahma", sex="P", birth_date=date(1991, 1, 2)), HOLDER) == [
        NIK_NAME_DIFFERS,
        NIK_SEX_DIFFERS,
        NIK_BIRTH_DATE_DIFFERS,
    ]
    assert check_claimed_nik(inmate("Gondrong", aliases=("Joko Susilo Wibowo",)), HOLDER) == []


# --- the simulator -----------------------------------------------------------------------------------------


def test_old_spelling_in_the_simulator_is_the_reverse_of_the_canonical_key() -> None:
    assert simlink.to_old_spelling("Joko Susilo") == "Djoko Soesilo"
    assert simlink.to_old_spelling("Yusuf") == "Joesoef"
    assert simlink.to_old_spelling("CAHYO") == "TJAHJO"
    assert simlink.to_old_spelling("Nyoman Syahrul") == "Njoman Sjahroel"
    assert simlink.to_old_spelling("Ferry") == "Ferry"  # a final y stays
    for name in ("Joko Susilo", "Yusuf Khairul", "Cahyo Aditya", "Nyoman Syahrul", "Wahyuningsih"):
        assert name_key(simlink.to_old_spelling(name)) == name_key(name)


SMALL = simlink.Options(population=20_000, inmates=800, seed=3)


@pytest.fixture(scope="module")
def world() -> simlink.World:
    return simlink.generate(SMALL)


def test_the_simulator_is_deterministic_and_its_niks_are_well_formed(world: simlink.World) -> None:
    again = simlink.generate(SMALL)
    assert again.inmates[:50] == world.inmates[:50]
    assert again.population[:50] == world.population[:50]
    niks = [p.nik for p in world.population]
    assert len(set(niks)) == len(niks)
    for p in world.population[:2_000]:
        assert p.nik is not None
        check = nik_rules.check(p.nik, today=SMALL.as_of)
        assert check.valid, p.nik
        assert check.birth_date == p.birth_date
        assert str(check.sex) == p.sex
    population = set(niks)
    for i in world.inmates:
        if i.kind is simlink.Kind.UNKNOWN_NIK:
            assert i.person.nik not in population
        if i.kind is simlink.Kind.STRANGER:
            assert i.truth_nik is None
            assert i.person.nik is None
        if i.kind is simlink.Kind.LINKABLE:
            assert i.truth_nik in population
            assert i.person.nik is None


def test_the_simulator_plants_common_names_and_hard_negatives(world: simlink.World) -> None:
    keys = [name_key(p.full_name) for p in world.population]
    assert keys.count(name_key("Muhammad Rizki")) >= 20
    assert keys.count(name_key("Siti Aminah")) >= 20
    hard = [i for i in world.inmates if i.hard_negative]
    assert len(hard) >= 20
    # most keep their namesake's name exactly (the rest carry the usual noise)
    assert sum(name_key(i.person.full_name) in set(keys) for i in hard) >= 0.7 * len(hard)


def test_linking_a_small_simulated_day_meets_the_targets(world: simlink.World) -> None:
    f = evaluate(world, sweep=False)
    assert f["blocking_recall_pct"] >= 97
    assert f["link_precision_pct"] >= 95
    assert f["link_recall_pct"] >= 90
    assert f["candidate_list_recall_pct"] >= 95
    assert f["false_link_rate_non_matches_pct"] <= 3
    assert f["nik_check_code_sets_exact_pct"] >= 97

"""Verdicts from search results."""

from __future__ import annotations

from typing import Any

import pytest

from services.dedup.domain.biometrics import Thresholds
from services.dedup.domain.verdicts import Candidate, Finding, decide
from shared.ektp import EktpStatus

LIMITS = Thresholds(1_000_000, duplicate=23.0, adjudicate=18.4)
NIK = "3273011503850002"


def verdict(matches: list[Candidate], **kw: Any) -> tuple[EktpStatus, Finding, list[str]]:
    args: dict[str, Any] = {
        "nik": NIK,
        "usable_modalities": 13,
        "nik_contradicts": False,
        "matches": matches,
        "nik_holder": None,
        "thresholds": LIMITS,
    } | kw
    v = decide(**args)
    return v.status, v.finding, [c.nik for c in v.candidates]


def test_a_match_under_another_nik_is_a_one_to_one_duplicate() -> None:
    got = verdict([Candidate("3201010101900001", 140.0, 13), Candidate("x", -40.0, 13)])
    assert got == (EktpStatus.DUPLICATE_RECORD, Finding.ONE_TO_ONE, ["3201010101900001"])


def test_matches_under_two_other_niks_are_one_to_many() -> None:
    got = verdict([Candidate("a", 90.0, 13), Candidate("b", 120.0, 13), Candidate("c", 1.0, 13)])
    assert got == (EktpStatus.DUPLICATE_RECORD, Finding.ONE_TO_MANY, ["b", "a"])


def test_the_same_person_under_the_same_nik_was_enrolled_before() -> None:
    got = verdict([Candidate(NIK, 150.0, 13)], nik_holder=Candidate(NIK, 150.0, 13))
    assert got[:2] == (EktpStatus.DUPLICATE_RECORD, Finding.ALREADY_ENROLLED)


def test_a_nik_held_by_someone_else_biometrically_is_a_duplicate_nik() -> None:
    got = verdict([Candidate("y", -3.0, 13)], nik_holder=Candidate(NIK, -80.0, 13))
    assert got == (EktpStatus.DUPLICATE_RECORD, Finding.DUPLICATE_NIK, [NIK])


@pytest.mark.parametrize("llr", [18.4, 20.0, 22.99])
def test_the_grey_zone_goes_to_a_person(llr: float) -> None:
    got = verdict([Candidate("z", llr, 3), Candidate("w", -5.0, 13)])
    assert got == (EktpStatus.ADJUDICATE_RECORD, Finding.GREY_ZONE, ["z"])


def test_a_grey_nik_holder_is_adjudicated_not_called_a_duplicate_nik() -> None:
    got = verdict([], nik_holder=Candidate(NIK, 19.0, 2))
    assert got[:2] == (EktpStatus.ADJUDICATE_RECORD, Finding.GREY_ZONE)


def test_nobody_close_is_unique() -> None:
    got = verdict([Candidate("q", 18.39, 13), Candidate("r", -20.0, 13)])
    assert got[:2] == (EktpStatus.PRINT_READY_RECORD, Finding.UNIQUE)
    assert verdict([])[:2] == (EktpStatus.PRINT_READY_RECORD, Finding.UNIQUE)


def test_nothing_to_compare_is_a_search_failure_never_unique() -> None:
    got = verdict([], usable_modalities=0)
    assert got[:2] == (EktpStatus.SEARCH_FAILURE_AT_CENTRAL, Finding.NOTHING_TO_COMPARE)


def test_a_nik_that_contradicts_the_packet_needs_validation() -> None:
    got = verdict([Candidate("a", 2.0, 13)], nik_contradicts=True)
    assert got[:2] == (EktpStatus.REQUEST_VALIDATION, Finding.NIK_CONTRADICTS_PACKET)


def test_a_duplicate_outweighs_a_contradicting_nik() -> None:
    got = verdict([Candidate("a", 150.0, 13)], nik_contradicts=True)
    assert got[:2] == (EktpStatus.DUPLICATE_RECORD, Finding.ONE_TO_ONE)

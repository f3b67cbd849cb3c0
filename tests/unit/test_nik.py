"""The NIK rules of DESIGN section 6, against the Kemendagri current and retired region codes."""

from datetime import date

import pytest

from shared import nik
from shared.nik import Sex

TODAY = date(2026, 11, 21)


def codes(value: str, today: date = TODAY) -> list[str]:
    return [p.code for p in nik.check(value, today=today).problems]


def test_a_well_formed_male_nik_is_valid_and_says_what_it_encodes() -> None:
    result = nik.check("3273011503850007", today=TODAY)
    assert result.valid
    assert result.problems == ()
    assert (result.province, result.regency, result.district) == ("32", "3273", "01")
    assert result.birth_date == date(1985, 3, 15)
    assert result.sex is Sex.MALE
    assert result.serial == 7


def test_women_have_forty_added_to_the_day() -> None:
    result = nik.check("3273015503850007", today=TODAY)
    assert result.valid
    assert result.sex is Sex.FEMALE
    assert result.birth_date == date(1985, 3, 15)


@pytest.mark.parametrize("day_code", ["00", "32", "40", "72", "81", "91"])
def test_day_codes_outside_the_male_and_female_ranges_are_refused(day_code: str) -> None:
    assert codes(f"327301{day_code}0385" + "0007") == ["NIK_DATE_INVALID"]


def test_the_twenty_ninth_of_february_exists_only_in_leap_years() -> None:
    assert nik.check("3273012902000001", today=TODAY).birth_date == date(2000, 2, 29)
    assert nik.check("3273016902960001", today=TODAY).birth_date == date(1996, 2, 29)  # a woman born 1996
    assert codes("3273012902010001") == ["NIK_DATE_INVALID"]  # neither 1901 nor 2001 is a leap year


@pytest.mark.parametrize("value", ["3273013102850001", "3273013104850001", "3273011513850001"])
def test_dates_that_do_not_exist_are_refused(value: str) -> None:
    assert codes(value) == ["NIK_DATE_INVALID"]


def test_the_century_is_the_latest_one_that_is_not_in_the_future() -> None:
    assert nik.check("3273010101200001", today=TODAY).birth_date == date(2020, 1, 1)
    # 31 Dec 2026 has not happened yet on 21 Nov 2026, so it can only be 1926.
    assert nik.check("3273013112260001", today=TODAY).birth_date == date(1926, 12, 31)


def test_serial_0000_is_refused() -> None:
    assert codes("3273011503850000") == ["NIK_SERIAL_ZERO"]


@pytest.mark.parametrize(
    "value", ["327301150385000A", "3273-01150385OOO7", "３２７３０１１５０３８５０００７", "32730115038500٠7"]
)
def test_anything_but_ascii_digits_is_refused(value: str) -> None:
    assert codes(value) == ["NIK_NOT_DIGITS"]


@pytest.mark.parametrize("value", ["327301150385000", "32730115038500071", ""])
def test_a_nik_has_exactly_sixteen_digits(value: str) -> None:
    assert codes(value) == (["NIK_LENGTH"] if value else ["NIK_NOT_DIGITS"])


def test_spaces_dots_and_dashes_typed_inside_a_nik_are_ignored() -> None:
    assert nik.check("3273.0115-0385 0007", today=TODAY).valid


def test_an_unknown_province_is_refused() -> None:
    assert codes("1001011503850007") == ["NIK_PROVINCE_UNKNOWN"]


def test_retired_papua_codes_stay_valid_for_life() -> None:
    # Mimika kept 9109 for existing residents after it moved to Papua Tengah (9404).
    assert nik.check("9109011503850007", today=TODAY).valid
    assert nik.check("9404011503850007", today=TODAY).valid
    # Kota Sorong, Papua Barat before Papua Barat Daya (9671).
    assert nik.check("9271011503850007", today=TODAY).valid


def test_an_unlisted_regency_is_a_warning_on_a_nik_that_may_predate_our_code_history() -> None:
    # 6404 (Bulungan) moved to Kalimantan Utara in 2012; NIKs of people born before 2015 may carry it.
    result = nik.check("6404011503850007", today=TODAY)
    assert result.valid
    assert [p.code for p in result.problems] == ["NIK_REGION_UNVERIFIED"]
    assert codes("6404011503180007") == ["NIK_REGENCY_UNKNOWN"]  # born 2018: cannot carry a pre-2015 code


def test_every_problem_is_reported_not_only_the_first() -> None:
    assert sorted(codes("1001013102850000")) == [
        "NIK_DATE_INVALID",
        "NIK_PROVINCE_UNKNOWN",
        "NIK_SERIAL_ZERO",
    ]


def test_sex_and_birth_date_contradictions_are_warnings_not_refusals() -> None:
    result = nik.check("3273015503850007", today=TODAY)  # a woman born 15 Mar 1985
    found = nik.contradictions(result, sex=Sex.MALE, birth_date=date(1985, 3, 16))
    assert [p.code for p in found] == ["NIK_SEX_MISMATCH", "NIK_BIRTH_DATE_MISMATCH"]
    assert all(p.severity.value == "warning" for p in found)
    assert nik.contradictions(result, sex=Sex.FEMALE, birth_date=date(1985, 3, 15)) == ()


def test_every_nik_problem_has_a_reason_in_both_languages() -> None:
    assert len({p.code for p in nik.NIK_PROBLEMS}) == len(nik.NIK_PROBLEMS)
    for p in nik.NIK_PROBLEMS:
        assert p.reason_id
        assert p.reason_en
        assert p.reason_id != p.reason_en


def test_the_region_data_covers_all_provinces_and_regencies() -> None:
    regions = nik.load_regions()
    assert len(regions.provinces) == 38
    assert len(regions.regencies) == 514
    assert len(regions.retired_regencies) == 26
    assert not regions.regencies & regions.retired_regencies


def test_masking_keeps_four_digits_at_each_end() -> None:
    assert nik.mask("3201014101900001") == "3201********0001"
    assert nik.mask("1234") == "****"

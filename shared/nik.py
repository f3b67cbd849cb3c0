"""NIK (Nomor Induk Kependudukan) rules over the Kemendagri current and retired region codes."""

from __future__ import annotations

import csv
import enum
from dataclasses import dataclass, field
from datetime import date
from functools import cache
from importlib import resources

from shared.problems import Problem, Severity

# A NIK keeps its region prefix for life, even after the region was split or renumbered; codes retired
# before 2015 are not in our files, so an unknown regency on an older NIK can only be a warning.
REGION_HISTORY_STARTS = 2015
MAX_AGE_YEARS = 120
_SEPARATORS = str.maketrans("", "", " .-")


NIK_NOT_DIGITS = Problem(
    "NIK_NOT_DIGITS", "NIK hanya boleh berisi angka.", "The NIK may contain digits only."
)
NIK_LENGTH = Problem("NIK_LENGTH", "NIK harus terdiri dari 16 angka.", "The NIK must have exactly 16 digits.")
NIK_PROVINCE_UNKNOWN = Problem(
    "NIK_PROVINCE_UNKNOWN",
    "Kode provinsi pada NIK tidak dikenal.",
    "The province code in the NIK is unknown.",
)
NIK_REGENCY_UNKNOWN = Problem(
    "NIK_REGENCY_UNKNOWN",
    "Kode kabupaten/kota pada NIK tidak dikenal.",
    "The regency/city code in the NIK is unknown.",
)
NIK_REGION_UNVERIFIED = Problem(
    "NIK_REGION_UNVERIFIED",
    "Kode kabupaten/kota pada NIK tidak ada dalam daftar; mungkin kode lama sebelum 2015.",
    "The regency/city code in the NIK is not listed; it may be a code retired before 2015.",
    Severity.WARNING,
)
NIK_DATE_INVALID = Problem(
    "NIK_DATE_INVALID",
    "Tanggal lahir pada NIK tidak mungkin (hari 01-31 untuk laki-laki, 41-71 untuk perempuan).",
    "The birth date in the NIK cannot exist (day 01-31 for men, 41-71 for women).",
)
NIK_SERIAL_ZERO = Problem(
    "NIK_SERIAL_ZERO", "Nomor urut NIK tidak boleh 0000.", "The NIK serial number cannot be 0000."
)
NIK_SEX_MISMATCH = Problem(
    "NIK_SEX_MISMATCH",
    "Jenis kelamin pada NIK berbeda dengan data.",
    "The sex encoded in the NIK differs from the record.",
    Severity.WARNING,
)
NIK_BIRTH_DATE_MISMATCH = Problem(
    "NIK_BIRTH_DATE_MISMATCH",
    "Tanggal lahir pada NIK berbeda dengan data.",
    "The birth date encoded in the NIK differs from the record.",
    Severity.WARNING,
)

NIK_PROBLEMS = (
    NIK_NOT_DIGITS,
    NIK_LENGTH,
    NIK_PROVINCE_UNKNOWN,
    NIK_REGENCY_UNKNOWN,
    NIK_REGION_UNVERIFIED,
    NIK_DATE_INVALID,
    NIK_SERIAL_ZERO,
    NIK_SEX_MISMATCH,
    NIK_BIRTH_DATE_MISMATCH,
)


class Sex(enum.StrEnum):
    MALE = "L"  # laki-laki
    FEMALE = "P"  # perempuan


@dataclass(frozen=True)
class Regions:
    """Kemendagri province and regency codes, current and retired."""

    provinces: frozenset[str]
    regencies: frozenset[str]
    retired_regencies: frozenset[str]

    def knows_regency(self, code: str) -> bool:
        return code in self.regencies or code in self.retired_regencies


@dataclass(frozen=True)
class NikCheck:
    """What a NIK says and which rules it breaks."""

    nik: str
    problems: tuple[Problem, ...] = ()
    province: str | None = None
    regency: str | None = None
    district: str | None = None
    birth_date: date | None = None
    sex: Sex | None = None
    serial: int | None = None

    valid: bool = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "valid", not any(i.severity is Severity.ERROR for i in self.problems))


def _read_codes(name: str, column: str = "kode") -> frozenset[str]:
    text = resources.files("shared.data").joinpath(name).read_text(encoding="utf-8")
    return frozenset(row[column] for row in csv.DictReader(text.splitlines()))


@cache
def load_regions() -> Regions:
    """The region codes shipped inside the package (see shared/data/SOURCES.md)."""
    return Regions(
        provinces=_read_codes("wilayah_provinsi.csv"),
        regencies=_read_codes("wilayah_kabkota.csv"),
        retired_regencies=_read_codes("wilayah_kabkota_historis.csv"),
    )


@cache
def regency_names() -> dict[str, str]:
    """Kab/kota code -> name: today's regencies, and the retired ones under their last name."""
    names: dict[str, str] = {}
    for name in ("wilayah_kabkota_historis.csv", "wilayah_kabkota.csv"):  # today's names win
        text = resources.files("shared.data").joinpath(name).read_text(encoding="utf-8")
        names |= {row["kode"]: row["nama"] for row in csv.DictReader(text.splitlines())}
    return names


def normalise(raw: str) -> str:
    """Strip the spaces, dots and dashes people type inside a NIK."""
    return raw.translate(_SEPARATORS)


def _birth_date(day: int, month: int, yy: int, today: date) -> date | None:
    """The latest existing date in 19YY or 20YY that is not in the future and not older than 120 years."""
    for century in (2000, 1900):
        try:
            candidate = date(century + yy, month, day)
        except ValueError:
            continue
        if candidate <= today and today.year - candidate.year <= MAX_AGE_YEARS:
            return candidate
    return None


def check(raw: str, *, today: date, regions: Regions | None = None) -> NikCheck:
    """Apply every NIK rule; the result lists every problem found, not only the first."""
    regions = regions or load_regions()
    nik = raw if len(raw) == 16 and raw.isdigit() else normalise(raw)
    if not nik.isascii() or not nik.isdigit():
        return NikCheck(nik=raw, problems=(NIK_NOT_DIGITS,))
    if len(nik) != 16:
        return NikCheck(nik=nik, problems=(NIK_LENGTH,))

    problems: list[Problem] = []
    province, regency, district = nik[:2], nik[:4], nik[4:6]
    day_code, month, yy, serial = int(nik[6:8]), int(nik[8:10]), int(nik[10:12]), int(nik[12:])

    sex = Sex.FEMALE if day_code > 40 else Sex.MALE
    day = day_code - 40 if sex is Sex.FEMALE else day_code
    birth = _birth_date(day, month, yy, today) if 1 <= day <= 31 else None
    if birth is None:
        problems.append(NIK_DATE_INVALID)

    if province not in regions.provinces:
        problems.append(NIK_PROVINCE_UNKNOWN)
    elif not regions.knows_regency(regency):
        # Only a NIK that could have been issued before our code history starts may carry an unlisted code.
        old_enough = birth is not None and birth.year < REGION_HISTORY_STARTS
        problems.append(NIK_REGION_UNVERIFIED if old_enough else NIK_REGENCY_UNKNOWN)

    if serial == 0:
        problems.append(NIK_SERIAL_ZERO)

    return NikCheck(
        nik=nik,
        problems=tuple(problems),
        province=province,
        regency=regency,
        district=district,
        birth_date=birth,
        sex=sex if birth is not None else None,
        serial=serial,
    )


def contradictions(result: NikCheck, *, sex: Sex | None, birth_date: date | None) -> tuple[Problem, ...]:
    """Warnings where a valid NIK disagrees with the sex or birth date recorded beside it.

    A NIK is never reissued when a birth date is corrected, so a disagreement is a data-quality flag.
    """
    found: list[Problem] = []
    if result.sex is not None and sex is not None and result.sex is not sex:
        found.append(NIK_SEX_MISMATCH)
    if result.birth_date is not None and birth_date is not None and result.birth_date != birth_date:
        found.append(NIK_BIRTH_DATE_MISMATCH)
    return tuple(found)


def mask(nik: str) -> str:
    """`3201********0001`: enough to tell records apart on a screen, not enough to identify a person."""
    if len(nik) <= 8:
        return "*" * len(nik)
    return nik[:4] + "*" * (len(nik) - 8) + nik[-4:]

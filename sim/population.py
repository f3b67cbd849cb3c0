"""Synthetic inmates per UPT with ground truth: valid records, planted faults and NIKs shared by two people."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from shared import nik as nik_rules
from shared.contracts import WIB
from shared.units import Units, Upt

from . import names

TAHANAN = ("A I", "A II", "A III", "A IV", "A V")
# Rough shares of each register in a national population (tahanan about a quarter).
REGISTER_WEIGHTS = {
    "A I": 4,
    "A II": 4,
    "A III": 10,
    "A IV": 3,
    "A V": 3,
    "B I": 62,
    "B IIa": 10,
    "B IIb": 2,
    "B III": 2,
}
DETENTION_DAYS = {"A I": 60, "A II": 50, "A III": 90, "A IV": 90, "A V": 110}
# The first order's days; the rest of DETENTION_DAYS is the one ordinary extension (KUHAP Pasal 24-28).
INITIAL_DAYS = {"A I": 20, "A II": 20, "A III": 30, "A IV": 30, "A V": 50}
# Who extends each stage (ayat 2 of the same articles): the prosecutor, then the court presidents.
EXTENDED_BY = {
    "A I": "Kejaksaan Negeri",
    "A II": "Ketua Pengadilan Negeri",
    "A III": "Ketua Pengadilan Negeri",
    "A IV": "Ketua Pengadilan Tinggi",
    "A V": "Ketua Mahkamah Agung",
}


@dataclass(frozen=True)
class Options:
    """What a simulated day looks like; shares are of all records."""

    as_of: date
    total: int = 275_600
    seed: int = 2025
    missing_nik_share: float = 0.04  # accepted: such inmates need e-KTP recording
    invalid_nik_share: float = 0.01  # refused with a NIK_* code
    invalid_record_share: float = 0.004  # refused with a FIELD_* code
    shared_nik_share: float = 0.002  # a second person claims someone's NIK (half within a UPT)
    part_size: int = 500


@dataclass
class PlannedRecord:
    """A record as the UPT sends it, and what the suite should make of it."""

    raw: dict[str, Any]
    expected_codes: set[str] = field(default_factory=set)  # refusal codes; empty = accepted
    shares_nik_with: tuple[str, str] | None = None  # (upt_id, inmate_id) of the other claimant

    @property
    def accepted(self) -> bool:
        return not self.expected_codes

    @property
    def inmate_id(self) -> str:
        return str(self.raw.get("inmate_id"))


def allocate(units: Units, total: int) -> dict[str, int]:
    """Inmates per UPT proportional to its weight, summing exactly to `total` (largest remainder)."""
    weight = sum(u.weight for u in units.upts)
    exact = {u.upt_id: total * u.weight / weight for u in units.upts}
    counts = {k: int(v) for k, v in exact.items()}
    for k in sorted(exact, key=lambda k: exact[k] - counts[k], reverse=True)[: total - sum(counts.values())]:
        counts[k] += 1
    return counts


def make_nik(rng: random.Random, regency: str, birth: date, female: bool, used: set[str]) -> str:
    while True:
        day = birth.day + (40 if female else 0)
        district, serial = rng.randint(1, 30), rng.randint(1, 9999)
        value = f"{regency}{district:02d}{day:02d}{birth.month:02d}{birth.year % 100:02d}{serial:04d}"
        if value not in used:
            used.add(value)
            return value


# Each fault turns a valid NIK into one the registry must refuse, with the code it must give.
NIK_FAULTS: tuple[tuple[str, Callable[[str], str]], ...] = (
    ("NIK_SERIAL_ZERO", lambda n: n[:12] + "0000"),
    ("NIK_DATE_INVALID", lambda n: n[:6] + "32" + n[8:]),
    ("NIK_DATE_INVALID", lambda n: n[:8] + "13" + n[10:]),
    ("NIK_LENGTH", lambda n: n[:15]),
    ("NIK_NOT_DIGITS", lambda n: n[:10] + "O" + n[11:]),
    ("NIK_PROVINCE_UNKNOWN", lambda n: "10" + n[2:]),
)
RECORD_FAULTS: tuple[tuple[str, Callable[[dict[str, Any]], None]], ...] = (
    ("FIELD_REQUIRED", lambda r: r.pop("full_name")),
    ("FIELD_INVALID", lambda r: r.update(sex="X")),
    ("FIELD_TOO_LONG", lambda r: r.update(full_name="A" * 250)),
    ("REGISTER_UNKNOWN", lambda r: r.update(register="C")),
    ("FIELD_UNKNOWN", lambda r: r.update(hobby="catur")),
    ("FIELD_INVALID", lambda r: r.update(birth_date="1990-02-30")),
    ("FIELD_CONTROL_CHARACTERS", lambda r: r.update(full_name=r["full_name"] + "\u202e")),
    ("ENTRY_DATE_IN_FUTURE", lambda r: r.update(entry_date="2099-01-01")),
    (
        "REGISTER_NEEDS_SENTENCE",
        lambda r: r.update(register="B I", sentence_days=None, detention_start=None, detention_expiry=None),
    ),
    (
        "REGISTER_SENTENCE_MISMATCH",
        lambda r: r.update(register="B IIb", sentence_days=900, detention_start=None, detention_expiry=None),
    ),
)


class _Generator:
    def __init__(self, units: Units, options: Options) -> None:
        self.units = units
        self.options = options
        self.rng = random.Random(options.seed)
        self.used_niks: set[str] = set()
        self.regencies_by_province: dict[str, list[str]] = {}
        for u in units.upts:
            self.regencies_by_province.setdefault(u.province_code, []).append(u.kabkota_code)
        self.all_regencies = [u.kabkota_code for u in units.upts]

    def person(self, upt: Upt, index: int, entry: date | None = None, prefix: str = "") -> dict[str, Any]:
        rng, as_of = self.rng, self.options.as_of
        female = rng.random() < 0.06
        given = rng.choice(names.FEMALE if female else names.MALE)
        full_name = given if rng.random() < 0.12 else f"{given} {rng.choice(names.SECOND)}"
        age_days = int(rng.triangular(18 * 365, 70 * 365, 32 * 365))
        birth = as_of - timedelta(days=age_days)
        # Most inmates were registered near the UPT; some come from anywhere in the country.
        local = self.regencies_by_province.get(upt.province_code) or self.all_regencies
        regency = rng.choice(local if rng.random() < 0.85 else self.all_regencies)
        register = rng.choices(list(REGISTER_WEIGHTS), weights=list(REGISTER_WEIGHTS.values()))[0]
        # A tahanan entered within the period the current detention allows; a convict any time before.
        span = DETENTION_DAYS[register] - 1 if register in TAHANAN else 2_000
        entry = entry or as_of - timedelta(days=rng.randint(1, span))
        record: dict[str, Any] = {
            "inmate_id": f"{upt.upt_id}-{prefix}{index:06d}",
            "register": register,
            "register_number": f"{register.replace(' ', '')}.{rng.randint(1, 999)}/{entry.year}",
            "nik": make_nik(rng, regency, birth, female, self.used_niks),
            "full_name": full_name,
            "sex": "P" if female else "L",
            "birth_place": upt.kabkota_name.replace("Kabupaten ", "").replace("Kota ", ""),
            "birth_date": birth.isoformat(),
            "mother_name": rng.choice(names.MOTHERS),
            "nationality": "IDN",
            "case": {
                "articles": [rng.choice(names.ARTICLES)],
                "case_number": f"{rng.randint(1, 2_000)}/Pid.B/{entry.year}/PN",
                "detaining_authority": rng.choice(names.AUTHORITIES),
            },
            "entry_date": entry.isoformat(),
            "custody_status": "in_custody",
            # Last changed before the snapshot day began in WIB (the day's submission comes after).
            "updated_at": (
                datetime.combine(as_of, datetime.min.time(), tzinfo=WIB)
                - timedelta(minutes=rng.randint(1, 6_000))
            ).isoformat(),
        }
        if register in TAHANAN:
            record |= detention(register, entry, as_of, record["inmate_id"])
        else:
            days = {
                "B I": rng.randint(366, 5_000),
                "B IIa": rng.randint(91, 365),
                "B IIb": rng.randint(1, 90),
                "B III": rng.randint(1, 365),
            }[register]
            record |= {"sentence_days": days, "expected_release": (entry + timedelta(days=days)).isoformat()}
        return record

    def plant(self, by_upt: dict[str, list[PlannedRecord]]) -> None:
        o, rng = self.options, self.rng
        everyone = [p for records in by_upt.values() for p in records]
        order = list(range(len(everyone)))
        rng.shuffle(order)
        cursor = 0

        def take(share: float) -> list[PlannedRecord]:
            nonlocal cursor
            n = round(share * len(everyone))
            chosen = [everyone[i] for i in order[cursor : cursor + n]]
            cursor += n
            return chosen

        for p in take(o.missing_nik_share):
            p.raw["nik"] = None
        for p in take(o.invalid_nik_share):
            code, fault = rng.choice(NIK_FAULTS)
            p.raw["nik"] = fault(p.raw["nik"])
            p.expected_codes.add(code)
        for p in take(o.invalid_record_share):
            code, spoil = rng.choice(RECORD_FAULTS)
            spoil(p.raw)
            p.expected_codes.add(code)
        # Pairs of different people claiming one NIK: the second takes the first one's NIK. Half of the
        # pairs sit inside one UPT. Pair members are drawn from records no other fault touched.
        untouched = [everyone[i] for i in order[cursor:]]
        n_pairs = round(o.shared_nik_share * len(everyone))
        used: set[int] = set()
        for i, first in enumerate(untouched):
            if n_pairs == 0:
                break
            if id(first) in used:
                continue
            upt_id = _upt_of(first)
            pool = by_upt[upt_id] if i % 2 == 0 else untouched[i + 1 : i + 50]
            second = next(
                (
                    p
                    for p in pool
                    if p is not first
                    and id(p) not in used
                    and p.accepted
                    and p.raw.get("nik")
                    and not p.expected_codes
                    and (i % 2 == 0 or _upt_of(p) != upt_id)
                ),
                None,
            )
            if second is None or not first.raw.get("nik") or first.expected_codes:
                continue
            used |= {id(first), id(second)}
            second.raw["nik"] = first.raw["nik"]
            first.shares_nik_with = (_upt_of(second), second.inmate_id)
            second.shares_nik_with = (upt_id, first.inmate_id)
            n_pairs -= 1


def extension_letter(register: str, start: date, inmate_id: str) -> dict[str, Any]:
    """The register's ordinary extension, granted by the right authority, up to the last day it allows."""
    extra = DETENTION_DAYS[register] - INITIAL_DAYS[register]
    until = start + timedelta(days=DETENTION_DAYS[register] - 1)
    return {
        "granted_by": EXTENDED_BY[register],
        "days": extra,
        "until": until.isoformat(),
        "letter_number": f"PRP/{inmate_id}/{start.year}",
    }


def detention(register: str, start: date, as_of: date, inmate_id: str) -> dict[str, Any]:
    """A tahanan's period on `as_of` (the start day counts as day 1): the first order, extended by letter once
    it has run out, so that nobody the generator makes is held beyond what was authorised."""
    first_end = start + timedelta(days=INITIAL_DAYS[register] - 1)
    fields: dict[str, Any] = {"detention_start": start.isoformat(), "detention_expiry": first_end.isoformat()}
    if as_of > first_end:
        letter = extension_letter(register, start, inmate_id)
        fields |= {"detention_expiry": letter["until"], "extensions": [letter]}
    return fields


def _upt_of(p: PlannedRecord) -> str:
    return p.inmate_id.rsplit("-", 1)[0]


def generate(units: Units, options: Options) -> dict[str, list[PlannedRecord]]:
    """Every UPT's records for the day, deterministic for a given seed."""
    gen = _Generator(units, options)
    counts = allocate(units, options.total)
    by_upt = {
        u.upt_id: [PlannedRecord(gen.person(u, i + 1)) for i in range(counts[u.upt_id])] for u in units.upts
    }
    gen.plant(by_upt)
    return by_upt


def newcomers(
    units: Units, counts: dict[str, int], *, as_of: date, seed: int, taken: set[str], prefix: str = "N"
) -> dict[str, list[PlannedRecord]]:
    """Inmates entering on `as_of` (ids `<upt>-<prefix><n>`) with NIKs none of `taken`; deterministic per seed."""
    gen = _Generator(units, Options(as_of=as_of, seed=seed))
    gen.used_niks |= taken
    upts = {u.upt_id: u for u in units.upts}
    return {
        upt_id: [PlannedRecord(gen.person(upts[upt_id], n, as_of, prefix)) for n in range(1, count + 1)]
        for upt_id, count in counts.items()
    }


def parts(records: list[PlannedRecord], part_size: int) -> list[list[PlannedRecord]]:
    """A UPT's day in numbered parts (a UPT with no inmates still sends one empty part)."""
    return [records[i : i + part_size] for i in range(0, len(records), part_size)] or [[]]


def expected_flagged(by_upt: dict[str, list[PlannedRecord]]) -> set[tuple[str, str]]:
    """Records that must end up flagged: accepted claimants of a NIK shared with another accepted claimant."""
    accepted = {(upt, p.inmate_id) for upt, records in by_upt.items() for p in records if p.accepted}
    return {
        (upt, p.inmate_id)
        for upt, records in by_upt.items()
        for p in records
        if p.accepted and p.shares_nik_with in accepted
    }


def check_nik_sample(by_upt: dict[str, list[PlannedRecord]], as_of: date) -> int:
    """How many records the generator meant as valid would fail the NIK rules (should be 0)."""
    bad = 0
    for records in by_upt.values():
        for p in records:
            if p.accepted and p.raw.get("nik") and not nik_rules.check(p.raw["nik"], today=as_of).valid:
                bad += 1
    return bad

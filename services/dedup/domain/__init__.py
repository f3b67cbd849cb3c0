"""Dedup rules: when records claiming one NIK are different people."""

from __future__ import annotations

import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date

from shared.contracts import InmateFlag, InmateFlagCode, InmateFlagSet, InmateRecord

_NOT_LETTERS = re.compile(r"[^A-Z ]+")
_SPACES = re.compile(r"\s+")
Key = tuple[str, str]


def normalise_name(name: str) -> str:
    """Upper case, accents and punctuation removed, single spaces."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return _SPACES.sub(" ", _NOT_LETTERS.sub(" ", ascii_name.upper())).strip()


def person_key(full_name: str, birth_date: date) -> str:
    """Who a record is about, as far as a NIK collision is concerned: same name and birth date."""
    return f"{normalise_name(full_name)}|{birth_date.isoformat()}"


@dataclass(frozen=True)
class Claim:
    """A record saying that this NIK belongs to this person."""

    upt_id: str
    inmate_id: str
    nik: str
    person: str

    @property
    def key(self) -> Key:
        return (self.upt_id, self.inmate_id)


def claims_of(upt_id: str, records: Iterable[InmateRecord]) -> list[Claim]:
    return [
        Claim(upt_id, r.inmate_id, r.nik, person_key(r.full_name, r.birth_date)) for r in records if r.nik
    ]


def flag_sets(
    batch_keys: Sequence[Key], batch: Sequence[Claim], existing: Sequence[Claim]
) -> list[InmateFlagSet]:
    """The complete flag set of every record the batch can affect.

    `existing` holds every stored claim on the NIKs the batch touches (its new NIKs and the NIKs its records
    held before). The batch's records replace their old claims; a record without a NIK claims nothing.
    Every record in a touched NIK group gets its full set, so a corrected NIK also clears the flag of the
    record it used to collide with.
    """
    replaced = set(batch_keys)
    current = [c for c in existing if c.key not in replaced] + list(batch)
    by_nik: dict[str, list[Claim]] = defaultdict(list)
    for claim in current:
        by_nik[claim.nik].append(claim)

    sets: dict[Key, list[InmateFlag]] = {key: [] for key in batch_keys}
    sets |= {c.key: [] for c in existing}
    for group in by_nik.values():
        for a in group:
            sets[a.key] = [
                InmateFlag(
                    code=InmateFlagCode.NIK_CLAIMED_BY_ANOTHER_PERSON,
                    counterpart_upt_id=b.upt_id,
                    counterpart_inmate_id=b.inmate_id,
                )
                for b in group
                if b.key != a.key and b.person != a.person
            ]
    return [InmateFlagSet(upt_id=u, inmate_id=i, flags=f) for (u, i), f in sorted(sets.items())]

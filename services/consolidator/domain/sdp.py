"""What the centre keeps of each SDP part until a run applies the UPT's latest complete snapshot."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import date

from shared.contracts import SdpRecordsChecked, SubmissionProcessed


@dataclass(frozen=True)
class PartStatus:
    """The registry's answer to one part: whether it kept the part, and its counts and lateness."""

    upt_id: str
    as_of: date
    snapshot: int
    part: int
    parts: int
    submission_id: str
    stored: bool
    received: int
    accepted: int
    refused: int
    warnings: int
    lateness: str | None


def decide_part_status(event: SubmissionProcessed) -> PartStatus | None:
    """None for an answer to a message the registry could not read as a part (nothing to stage)."""
    if event.as_of is None or event.snapshot is None or event.part is None or event.parts is None:
        return None
    return PartStatus(
        upt_id=event.upt_id,
        as_of=event.as_of,
        snapshot=event.snapshot,
        part=event.part,
        parts=event.parts,
        submission_id=event.submission_id,
        stored=event.snapshot_state is not None,
        received=event.received,
        accepted=event.accepted,
        refused=event.rejected,
        warnings=event.warnings,
        lateness=event.lateness.value if event.lateness else None,
    )


# The columns of a staged row, in the order of `StagedPart.rows` tuples (and of the table's COPY).
ROW_COLUMNS = (
    "upt_id",
    "as_of",
    "snapshot",
    "inmate_id",
    "part",
    "message_id",
    "nik",
    "full_name",
    "sex",
    "birth_date",
    "birth_place",
    "mother_name",
    "register",
    "register_number",
    "entry_date",
    "detention_start",
    "detention_expiry",
    "extension_days",
    "extended_until",
    "sentence_days",
    "expected_release",
    "custody_status",
    "extensions",
    "population",
    "row_hash",
)


@dataclass(frozen=True)
class StagedPart:
    """A checked part's records as rows (replacing whatever an earlier copy of the part staged) and flags."""

    upt_id: str
    as_of: date
    snapshot: int
    part: int
    parts: int
    submission_id: str
    rows: tuple[tuple[object, ...], ...]
    flags: tuple[tuple[str, str, str, int], ...]  # (upt_id, inmate_id, flags JSON, dedup seq)


def decide_staging(checked: SdpRecordsChecked) -> StagedPart:
    """Each record as a row of `ROW_COLUMNS`, with the hash of what the UPT said of the inmate (a run compares
    it with the episode's to see a change). Every part of a national day passes here: each value is computed
    once (the enums are `StrEnum`s: a member is its value)."""
    population = {c.inmate_id: c.model_dump_json() for c in checked.population_checks}
    upt_id, as_of, snapshot, part, message_id = (
        checked.upt_id, checked.as_of, checked.snapshot, checked.part, checked.message_id,
    )  # fmt: skip
    dumps, blake2b = json.dumps, hashlib.blake2b
    rows = []
    for r in checked.records:
        sex, book, custody = str(r.sex), str(r.book), str(r.custody_status)
        extensions = [e.model_dump(mode="json") for e in r.extensions]
        checks = population.get(r.inmate_id)
        said = (
            r.nik, r.full_name, sex, r.birth_date.isoformat(), r.birth_place, r.mother_name, book,
            r.register_number, r.entry_date.isoformat(), str(r.detention_start), str(r.detention_expiry),
            r.sentence_days, str(r.expected_release), custody, extensions, checks,
        )  # fmt: skip
        rows.append(
            (
                upt_id, as_of, snapshot, r.inmate_id, part, message_id, r.nik, r.full_name, sex, r.birth_date,
                r.birth_place, r.mother_name, book, r.register_number, r.entry_date, r.detention_start,
                r.detention_expiry, sum(e.days for e in r.extensions),
                max((e.until for e in r.extensions), default=None), r.sentence_days, r.expected_release,
                custody, dumps(extensions), checks,
                blake2b(dumps(said).encode(), digest_size=16).hexdigest(),
            )
        )  # fmt: skip
    flags = tuple(
        (s.upt_id, s.inmate_id, json.dumps([f.model_dump(mode="json") for f in s.flags]), checked.flag_seq)
        for s in checked.flag_sets
    )
    return StagedPart(
        checked.upt_id,
        checked.as_of,
        checked.snapshot,
        checked.part,
        checked.parts,
        checked.submission_id,
        tuple(rows),
        flags,
    )

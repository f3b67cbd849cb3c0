"""From search results to a verdict: the e-KTP status a capture moves to after dedup, and why."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass

from shared.ektp import EktpStatus

from .biometrics import Thresholds


class Finding(enum.StrEnum):
    ONE_TO_ONE = "one_to_one"  # the same biometrics as one person holding another NIK
    ONE_TO_MANY = "one_to_many"  # ... as several people, under several NIKs
    ALREADY_ENROLLED = "already_enrolled"  # the same person under the same NIK, recorded before
    DUPLICATE_NIK = "duplicate_nik"  # the NIK belongs to someone whose biometrics do not match
    GREY_ZONE = "grey_zone"  # neither clearly the same nor clearly different: a person decides
    NIK_CONTRADICTS_PACKET = "nik_contradicts_packet"  # sex or birth date encoded in the NIK differ
    NOTHING_TO_COMPARE = "nothing_to_compare"  # no modality could be compared
    SEARCH_FAILED = "search_failed"  # the search itself failed, delivery after delivery
    UNIQUE = "unique"


# Every finding, the status it comes with, and why: (status, alasan, reason). Documented in docs/error-codes.md.
FINDINGS: dict[str, tuple[str, str, str]] = {
    Finding.ONE_TO_ONE: (
        "DUPLICATE_RECORD",
        "Biometrik sama dengan satu orang yang sudah terdaftar dengan NIK lain.",
        "The biometrics match one person already enrolled under another NIK.",
    ),
    Finding.ONE_TO_MANY: (
        "DUPLICATE_RECORD",
        "Biometrik sama dengan beberapa orang yang terdaftar dengan NIK berbeda.",
        "The biometrics match several people enrolled under different NIKs.",
    ),
    Finding.ALREADY_ENROLLED: (
        "DUPLICATE_RECORD",
        "Orang yang sama dengan NIK yang sama sudah terdaftar.",
        "The same person under the same NIK is already enrolled.",
    ),
    Finding.DUPLICATE_NIK: (
        "DUPLICATE_RECORD",
        "NIK ini milik orang lain yang biometriknya berbeda.",
        "The NIK belongs to someone whose biometrics differ.",
    ),
    Finding.GREY_ZONE: (
        "ADJUDICATE_RECORD",
        "Kemiripan berada di zona abu-abu; petugas pusat yang memutuskan.",
        "The similarity lies in the grey zone; a central operator decides.",
    ),
    Finding.NIK_CONTRADICTS_PACKET: (
        "REQUEST_VALIDATION",
        "Jenis kelamin atau tanggal lahir yang tersandi dalam NIK berbeda dengan data paket.",
        "The sex or birth date encoded in the NIK differs from the packet.",
    ),
    Finding.NOTHING_TO_COMPARE: (
        "SEARCH_FAILURE_AT_CENTRAL",
        "Tidak ada modalitas yang dapat dibandingkan; template yang tidak terpakai disebutkan.",
        "No modality could be compared; the unusable templates are listed.",
    ),
    Finding.SEARCH_FAILED: (
        "SEARCH_FAILURE_AT_CENTRAL",
        "Pencarian gagal berulang kali; alasannya menyertai.",
        "The search failed on every attempt; the reason follows.",
    ),
    Finding.UNIQUE: (
        "PRINT_READY_RECORD",
        "Tidak ada kecocokan: siap dicetak, masuk galeri dan data kependudukan.",
        "No match: ready for printing, added to the gallery and the population record.",
    ),
    "adjudicated_duplicate": (
        "DUPLICATE_RECORD",
        "Petugas pusat memutuskan: duplikat.",
        "A central operator decided: duplicate.",
    ),
    "adjudicated_unique": (
        "PRINT_READY_RECORD",
        "Petugas pusat memutuskan: unik.",
        "A central operator decided: unique.",
    ),
}


@dataclass(frozen=True)
class Candidate:
    """A gallery person scored against the capture."""

    nik: str
    llr: float
    modalities: int  # comparisons (eyes, face, fingers) the score rests on
    ref: int = -1  # the caller's handle on this person (e.g. a gallery row)


@dataclass(frozen=True)
class Verdict:
    status: EktpStatus
    finding: Finding
    candidates: tuple[Candidate, ...]  # the evidence, best first


def search_failed() -> Verdict:
    """The search could not run for this capture (retried): never a silent unique."""
    return Verdict(EktpStatus.SEARCH_FAILURE_AT_CENTRAL, Finding.SEARCH_FAILED, ())


def decide(
    *,
    nik: str,
    usable_modalities: int,
    nik_contradicts: bool,
    matches: Sequence[Candidate],
    nik_holder: Candidate | None,
    thresholds: Thresholds,
) -> Verdict:
    """The verdict for one capture.

    `matches`: the search's best candidates; `nik_holder`: the gallery person already holding this NIK, scored
    against the capture (None if the NIK is new). A capture with nothing to compare is never called unique.
    """
    ranked = tuple(sorted(matches, key=lambda c: -c.llr))
    if usable_modalities == 0:
        return Verdict(EktpStatus.SEARCH_FAILURE_AT_CENTRAL, Finding.NOTHING_TO_COMPARE, ())
    hits = [c for c in ranked if c.llr >= thresholds.duplicate]
    others = {c.nik for c in hits if c.nik != nik}
    if len(others) >= 2:
        return Verdict(EktpStatus.DUPLICATE_RECORD, Finding.ONE_TO_MANY, tuple(hits))
    if others:
        return Verdict(EktpStatus.DUPLICATE_RECORD, Finding.ONE_TO_ONE, tuple(hits))
    if hits:
        return Verdict(EktpStatus.DUPLICATE_RECORD, Finding.ALREADY_ENROLLED, tuple(hits))
    # Duplicates (possible fraud) outweigh a data error; so does a NIK already held by somebody else.
    grey = tuple(c for c in ranked if c.llr >= thresholds.adjudicate)
    if nik_holder is not None and nik_holder.llr >= thresholds.adjudicate:
        return Verdict(EktpStatus.ADJUDICATE_RECORD, Finding.GREY_ZONE, (nik_holder, *grey))
    if nik_holder is not None:
        return Verdict(EktpStatus.DUPLICATE_RECORD, Finding.DUPLICATE_NIK, (nik_holder,))
    if nik_contradicts:
        return Verdict(EktpStatus.REQUEST_VALIDATION, Finding.NIK_CONTRADICTS_PACKET, ranked[:1])
    if grey:
        return Verdict(EktpStatus.ADJUDICATE_RECORD, Finding.GREY_ZONE, grey)
    return Verdict(EktpStatus.PRINT_READY_RECORD, Finding.UNIQUE, ranked[:3])

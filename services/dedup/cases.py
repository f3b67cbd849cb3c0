"""The adjudication desk's view of a grey-zone capture: what dedup tells the monitor, masked, never a template."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from shared.contracts import (
    AdjudicationCaseChanged,
    AdjudicationDecision,
    CaseCandidate,
    Demographics,
    EnrolmentVerdict,
    VerdictCandidate,
    derive_message_id,
)
from shared.nik import mask

from .domain.linkage import Person


def case_opened(
    verdict: EnrolmentVerdict, demographics: Demographics, people: Mapping[str, Person]
) -> AdjudicationCaseChanged:
    """The case as the desk shows it: the capture's demographics beside each candidate's, from the population
    record (`people`, by NIK; a candidate not recorded there is shown by its scores alone)."""

    def candidate(c: VerdictCandidate) -> CaseCandidate:
        known = people.get(c.nik)
        return CaseCandidate(
            person_id=c.person_id, nik_masked=mask(c.nik), llr=c.llr, modalities=c.modalities,
            iris_hd=c.iris_hd, face_cosine=c.face_cosine, finger_cosines=c.finger_cosines,
            full_name=known.full_name if known else None, sex=known.sex if known else None,
            birth_date=known.birth_date if known else None, birth_place=known.birth_place if known else None,
        )  # fmt: skip

    return AdjudicationCaseChanged(
        message_id=derive_message_id("dedup", "case-opened", verdict.message_id),
        produced_at=verdict.produced_at, kabkota=verdict.kabkota, packet_id=verdict.packet_id, state="opened",
        nik_masked=mask(verdict.nik), full_name=demographics.full_name, sex=demographics.sex.value,
        birth_date=demographics.birth_date, birth_place=demographics.birth_place,
        candidates=[candidate(c) for c in verdict.candidates],
        duplicate_threshold=verdict.duplicate_threshold, adjudicate_threshold=verdict.adjudicate_threshold,
    )  # fmt: skip


def case_decided(cmd: AdjudicationDecision, nik: str, now: datetime) -> AdjudicationCaseChanged:
    return AdjudicationCaseChanged(
        message_id=derive_message_id("dedup", "case-decided", cmd.message_id),
        produced_at=now, kabkota=cmd.kabkota, packet_id=cmd.packet_id, state="decided", nik_masked=mask(nik),
        decision=cmd.decision, operator=cmd.operator, reason=cmd.reason,
    )  # fmt: skip

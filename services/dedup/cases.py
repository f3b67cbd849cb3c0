"""The adjudication desk's view of a grey-zone capture: what dedup tells the monitor, masked, never a template."""

from __future__ import annotations

from datetime import datetime

from shared.contracts import (
    AdjudicationCaseChanged,
    AdjudicationDecision,
    CaseCandidate,
    Demographics,
    EnrolmentVerdict,
    derive_message_id,
)
from shared.nik import mask


def case_opened(verdict: EnrolmentVerdict, demographics: Demographics) -> AdjudicationCaseChanged:
    return AdjudicationCaseChanged(
        message_id=derive_message_id("dedup", "case-opened", verdict.message_id),
        produced_at=verdict.produced_at, kabkota=verdict.kabkota, packet_id=verdict.packet_id, state="opened",
        nik_masked=mask(verdict.nik), full_name=demographics.full_name, sex=demographics.sex.value,
        birth_date=demographics.birth_date, birth_place=demographics.birth_place,
        candidates=[
            CaseCandidate(
                person_id=c.person_id, nik_masked=mask(c.nik), llr=c.llr, modalities=c.modalities,
                iris_hd=c.iris_hd, face_cosine=c.face_cosine, finger_cosines=c.finger_cosines,
            )
            for c in verdict.candidates
        ],
        duplicate_threshold=verdict.duplicate_threshold, adjudicate_threshold=verdict.adjudicate_threshold,
    )  # fmt: skip


def case_decided(cmd: AdjudicationDecision, nik: str, now: datetime) -> AdjudicationCaseChanged:
    return AdjudicationCaseChanged(
        message_id=derive_message_id("dedup", "case-decided", cmd.message_id),
        produced_at=now, kabkota=cmd.kabkota, packet_id=cmd.packet_id, state="decided", nik_masked=mask(nik),
        decision=cmd.decision, operator=cmd.operator, reason=cmd.reason,
    )  # fmt: skip

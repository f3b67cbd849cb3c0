"""Registry rules: which records of a submission are accepted, which are refused, and why."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import pydantic

from shared import nik, problems
from shared.contracts import (
    InmateRecord,
    ReceiptStatus,
    RecordProblem,
    SdpRecordsAccepted,
    SdpSubmission,
    SubmissionProcessed,
    SubmissionReceipt,
    derive_message_id,
)
from shared.problems import Problem, Severity

RECORD_NOT_OBJECT = Problem(
    "RECORD_NOT_OBJECT",
    "Data narapidana/tahanan harus berupa objek JSON.",
    "An inmate record must be a JSON object.",
)
FIELD_REQUIRED = Problem("FIELD_REQUIRED", "Kolom wajib tidak diisi.", "A required field is missing.")
FIELD_TOO_LONG = Problem(
    "FIELD_TOO_LONG", "Isi kolom melebihi panjang maksimum.", "A field is longer than allowed."
)
FIELD_UNKNOWN = Problem(
    "FIELD_UNKNOWN", "Kolom tidak dikenal dalam skema.", "A field is not part of the schema."
)
FIELD_INVALID = Problem(
    "FIELD_INVALID", "Isi kolom tidak sah (jenis atau nilai salah).", "A field has the wrong type or value."
)
DUPLICATE_INMATE_ID = Problem(
    "DUPLICATE_INMATE_ID",
    "inmate_id yang sama muncul lebih dari sekali dalam kiriman ini.",
    "The same inmate_id appears more than once in this submission.",
)
PART_OUT_OF_RANGE = Problem(
    "PART_OUT_OF_RANGE",
    "Nomor bagian melebihi jumlah bagian.",
    "The part number is beyond the number of parts.",
)

RECORD_PROBLEMS = (
    RECORD_NOT_OBJECT,
    FIELD_REQUIRED,
    FIELD_TOO_LONG,
    FIELD_UNKNOWN,
    FIELD_INVALID,
    DUPLICATE_INMATE_ID,
    PART_OUT_OF_RANGE,
)
CATALOGUE: dict[str, Problem] = {
    p.code: p for p in (*problems.MESSAGE_PROBLEMS, *RECORD_PROBLEMS, *nik.NIK_PROBLEMS)
}

_ERROR_TYPES = {
    "missing": FIELD_REQUIRED,
    "string_too_long": FIELD_TOO_LONG,
    "too_long": FIELD_TOO_LONG,
    "extra_forbidden": FIELD_UNKNOWN,
}


def problem_entry(
    problem: Problem,
    *,
    index: int | None = None,
    inmate_id: str | None = None,
    field: str | None = None,
    detail: str | None = None,
) -> RecordProblem:
    return RecordProblem(
        index=index,
        inmate_id=inmate_id,
        field=field,
        code=problem.code,
        reason_id=problem.reason_id,
        reason_en=problem.reason_en,
        detail=detail[:1_000] if detail else None,
    )


@dataclass(frozen=True)
class Assessment:
    """The registry's answer to one submission part."""

    received: int
    accepted: list[InmateRecord] = field(default_factory=list)
    rejected: list[RecordProblem] = field(default_factory=list)
    warnings: list[RecordProblem] = field(default_factory=list)

    @property
    def status(self) -> ReceiptStatus:
        if self.rejected and not self.accepted:
            return ReceiptStatus.REJECTED
        return ReceiptStatus.PARTIALLY_ACCEPTED if self.rejected else ReceiptStatus.ACCEPTED


def _inmate_id_of(raw: Any) -> str | None:
    value = raw.get("inmate_id") if isinstance(raw, dict) else None
    return value[:64] if isinstance(value, str) else None


def check_record(
    raw: Any, index: int, *, today: date
) -> tuple[InmateRecord | None, list[RecordProblem], list[RecordProblem]]:
    """One record against the schema and the NIK rules: (record or None, refusals, warnings)."""
    inmate_id = _inmate_id_of(raw)
    if not isinstance(raw, dict):
        return None, [problem_entry(RECORD_NOT_OBJECT, index=index)], []
    try:
        record = InmateRecord.model_validate(raw)
    except pydantic.ValidationError as exc:
        return (
            None,
            [
                problem_entry(
                    _ERROR_TYPES.get(err["type"], FIELD_INVALID),
                    index=index,
                    inmate_id=inmate_id,
                    field=".".join(str(p) for p in err["loc"]) or None,
                    detail=err["msg"],
                )
                for err in exc.errors(include_input=False, include_url=False)
            ],
            [],
        )

    refusals: list[RecordProblem] = []
    warnings: list[RecordProblem] = []
    if record.nik is not None:
        result = nik.check(record.nik, today=today)
        found = [*result.problems]
        if result.valid:
            found += nik.contradictions(result, sex=record.sex, birth_date=record.birth_date)
        for p in found:
            entry = problem_entry(p, index=index, inmate_id=record.inmate_id, field="nik")
            (warnings if p.severity is Severity.WARNING else refusals).append(entry)
    return (None if refusals else record), refusals, warnings


def assess(submission: SdpSubmission, sender: str, *, today: date) -> Assessment:
    """Check every record of a part independently, so valid records go through beside invalid ones."""
    received = len(submission.records)
    if submission.upt_id != sender:
        return Assessment(received, rejected=[problem_entry(problems.SENDER_MISMATCH, field="upt_id")])
    if submission.part > submission.parts:
        return Assessment(received, rejected=[problem_entry(PART_OUT_OF_RANGE, field="part")])

    accepted: list[InmateRecord] = []
    rejected: list[RecordProblem] = []
    warnings: list[RecordProblem] = []
    seen: set[str] = set()
    for index, raw in enumerate(submission.records):
        record, refusals, notes = check_record(raw, index, today=today)
        if record is not None and record.inmate_id in seen:
            duplicate = problem_entry(
                DUPLICATE_INMATE_ID, index=index, inmate_id=record.inmate_id, field="inmate_id"
            )
            record, refusals = None, [duplicate]
        rejected += refusals
        warnings += notes
        if record is not None:
            seen.add(record.inmate_id)
            accepted.append(record)
    return Assessment(received, accepted, rejected, warnings)


@dataclass(frozen=True)
class Outcome:
    """The messages a consumed submission produces, all derived from the submission's own id."""

    receipt: SubmissionReceipt
    status: SubmissionProcessed
    accepted: SdpRecordsAccepted | None


def _answers(
    in_reply_to: str, sender: str, assessment: Assessment, *, now: datetime, part: SdpSubmission | None
) -> tuple[SubmissionReceipt, SubmissionProcessed]:
    """The receipt to the sender and the status event for the monitor, with ids derived from the message."""
    where: dict[str, Any] = {}
    if part is not None:
        where = {"as_of": part.as_of, "snapshot": part.snapshot, "part": part.part, "parts": part.parts}
    accepted = len(assessment.accepted)
    receipt = SubmissionReceipt(
        message_id=derive_message_id("registry", "receipt", in_reply_to),
        produced_at=now,
        in_reply_to=in_reply_to,
        sender=sender,
        upt_id=part.upt_id if part else None,
        status=assessment.status,
        received=assessment.received,
        accepted=accepted,
        rejected=assessment.rejected,
        warnings=assessment.warnings,
        **where,
    )
    status = SubmissionProcessed(
        message_id=derive_message_id("registry", "status", in_reply_to),
        produced_at=now,
        submission_id=in_reply_to,
        upt_id=sender,
        status=assessment.status,
        received=assessment.received,
        accepted=accepted,
        rejected=assessment.received - accepted,
        warnings=len(assessment.warnings),
        **where,
    )
    return receipt, status


def outcome(submission: SdpSubmission, sender: str, assessment: Assessment, *, now: datetime) -> Outcome:
    sid = submission.message_id
    receipt, status = _answers(sid, sender, assessment, now=now, part=submission)
    accepted = None
    if assessment.accepted:
        accepted = SdpRecordsAccepted(
            message_id=derive_message_id("registry", "accepted", sid),
            produced_at=now,
            submission_id=sid,
            upt_id=submission.upt_id,
            as_of=submission.as_of,
            snapshot=submission.snapshot,
            part=submission.part,
            parts=submission.parts,
            records=assessment.accepted,
        )
    return Outcome(receipt, status, accepted)


def refusal(
    in_reply_to: str,
    sender: str,
    problem: Problem,
    detail: str,
    *,
    now: datetime,
    body: dict[str, Any] | None = None,
) -> tuple[SubmissionReceipt, SubmissionProcessed]:
    """The answer to a message that could not be read as a submission at all."""
    records = (body or {}).get("records")
    received = len(records) if isinstance(records, list) else 0
    refused = Assessment(received, rejected=[problem_entry(problem, detail=detail)])
    return _answers(in_reply_to, sender, refused, now=now, part=None)


def catalogue_rows(codes: Iterable[str] | None = None) -> list[tuple[str, str, str, str]]:
    """(code, severity, reason_id, reason_en) for the documentation."""
    chosen = CATALOGUE if codes is None else {c: CATALOGUE[c] for c in codes}
    return [(p.code, p.severity.value, p.reason_id, p.reason_en) for p in chosen.values()]

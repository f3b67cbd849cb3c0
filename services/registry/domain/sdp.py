"""SDP submissions: which records of a part are accepted, how the snapshot stands, and the answers."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta
from typing import Any

import pydantic

from shared import nik, problems
from shared.contracts import (
    WIB,
    InmateRecord,
    Lateness,
    ReceiptStatus,
    RecordProblem,
    Register,
    SdpRecordsAccepted,
    SdpSubmission,
    SnapshotState,
    SubmissionProcessed,
    SubmissionReceipt,
    derive_message_id,
)
from shared.problems import Problem, Severity

from . import codes as c

TAHANAN = frozenset({Register.A_I, Register.A_II, Register.A_III, Register.A_IV, Register.A_V})
NOT_YET_TRIED = frozenset({Register.A_I, Register.A_II})  # investigation and prosecution: no verdict yet
# Sentence length (days) each B register admits; the month boundaries are fuzzy by a day or two.
SENTENCE_DAYS = {
    Register.B_I: (365, 36_500),
    Register.B_IIA: (88, 366),
    Register.B_IIB: (1, 93),
    Register.B_III: (1, 488),  # kurungan: at most a year, a year and four months when aggravated
}
MIN_AGE_YEARS = 12  # UU 11/2012: children under 12 bear no criminal responsibility
MAX_AGE_YEARS = 120
CLOCK_SKEW = timedelta(minutes=10)
TAHANAN_DEADLINE, OTHER_DEADLINE = time(10, 0), time(14, 0)
_ERROR_TYPES = {
    "missing": c.FIELD_REQUIRED,
    "string_too_long": c.FIELD_TOO_LONG,
    "too_long": c.FIELD_TOO_LONG,
    "extra_forbidden": c.FIELD_UNKNOWN,
}
# Control characters (C0, DEL, C1) have no place in a field; text-direction marks can disguise what a name says.
_FORBIDDEN = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


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


def _strings(value: Any, path: str) -> Iterable[tuple[str, str]]:
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, Mapping):
        for k, v in value.items():
            yield from _strings(v, f"{path}.{k}" if path else str(k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _strings(v, f"{path}.{i}")


# The same characters as they can appear in a JSON body: escaped, or raw in UTF-8 (JSON itself refuses raw
# C0 characters inside strings, so raw tabs and newlines between tokens are harmless formatting).
_NOT_RAW_C0 = (
    bytes(range(0x20, 0x7F)) + bytes(range(0x80, 0x100)) + b"\t\n\r"
)  # deleted: what is left is C0 or DEL
_RAW_MULTIBYTE = re.compile(rb"\xc2[\x80-\x9f]|\xe2\x80[\x8e\x8f\xaa-\xae]|\xe2\x81[\xa6-\xa9]")
_ESCAPED = re.compile(
    rb"\\[bfnrt]|\\u00[01][0-9a-fA-F]|\\u00[89][0-9a-fA-F]|\\u007[fF]|\\u200[eEfF]|\\u202[a-eA-E]|\\u206[6-9]"
)


def may_hold_control_characters(body: bytes) -> bool:
    """A cheap look at the whole message: records are only searched one by one when this says yes."""
    if body.translate(None, _NOT_RAW_C0):
        return True
    if (b"\xc2" in body or b"\xe2" in body) and _RAW_MULTIBYTE.search(body):
        return True
    return b"\\" in body and _ESCAPED.search(body) is not None


def control_characters(raw: Mapping[str, Any]) -> list[str]:
    """Paths of string fields holding control or text-direction characters."""
    return [path for path, text in _strings(raw, "") if _FORBIDDEN.search(text)]


def _age(birth: date, on: date) -> int:
    return on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))


def record_rules(r: InmateRecord, *, as_of: date, received_at: datetime) -> list[tuple[Problem, str]]:
    """Facts that cannot be, or that contradict each other, in one valid-looking record: (problem, field)."""
    found: list[tuple[Problem, str]] = []
    if r.entry_date > as_of:
        found.append((c.ENTRY_DATE_IN_FUTURE, "entry_date"))
    if r.birth_date > as_of:
        found.append((c.BIRTH_DATE_IN_FUTURE, "birth_date"))
    elif r.birth_date > r.entry_date:
        found.append((c.BIRTH_AFTER_ENTRY, "birth_date"))
    elif _age(r.birth_date, r.entry_date) < MIN_AGE_YEARS:
        found.append((c.TOO_YOUNG, "birth_date"))
    if _age(r.birth_date, as_of) > MAX_AGE_YEARS:
        found.append((c.BIRTH_DATE_IMPLAUSIBLE, "birth_date"))
    if r.detention_start and r.detention_expiry and r.detention_expiry < r.detention_start:
        found.append((c.DETENTION_EXPIRY_BEFORE_START, "detention_expiry"))
    if r.detention_start and any(e.until < r.detention_start for e in r.extensions):
        found.append((c.DETENTION_EXTENSION_INVALID, "extensions"))
    if r.expected_release and r.expected_release < r.entry_date:
        found.append((c.RELEASE_BEFORE_ENTRY, "expected_release"))

    if r.book in TAHANAN:
        if r.detention_start is None:
            found.append((c.REGISTER_NEEDS_DETENTION, "detention_start"))
        if r.book in NOT_YET_TRIED and r.sentence_days:
            found.append((c.REGISTER_TAHANAN_WITH_SENTENCE, "sentence_days"))
        held_until = max(
            [e.until for e in r.extensions] + ([r.detention_expiry] if r.detention_expiry else []),
            default=None,
        )
        if held_until is not None and held_until < as_of and r.custody_status.value == "in_custody":
            found.append((c.DETENTION_EXPIRED, "detention_expiry"))
    elif r.sentence_days is None:
        found.append((c.REGISTER_NEEDS_SENTENCE, "sentence_days"))
    else:
        low, high = SENTENCE_DAYS[r.book]
        if not low <= r.sentence_days <= high:
            found.append((c.REGISTER_SENTENCE_MISMATCH, "sentence_days"))

    if r.nik is None:
        found.append((c.NIK_ABSENT, "nik"))
    if r.updated_at > received_at + CLOCK_SKEW:
        found.append((c.UPDATED_AT_AHEAD, "updated_at"))
    return found


def schema_problem(err: Any, index: int, inmate_id: str | None) -> RecordProblem:
    """A pydantic error as a refusal: the field's path and what was wrong, never the value."""
    path = ".".join(str(p) for p in err["loc"])
    problem = c.REGISTER_UNKNOWN if path == "register" else _ERROR_TYPES.get(err["type"], c.FIELD_INVALID)
    return problem_entry(problem, index=index, inmate_id=inmate_id, field=path or None, detail=err["msg"])


def check_record(
    raw: Any, index: int, *, as_of: date, received_at: datetime, screen: bool = True
) -> tuple[InmateRecord | None, list[RecordProblem], list[RecordProblem]]:
    """One record against the schema, the NIK rules and the date and register rules:
    (record or None, refusals, warnings)."""
    if not isinstance(raw, dict):
        return None, [problem_entry(c.RECORD_NOT_OBJECT, index=index)], []
    value = raw.get("inmate_id")
    inmate_id = value[:64] if isinstance(value, str) else None
    if screen and (dirty := control_characters(raw)):
        return (
            None,
            [
                problem_entry(c.FIELD_CONTROL_CHARACTERS, index=index, inmate_id=inmate_id, field=path)
                for path in dirty[:10]
            ],
            [],
        )
    try:
        record = InmateRecord.model_validate(raw)
    except pydantic.ValidationError as exc:
        return (
            None,
            [
                schema_problem(err, index, inmate_id)
                for err in exc.errors(include_input=False, include_url=False)
            ],
            [],
        )

    found: list[tuple[Problem, str]] = []
    if record.nik is not None:
        result = nik.check(record.nik, today=as_of)
        found += [(p, "nik") for p in result.problems]
        if result.valid:
            found += [
                (p, "nik") for p in nik.contradictions(result, sex=record.sex, birth_date=record.birth_date)
            ]
    found += record_rules(record, as_of=as_of, received_at=received_at)
    refusals: list[RecordProblem] = []
    warnings: list[RecordProblem] = []
    for problem, path in found:
        entry = problem_entry(problem, index=index, inmate_id=record.inmate_id, field=path)
        (warnings if problem.severity is Severity.WARNING else refusals).append(entry)
    return (None if refusals else record), refusals, warnings


@dataclass(frozen=True)
class Assessment:
    """The registry's answer to the records of one part."""

    received: int
    accepted: list[InmateRecord] = field(default_factory=list)
    rejected: list[RecordProblem] = field(default_factory=list)
    warnings: list[RecordProblem] = field(default_factory=list)
    part_refused: bool = False  # refused as a whole: it does not count towards its snapshot

    @property
    def status(self) -> ReceiptStatus:
        if self.rejected and not self.accepted:
            return ReceiptStatus.REJECTED
        return ReceiptStatus.PARTIALLY_ACCEPTED if self.rejected else ReceiptStatus.ACCEPTED


def part_problem(submission: SdpSubmission, sender: str, *, today: date) -> tuple[Problem, str] | None:
    """A reason to refuse the whole part before looking at its records."""
    if submission.upt_id != sender:
        return problems.SENDER_MISMATCH, "upt_id"
    if submission.part > submission.parts:
        return c.PART_OUT_OF_RANGE, "part"
    if submission.as_of > today:
        return c.AS_OF_IN_FUTURE, "as_of"
    if not submission.records and submission.parts > 1:
        return c.PART_EMPTY, "records"
    return None


def assess(
    submission: SdpSubmission, sender: str, *, today: date, received_at: datetime, screen: bool = True
) -> Assessment:
    """Check every record of a part independently, so valid records go through beside invalid ones.

    `screen=False` skips the search for control characters, for a body `may_hold_control_characters` cleared.
    """
    received = len(submission.records)
    if found := part_problem(submission, sender, today=today):
        return Assessment(received, rejected=[problem_entry(found[0], field=found[1])], part_refused=True)
    accepted: list[InmateRecord] = []
    rejected: list[RecordProblem] = []
    warnings: list[RecordProblem] = []
    if not submission.records:
        warnings.append(problem_entry(c.SINGLE_EMPTY_PART, field="records"))
    seen: set[str] = set()
    for index, raw in enumerate(submission.records):
        record, refusals, notes = check_record(
            raw, index, as_of=submission.as_of, received_at=received_at, screen=screen
        )
        if record is not None and record.inmate_id in seen:
            duplicate = problem_entry(
                c.DUPLICATE_INMATE_ID, index=index, inmate_id=record.inmate_id, field="inmate_id"
            )
            record, refusals, notes = None, [duplicate], []
        rejected += refusals
        warnings += notes
        if record is not None:
            seen.add(record.inmate_id)
            accepted.append(record)
    return Assessment(received, accepted, rejected, warnings)


def without_taken(assessment: Assessment, taken: set[str], positions: Mapping[str, int]) -> Assessment:
    """Refuse the records whose inmate_id another part of the same snapshot already holds."""
    if not taken:
        return assessment
    kept = [r for r in assessment.accepted if r.inmate_id not in taken]
    refused = [
        problem_entry(
            c.DUPLICATE_INMATE_ID,
            index=positions.get(r.inmate_id),
            inmate_id=r.inmate_id,
            field="inmate_id",
            detail="already sent in another part of this snapshot",
        )
        for r in assessment.accepted
        if r.inmate_id in taken
    ]
    return replace(assessment, accepted=kept, rejected=assessment.rejected + refused)


@dataclass(frozen=True)
class StoredSnapshot:
    """A snapshot of a UPT's day as the registry has it: parts announced and parts received."""

    snapshot: int
    parts: int
    received_parts: frozenset[int]
    complete: bool
    superseded: bool


@dataclass(frozen=True)
class SnapshotDecision:
    refusal: tuple[Problem, str] | None
    state: SnapshotState | None
    completes: bool = False  # this part made the snapshot complete
    supersedes: tuple[int, ...] = ()  # older snapshots this completion replaces


def snapshot_decision(
    existing: Sequence[StoredSnapshot], snapshot: int, part: int, parts: int
) -> SnapshotDecision:
    """Where a part fits: a later complete snapshot wins, parts must agree, a resent part counts once."""
    if any(s.snapshot > snapshot and s.complete for s in existing):
        return SnapshotDecision((c.SNAPSHOT_SUPERSEDED, "snapshot"), None)
    mine = next((s for s in existing if s.snapshot == snapshot), None)
    if mine is not None and mine.parts != parts:
        return SnapshotDecision((c.PARTS_MISMATCH, "parts"), None)
    received = (mine.received_parts if mine else frozenset()) | {part}
    complete = len(received) == parts
    was_complete = mine is not None and mine.complete
    completes = complete and not was_complete
    older = (
        tuple(s.snapshot for s in existing if s.snapshot < snapshot and not s.superseded) if completes else ()
    )
    state = SnapshotState(
        parts=parts,
        parts_received=len(received),
        complete=complete,
        superseded=mine.superseded if mine else False,
    )
    return SnapshotDecision(None, state, completes, older)


def lateness(as_of: date, received_at: datetime) -> Lateness:
    """Against the snapshot date's deadlines: 10:00 WIB for tahanan, 14:00 WIB for the rest."""
    local = received_at.astimezone(WIB)
    if local < datetime.combine(as_of, TAHANAN_DEADLINE, tzinfo=WIB):
        return Lateness.ON_TIME
    if local < datetime.combine(as_of, OTHER_DEADLINE, tzinfo=WIB):
        return Lateness.AFTER_10
    return Lateness.AFTER_14


@dataclass(frozen=True)
class Outcome:
    """The messages a consumed part produces, all derived from the part's own id."""

    receipt: SubmissionReceipt
    status: SubmissionProcessed
    accepted: SdpRecordsAccepted | None
    store_records: bool  # False when the whole part is refused


def _answers(
    in_reply_to: str,
    sender: str,
    assessment: Assessment,
    *,
    now: datetime,
    part: SdpSubmission | None,
    late: Lateness | None = None,
    state: SnapshotState | None = None,
) -> tuple[SubmissionReceipt, SubmissionProcessed]:
    """The receipt to the sender and the status event for the monitor, with ids derived from the message."""
    where: dict[str, Any] = {"lateness": late, "snapshot_state": state}
    if part is not None:
        where |= {"as_of": part.as_of, "snapshot": part.snapshot, "part": part.part, "parts": part.parts}
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


def outcome(
    submission: SdpSubmission,
    sender: str,
    assessment: Assessment,
    decision: SnapshotDecision,
    *,
    now: datetime,
) -> Outcome:
    sid = submission.message_id
    late = lateness(submission.as_of, now)
    if assessment.part_refused or decision.refusal is not None:
        refused = assessment
        if decision.refusal is not None:
            entry = problem_entry(decision.refusal[0], field=decision.refusal[1])
            refused = Assessment(assessment.received, rejected=[entry], part_refused=True)
        receipt, status = _answers(sid, sender, refused, now=now, part=submission, late=late)
        return Outcome(receipt, status, None, store_records=False)
    receipt, status = _answers(
        sid, sender, assessment, now=now, part=submission, late=late, state=decision.state
    )
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
    return Outcome(receipt, status, accepted, store_records=True)


def over_rate(
    submission: SdpSubmission, sender: str, retry_after: float, *, now: datetime
) -> SubmissionReceipt:
    """The answer to a part not read because its sender sent too much at once (domain/rate.py): an id of its
    own (the part's real receipt, after the resend, keeps the id derived from the part), and no status event
    (nothing was refused for good: the day's counts stay those of the parts read)."""
    wait = float(max(1, math.ceil(retry_after)))
    entry = problem_entry(c.SENDER_OVER_RATE, detail=f"resend after {wait:.0f} s")
    refused = Assessment(len(submission.records), rejected=[entry], part_refused=True)
    receipt, _ = _answers(submission.message_id, sender, refused, now=now, part=submission)
    return receipt.model_copy(
        update={
            "message_id": derive_message_id("registry", "over-rate", submission.message_id, now.isoformat()),
            "retry_after_s": wait,
        }
    )


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
    refused = Assessment(received, rejected=[problem_entry(problem, detail=detail)], part_refused=True)
    return _answers(in_reply_to, sender, refused, now=now, part=None)

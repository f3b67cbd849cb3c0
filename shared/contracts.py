"""Every message that crosses a service boundary, with its routing key."""

from __future__ import annotations

import enum
import uuid
from datetime import date, datetime, timedelta, timezone
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema

from shared.ektp import EktpStatus
from shared.nik import Sex

WIB = timezone(timedelta(hours=7), "WIB")  # deadlines and "today" are Western Indonesia Time
_ID_NAMESPACE = uuid.UUID("6f1d0a52-6a7e-4b55-9a59-2f0c3d2b1e11")
UnitId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9-]*$")]


def _written_out(value: Any) -> Any:
    """A time or a date is written out (ISO 8601): a bare number is refused, never read as seconds since 1970."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        raise ValueError("a time or a date is written out (ISO 8601), not given as a number")
    return value


Instant = Annotated[datetime, BeforeValidator(_written_out)]
Day = Annotated[date, BeforeValidator(_written_out)]


def derive_message_id(*parts: object) -> str:
    """A message id that is the same every time the same thing is said (redeliveries, relay retries)."""
    return str(uuid.uuid5(_ID_NAMESPACE, "/".join(str(p) for p in parts)))


class Message(BaseModel):
    """Envelope every message shares; `message_id` also travels as the AMQP `message_id` property."""

    model_config = ConfigDict(frozen=True, extra="ignore")
    SCHEMA_VERSION: ClassVar[int] = 1
    ROUTING_KEY: ClassVar[str]  # where the message is published; `{placeholders}` name the unit

    message_id: str = Field(
        min_length=1,
        max_length=128,
        description="Deterministic id: the same content said twice carries the same id; equals the AMQP "
        "message_id property.",
    )
    schema_version: int = Field(default=1, ge=1, description="Version of this message's schema.")
    produced_at: Instant = Field(description="When the producer created the message (UTC).")


# --- SDP: UPT inmate data -------------------------------------------------------------------------------


class Register(enum.StrEnum):
    """Inmate register books: A = tahanan by detaining authority, B = narapidana by sentence length."""

    A_I = "A I"
    A_II = "A II"
    A_III = "A III"
    A_IV = "A IV"
    A_V = "A V"
    B_I = "B I"
    B_IIA = "B IIa"
    B_IIB = "B IIb"
    B_III = "B III"


class CustodyStatus(enum.StrEnum):
    IN_CUSTODY = "in_custody"
    RELEASED = "released"
    TRANSFERRED_OUT = "transferred_out"
    TRANSFERRED_IN = "transferred_in"
    ESCAPED = "escaped"
    DIED = "died"


class CaseInfo(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    articles: list[Annotated[str, Field(max_length=200)]] = Field(
        default_factory=list, max_length=50, description="Articles charged, e.g. 'Pasal 114 UU 35/2009'."
    )
    case_number: str | None = Field(default=None, max_length=100, description="Court or police case number.")
    detaining_authority: str | None = Field(
        default=None,
        max_length=200,
        description="Who ordered the detention (penyidik, penuntut umum, court).",
    )


class DetentionExtension(BaseModel):
    """One extension of a tahanan's detention, as granted by letter."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    granted_by: str = Field(
        min_length=1, max_length=200, description="Authority that granted it (e.g. Ketua PN)."
    )
    days: int = Field(ge=1, le=400, description="Days added.")
    until: Day = Field(description="New expiry date.")
    letter_number: str | None = Field(default=None, max_length=100)


class InmateRecord(BaseModel):
    """One inmate as a UPT's SDP knows them on the snapshot date."""

    model_config = ConfigDict(frozen=True, extra="forbid", validate_by_name=True, serialize_by_alias=True)

    inmate_id: str = Field(
        min_length=1, max_length=64, description="The UPT's own stable id for this inmate."
    )
    # Called `register` on the wire; `book` in Python because BaseModel already has a `register`.
    book: Register = Field(alias="register", description="Register book the inmate is entered in.")
    register_number: str = Field(
        min_length=1, max_length=64, description="Register number exactly as written by the UPT."
    )
    nik: str | None = Field(
        default=None,
        max_length=32,
        description="NIK if known; an inmate without one is flagged as needing e-KTP recording.",
    )
    full_name: str = Field(min_length=1, max_length=200)
    aliases: list[Annotated[str, Field(max_length=200)]] = Field(default_factory=list, max_length=20)
    sex: Sex = Field(description="L = laki-laki, P = perempuan.")
    birth_place: str | None = Field(default=None, max_length=100)
    birth_date: Day
    mother_name: str | None = Field(default=None, max_length=200)
    nationality: str = Field(default="IDN", min_length=3, max_length=3, description="ISO 3166 alpha-3.")
    case: CaseInfo | None = None
    detention_start: Day | None = Field(default=None, description="Start of the current detention (tahanan).")
    detention_expiry: Day | None = Field(default=None, description="When the current detention period ends.")
    extensions: list[DetentionExtension] = Field(default_factory=list, max_length=20)
    sentence_days: int | None = Field(default=None, ge=0, le=36_500, description="Null for tahanan.")
    entry_date: Day = Field(description="Date the inmate entered this UPT.")
    expected_release: Day | None = None
    custody_status: CustodyStatus = CustodyStatus.IN_CUSTODY
    updated_at: Instant = Field(description="Last change of this record in the UPT's SDP.")


def _inline_refs(schema: Any, defs: dict[str, Any]) -> Any:
    """The schema with every `$ref` replaced by what it points to (WithJsonSchema cannot carry `$defs`)."""
    if isinstance(schema, dict):
        if "$ref" in schema:
            return _inline_refs(defs[schema["$ref"].rsplit("/", 1)[-1]], defs)
        return {k: _inline_refs(v, defs) for k, v in schema.items() if k != "$defs"}
    if isinstance(schema, list):
        return [_inline_refs(v, defs) for v in schema]
    return schema


def _records_schema(model: type[BaseModel]) -> Any:
    schema = model.model_json_schema()
    return WithJsonSchema({"type": "array", "items": _inline_refs(schema, schema.get("$defs", {}))})


class SdpSubmission(Message):
    """Published by a UPT (as its own broker user) on `sdp.<upt_id>.submission`: one part of a snapshot."""

    ROUTING_KEY: ClassVar[str] = "sdp.{upt_id}.submission"

    upt_id: UnitId = Field(description="Must equal the sending UPT's broker user.")
    as_of: Day = Field(description="Snapshot date: the inmate population on that day.")
    snapshot: int = Field(
        default=1, ge=1, le=2_147_483_647, description="Later snapshots for the same date supersede earlier."
    )
    part: int = Field(ge=1, description="Part number, 1..parts.")
    parts: int = Field(ge=1, le=10_000, description="Number of parts in this snapshot.")
    # Records are checked one by one so that one bad record does not sink its neighbours.
    records: Annotated[list[Any], _records_schema(InmateRecord)] = Field(
        max_length=5_000, description="Inmate records (see InmateRecord)."
    )


class RecordProblem(BaseModel):
    """Why one record (or the whole message, when `index` is null) was refused or flagged."""

    model_config = ConfigDict(frozen=True)

    index: int | None = Field(default=None, description="Position of the record in the part; null = message.")
    inmate_id: str | None = None
    field: str | None = Field(default=None, description="Dotted path of the offending field.")
    code: str = Field(description="Stable error code (see the error catalogue).")
    reason_id: str = Field(description="Reason in Bahasa Indonesia.")
    reason_en: str = Field(description="Reason in English.")
    detail: str | None = Field(
        default=None, max_length=1_000, description="Technical detail; never echoes the submitted values."
    )


class ReceiptStatus(enum.StrEnum):
    ACCEPTED = "accepted"
    PARTIALLY_ACCEPTED = "partially_accepted"
    REJECTED = "rejected"


class Lateness(enum.StrEnum):
    """Against the SDP deadlines of the snapshot date: tahanan data by 10:00 WIB, the rest by 14:00 WIB."""

    ON_TIME = "on_time"
    AFTER_10 = "after_10"  # misses the 10:00 WIB deadline for tahanan and occupancy
    AFTER_14 = "after_14"  # misses the 14:00 WIB deadline for everything else


class SnapshotState(BaseModel):
    """Where a UPT's snapshot for a date stands after this part."""

    model_config = ConfigDict(frozen=True)

    parts: int = Field(description="Parts the snapshot announced.")
    parts_received: int = Field(description="Distinct parts received so far (a resent part counts once).")
    complete: bool = Field(description="Every part has arrived.")
    superseded: bool = Field(default=False, description="A later snapshot for the same date replaced it.")


class SubmissionReceipt(Message):
    """Sent by registry to the sender's own queue `receipts.<sender>` for every submission it consumed."""

    ROUTING_KEY: ClassVar[str] = "{sender}"

    in_reply_to: str = Field(description="message_id of the submission this answers.")
    sender: str = Field(description="Unit id of the broker user that sent the submission.")
    upt_id: str | None = None
    as_of: Day | None = None
    snapshot: int | None = None
    part: int | None = None
    parts: int | None = None
    status: ReceiptStatus
    received: int = Field(ge=0, description="Records in the part.")
    accepted: int = Field(ge=0, description="Records stored.")
    rejected: list[RecordProblem] = Field(default_factory=list, description="One entry per refusal reason.")
    warnings: list[RecordProblem] = Field(default_factory=list, description="Accepted, but worth a look.")
    lateness: Lateness | None = Field(default=None, description="Against the deadlines of the snapshot date.")
    snapshot_state: SnapshotState | None = None
    retry_after_s: float | None = Field(
        default=None,
        description="With SENDER_OVER_RATE only: seconds to wait before resending the same part (same "
        "message_id). That answer has an id of its own; the part's real receipt follows the resend.",
    )


class SdpRecordsAccepted(Message):
    """Published by registry on `registry.accepted.sdp` with the records of one part it stored."""

    ROUTING_KEY: ClassVar[str] = "registry.accepted.sdp"

    submission_id: str = Field(description="message_id of the submission.")
    upt_id: UnitId
    as_of: Day
    snapshot: int
    part: int
    parts: int
    records: list[InmateRecord]


class InmateFlagCode(enum.StrEnum):
    NIK_CLAIMED_BY_ANOTHER_PERSON = "NIK_CLAIMED_BY_ANOTHER_PERSON"


class InmateFlag(BaseModel):
    """A dedup finding about one inmate record, naming the record it collides with."""

    model_config = ConfigDict(frozen=True)

    code: InmateFlagCode
    counterpart_upt_id: str
    counterpart_inmate_id: str


class InmateFlagSet(BaseModel):
    """All flags one inmate record carries as of a dedup sequence number (empty = no longer flagged)."""

    model_config = ConfigDict(frozen=True)

    upt_id: str
    inmate_id: str
    flags: list[InmateFlag] = Field(default_factory=list)


class PopulationCandidate(BaseModel):
    """A population record that may be the inmate, scored by demographic linkage (Fellegi-Sunter)."""

    model_config = ConfigDict(frozen=True)

    nik: str
    weight: float = Field(
        description="Match weight in bits (log2 of the likelihood ratio), higher = likelier."
    )
    probability: float = Field(ge=0, le=1, description="Match probability given the population's size.")
    levels: dict[str, str] = Field(
        default_factory=dict, description="Agreement level per field (name, birth_date, sex, ...)."
    )


class PopulationCheck(BaseModel):
    """One inmate record against the population record: its NIK checked, or candidates found without one."""

    model_config = ConfigDict(frozen=True)

    inmate_id: str
    codes: list[str] = Field(
        default_factory=list,
        description="For a claimed NIK: NIK_NOT_IN_POPULATION, NIK_NAME_DIFFERS, NIK_SEX_DIFFERS, "
        "NIK_BIRTH_DATE_DIFFERS (empty: the population record agrees).",
    )
    candidates: list[PopulationCandidate] = Field(
        default_factory=list, description="For an inmate without a NIK: scored candidates, best first."
    )
    probable_nik: str | None = Field(
        default=None, description="The best candidate's NIK when its weight reaches the link threshold."
    )


class SdpRecordsChecked(Message):
    """Published by dedup on `dedup.verdict.sdp`: the accepted records of one part and what dedup found."""

    ROUTING_KEY: ClassVar[str] = "dedup.verdict.sdp"

    submission_id: str
    upt_id: UnitId
    as_of: Day
    snapshot: int
    part: int
    parts: int
    records: list[InmateRecord]
    flag_seq: int = Field(
        ge=0,
        description="Dedup's sequence number for these flag sets; a lower number never overrides a higher.",
    )
    flag_sets: list[InmateFlagSet] = Field(
        default_factory=list,
        description="Complete flag sets of this part's records and of every record sharing a NIK with them.",
    )
    population_checks: list[PopulationCheck] = Field(
        default_factory=list, description="This part's records against the population record."
    )


# --- e-KTP: Dukcapil kab/kota ----------------------------------------------------------------------------

FINGER_DIM = 64  # float32 values per fingerprint embedding
FACE_DIM = 128  # float32 values per face embedding
IRIS_BITS = 2048  # bits in an IrisCode and in its mask
Base64 = Annotated[str, Field(max_length=4_096, description="Base64 (standard alphabet, padded).")]


class FingerTemplate(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    position: int = Field(ge=1, le=10, description="ISO finger position: 1-5 right thumb..little, 6-10 left.")
    embedding: Base64 = Field(description=f"{FINGER_DIM} little-endian float32 values.")
    quality: int = Field(ge=0, le=100, description="Capture quality (NFIQ-like, 100 = best).")


class IrisTemplate(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    eye: Literal["left", "right"]
    code: Base64 = Field(description=f"IrisCode: {IRIS_BITS} bits.")
    mask: Base64 = Field(
        description=f"{IRIS_BITS} bits; 1 = the code bit is usable (not eyelid or reflection)."
    )
    quality: int = Field(ge=0, le=100)


class FaceTemplate(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    embedding: Base64 = Field(description=f"{FACE_DIM} little-endian float32 values.")
    quality: int = Field(ge=0, le=100)


class BiometricExceptions(BaseModel):
    """What could not be captured, declared by the operator (amputation, eye condition)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    missing_fingers: list[Annotated[int, Field(ge=1, le=10)]] = Field(default_factory=list, max_length=10)
    missing_irises: list[Literal["left", "right"]] = Field(default_factory=list, max_length=2)
    reason: str | None = Field(default=None, max_length=500)


class Biometrics(BaseModel):
    """Templates, never images. They exist only in transit and in the dedup schema."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    fingers: list[FingerTemplate] = Field(default_factory=list, max_length=10)
    irises: list[IrisTemplate] = Field(default_factory=list, max_length=2)
    face: FaceTemplate | None = None
    signature_sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    exceptions: BiometricExceptions = Field(default_factory=BiometricExceptions)


class Address(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    province_code: str = Field(pattern=r"^\d{2}$")
    regency_code: str = Field(pattern=r"^\d{4}$", description="Kemendagri kab/kota code (no dots).")
    district_code: str | None = Field(default=None, pattern=r"^\d{6}$")
    village_code: str | None = Field(default=None, pattern=r"^\d{10}$")
    street: str | None = Field(default=None, max_length=300)


class Demographics(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    full_name: str = Field(min_length=1, max_length=200)
    birth_place: str = Field(min_length=1, max_length=100)
    birth_date: Day
    sex: Sex
    mother_name: str | None = Field(default=None, max_length=200)
    address: Address


class EnrolmentPacket(Message):
    """Published by a Dukcapil kab/kota (as its own broker user) on `ektp.<kabkota>.packet`."""

    ROUTING_KEY: ClassVar[str] = "ektp.{kabkota}.packet"

    packet_id: str = Field(
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9._-]+$",
        description="The capture's id, unique per kab/kota; a resend carries the same id.",
    )
    kabkota: str = Field(pattern=r"^\d{4}$", description="Where it was captured; must be the sender's code.")
    station_id: str = Field(min_length=1, max_length=64, description="Capture station.")
    nik: str = Field(max_length=32)
    demographics: Demographics
    biometrics: Biometrics
    captured_at: Instant


class RegionalStatusReported(Message):
    """Published by a Dukcapil kab/kota on `ektp.<kabkota>.status`: its own progress with a capture."""

    ROUTING_KEY: ClassVar[str] = "ektp.{kabkota}.status"

    packet_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")
    kabkota: str = Field(pattern=r"^\d{4}$")
    status: Literal["BIO_CAPTURED", "PROCESSING", "SENT_FOR_ENROLLMENT"]
    at: Instant


class PrintEventReported(Message):
    """Published by a Dukcapil kab/kota on `ektp.<kabkota>.print`: a card's progress after PRINT_READY."""

    ROUTING_KEY: ClassVar[str] = "ektp.{kabkota}.print"

    packet_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")
    kabkota: str = Field(pattern=r"^\d{4}$")
    status: Literal["SENT_FOR_CARD_PRINTING", "CARD_PRINTED", "CARD_SHIPPED", "CARD_ISSUED"]
    at: Instant


class StatusMove(BaseModel):
    """One move of a capture through the e-KTP statuses, with why."""

    model_config = ConfigDict(frozen=True)

    from_status: EktpStatus
    to_status: EktpStatus
    at: Instant
    code: str | None = Field(default=None, description="Why, for failures and refusals (error catalogue).")
    reason_id: str | None = None
    reason_en: str | None = None
    implied: bool = Field(default=False, description="Not reported, but proven by what arrived.")


class EktpReceipt(Message):
    """Sent by registry to `receipts.<sender>` for every packet, status report and print event it consumed."""

    ROUTING_KEY: ClassVar[str] = "{sender}"

    in_reply_to: str
    sender: str
    packet_id: str | None = None
    status: EktpStatus | None = Field(default=None, description="The capture's status after this message.")
    moves: list[StatusMove] = Field(default_factory=list, description="Every move this message caused.")
    refused: list[RecordProblem] = Field(
        default_factory=list,
        description="Why the message changed nothing (illegal move, conflict, unreadable).",
    )
    problems: list[RecordProblem] = Field(
        default_factory=list, description="What made the capture fail (templates, regions), one entry each."
    )


class PacketStatusChanged(Message):
    """Published by registry on `status.registry.ektp` for every consumed e-KTP message."""

    ROUTING_KEY: ClassVar[str] = "status.registry.ektp"

    packet_id: str | None
    kabkota: str
    status: EktpStatus | None
    moves: list[StatusMove] = Field(default_factory=list)
    refused: list[str] = Field(default_factory=list, description="Codes, when the message changed nothing.")
    nik_masked: str | None = Field(
        default=None,
        description="The capture's NIK, masked (3201********0001), once the registry has its packet; never in full.",
    )


class EnrolmentAccepted(Message):
    """Published by registry on `registry.accepted.ektp` when a packet goes on to dedup (SENT_FOR_DEDUP)."""

    ROUTING_KEY: ClassVar[str] = "registry.accepted.ektp"

    packet_id: str
    kabkota: str
    station_id: str
    nik: str
    demographics: Demographics
    biometrics: Biometrics
    captured_at: Instant
    received_at: Instant


class VerdictCandidate(BaseModel):
    """A gallery person the capture was compared with, and how it scored per modality."""

    model_config = ConfigDict(frozen=True)

    nik: str
    person_id: int = Field(description="The person's id in dedup's gallery.")
    llr: float = Field(description="Fused log-likelihood ratio (same person vs different people).")
    modalities: int = Field(description="Comparisons (eyes, face, fingers) the score rests on.")
    iris_hd: list[float | None] = Field(description="Masked Hamming distance per eye (right, left).")
    face_cosine: float | None = None
    finger_cosines: list[float | None] = Field(description="Cosine per finger position 1..10.")


class EnrolmentVerdict(Message):
    """Published by dedup on `dedup.verdict.ektp`: what the 1:N search found for one capture."""

    ROUTING_KEY: ClassVar[str] = "dedup.verdict.ektp"

    packet_id: str
    kabkota: str
    nik: str
    status: EktpStatus = Field(
        description="DUPLICATE_RECORD, ADJUDICATE_RECORD, REQUEST_VALIDATION, PRINT_READY_RECORD or "
        "SEARCH_FAILURE_AT_CENTRAL."
    )
    finding: str = Field(
        description="one_to_one, one_to_many, already_enrolled, duplicate_nik, grey_zone, "
        "nik_contradicts_packet, nothing_to_compare, unique, or search_failed (the search kept failing); a "
        "reason may follow a colon."
    )
    candidates: list[VerdictCandidate] = Field(default_factory=list, description="The evidence, best first.")
    person_id: int | None = Field(default=None, description="The new gallery person, for PRINT_READY_RECORD.")
    gallery_size: int = Field(description="People searched.")
    duplicate_threshold: float = Field(description="Fused LLR at or above which a match was decided.")
    adjudicate_threshold: float = Field(description="Fused LLR at or above which a person decides.")
    decided_at: Instant


class AdjudicationDecision(Message):
    """Published by a centre user on `command.adjudication.decide`: a grey-zone capture is a duplicate or unique.

    Only the centre may send it; every command, applied or refused, is audited in dedup."""

    ROUTING_KEY: ClassVar[str] = "command.adjudication.decide"

    kabkota: str = Field(pattern=r"^\d{4}$")
    packet_id: str = Field(min_length=1, max_length=64)
    decision: Literal["duplicate", "unique"]
    operator: str = Field(min_length=1, max_length=100, description="The person deciding (name or staff id).")
    reason: str = Field(min_length=1, max_length=500, description="Why, for the audit trail.")


class CaseCandidate(BaseModel):
    """A gallery person a grey-zone capture resembles, as the adjudication desk shows it: never a template."""

    model_config = ConfigDict(frozen=True)

    person_id: int = Field(description="The person's id in dedup's gallery.")
    nik_masked: str = Field(description="The person's NIK, masked (3201********0001).")
    llr: float = Field(description="Fused log-likelihood ratio (same person vs different people).")
    modalities: int = Field(description="Comparisons (eyes, face, fingers) the score rests on.")
    iris_hd: list[float | None] = Field(
        description="Masked Hamming distance per eye (right, left); null: not compared."
    )
    face_cosine: float | None = Field(default=None, description="Face similarity; null: not compared.")
    finger_cosines: list[float | None] = Field(
        description="Cosine per finger position 1..10; null: not compared."
    )
    full_name: str | None = Field(
        default=None, description="The person's name in the population record; null when not recorded there."
    )
    sex: str | None = Field(default=None, description="L or P, from the population record.")
    birth_date: Day | None = Field(default=None, description="From the population record.")
    birth_place: str | None = Field(default=None, description="From the population record.")


class AdjudicationCaseChanged(Message):
    """Published by dedup on `status.dedup.adjudication`: a grey-zone capture waits for the centre's decision
    (`opened`), or the centre decided it (`decided`). For the adjudication desk: masked NIKs, the capture's
    demographics and the scores per modality; never a template."""

    ROUTING_KEY: ClassVar[str] = "status.dedup.adjudication"

    kabkota: str = Field(pattern=r"^\d{4}$")
    packet_id: str
    state: Literal["opened", "decided"]
    nik_masked: str = Field(description="The capture's NIK, masked.")
    full_name: str | None = Field(default=None, description="The capture's demographics, for the operator.")
    sex: str | None = None
    birth_date: Day | None = None
    birth_place: str | None = None
    candidates: list[CaseCandidate] = Field(default_factory=list, description="Best first.")
    duplicate_threshold: float | None = None
    adjudicate_threshold: float | None = None
    decision: Literal["duplicate", "unique"] | None = None
    operator: str | None = Field(default=None, description="The person who decided.")
    reason: str | None = None


# --- the centre: consolidation runs and the central feed ------------------------------------------------


class ConsolidationRunRequested(Message):
    """Published by a centre user on `command.consolidation.run`: consolidate one day.

    Only the centre's broker user may publish it (broker permissions); the consolidator checks the
    publisher again and answers every command with a run event, refused ones included."""

    ROUTING_KEY: ClassVar[str] = "command.consolidation.run"

    day: Day = Field(description="The day to consolidate (WIB); not in the future.")
    requested_by: str = Field(min_length=1, max_length=100, description="The person running it (name or id).")
    reason: str = Field(min_length=1, max_length=500, description="Why, for the audit trail.")
    accept_shrunken: list[UnitId] = Field(
        default_factory=list,
        max_length=1_000,
        description="UPTs whose held (shrunken) snapshot of the day the centre accepts in this run.",
    )


class PersonLinkRequested(Message):
    """Published by a centre user on `command.person.link`: the centre confirms that a person known without a
    NIK (an inmate, by central id) is the holder of this NIK, e.g. dedup's `probable_nik`. The two central
    records become one, the merge recorded with who confirmed it and why."""

    ROUTING_KEY: ClassVar[str] = "command.person.link"

    central_id: str = Field(
        pattern=r"^C[0-9]{1,18}$", description="The person known without a NIK (C + digits)."
    )
    nik: str = Field(pattern=r"^[0-9]{16}$", description="The NIK the centre confirms for that person.")
    operator: str = Field(
        min_length=1, max_length=100, description="The person confirming (name or staff id)."
    )
    reason: str = Field(min_length=1, max_length=500, description="Why, for the audit trail.")


class RunState(enum.StrEnum):
    STARTED = "started"
    PROGRESS = "progress"
    FINISHED = "finished"
    FAILED = "failed"


class ConsolidationRunReported(Message):
    """Published by the consolidator on `consolidation.run.<state>`: a run started, moved on, finished or
    failed (a refused command is a failed run with the reason)."""

    ROUTING_KEY: ClassVar[str] = "consolidation.run.{state}"

    run_id: str = Field(description="Stable id of the run (the day and the command or schedule behind it).")
    day: Day | None = Field(description="The day consolidated; null when the command could not be read.")
    state: RunState
    trigger: Literal["command", "schedule"] = "command"
    requested_by: str | None = None
    step: str | None = Field(default=None, description="The step under way or just done.")
    steps_done: int = Field(default=0, ge=0)
    steps_total: int = Field(default=0, ge=0)
    code: str | None = Field(default=None, description="Why a run failed or was refused (error catalogue).")
    reason_id: str | None = None
    reason_en: str | None = None
    summary: dict[str, Any] | None = Field(
        default=None, description="For `finished`: the national figures of the run report."
    )


class RunLineReported(Message):
    """Published by the consolidator on `consolidation.run.line_reported` when a run finishes: one UPT's line of
    the run report, the same figures as its CSV and printable page. Counts only: no person in it."""

    ROUTING_KEY: ClassVar[str] = "consolidation.run.line_reported"

    run_id: str = Field(description="The run whose report this line is.")
    day: Day = Field(description="The day the run consolidated.")
    upt_id: UnitId
    sent: bool = Field(description="The UPT sent a snapshot for the day.")
    complete: bool = Field(description="A snapshot of the day arrived whole.")
    lateness: str | None = Field(default=None, description="on_time, after_10 or after_14 (WIB deadlines).")
    snapshot: int | None = Field(default=None, description="The snapshot the run applied or held.")
    applied: str = Field(description="applied, held (shrunken), unchanged, incomplete or not_sent.")
    figures: dict[str, int] = Field(
        description="received, accepted, refused, warnings, inmates (in custody centrally after the run), "
        "previous, admissions, releases, transfers_in, transfers_out, in_transit, dual_custody, overstaying, "
        "notices, without_ektp."
    )
    breakdowns: dict[str, dict[str, int]] = Field(
        default_factory=dict,
        description="The report's lists counted: overstaying_by_register, notice_10_by_register and "
        "notice_3_by_register (register -> detainees), without_ektp_by_reason (no_nik, nik_not_in_population, "
        "no_print_ready_capture -> inmates) and without_ektp_by_nik_kabkota (the NIK's kab/kota code, '-' without a "
        "NIK -> inmates). Only non-zero counts.",
    )


class AlertChanged(Message):
    """Published by the monitor on `status.alert.<kind>` when an alert opens or closes: a UPT silent past its
    deadline, overstaying detainees, stuck e-KTP captures, dead letters piling up, a quiet service, a queue
    growing without a consumer. Counts and unit ids only: no person in it."""

    ROUTING_KEY: ClassVar[str] = "status.alert.{kind}"

    key: str = Field(description="Stable identity of the alert: the same condition keeps the same key.")
    kind: str = Field(
        description="upt_silent, overstaying, stuck_captures, stuck_spike (captures becoming stuck fast), "
        "dead_letters, service_quiet or queue_unconsumed."
    )
    state: Literal["opened", "closed"]
    severity: Literal["warning", "critical"]
    text_id: str = Field(description="What it is about, in Bahasa Indonesia.")
    text_en: str = Field(description="The same in English.")
    unit_id: str | None = Field(default=None, description="The UPT or Dukcapil office it is about, if one.")


class CentralRecordChanged(Message):
    """Published by the consolidator to the stream `central.records` (`central.record.changed`): one
    central person record changed. Carries the NIK in full: only centre systems may read the stream."""

    ROUTING_KEY: ClassVar[str] = "central.record.changed"

    central_id: str = Field(description="Stable central id of the person (C + digits).")
    version: int = Field(
        ge=1, description="The record's version after this change; increases by one each change."
    )
    changed: list[str] = Field(
        description="What changed: identity, episodes, ektp, flags, population, merged."
    )
    cause: str = Field(description="What caused it: a run id, or the message id of an e-KTP event.")
    person: dict[str, Any] = Field(
        description="The person's new state: nik, identity with provenance, episodes, e-KTP captures, flags."
    )


# --- status events for the monitor ----------------------------------------------------------------------


class SubmissionProcessed(Message):
    """Published by registry on `status.registry.submission` after each consumed submission part."""

    ROUTING_KEY: ClassVar[str] = "status.registry.submission"

    submission_id: str
    upt_id: str
    as_of: Day | None = Field(default=None, description="Null when the message could not be read at all.")
    snapshot: int | None = None
    part: int | None = None
    parts: int | None = None
    status: ReceiptStatus
    received: int
    accepted: int
    rejected: int = Field(description="Records refused.")
    warnings: int
    lateness: Lateness | None = None
    snapshot_state: SnapshotState | None = None


class NikCollisionsFound(Message):
    """Published by dedup on `status.dedup.sdp` when a part brought NIK collisions."""

    ROUTING_KEY: ClassVar[str] = "status.dedup.sdp"

    submission_id: str
    upt_id: str
    flagged_records: int = Field(description="Records (of any UPT) that share a NIK with another person.")


class CentralInmatesUpdated(Message):
    """Published by consolidator on `status.consolidator.inmates` after central records were upserted."""

    ROUTING_KEY: ClassVar[str] = "status.consolidator.inmates"

    submission_id: str
    upt_id: str
    as_of: Day
    upserted: int
    version: int = Field(
        ge=1, description="Increases with every announcement; a lower version never overrides a higher one."
    )
    central_total: int = Field(description="Central inmate records of this UPT after the upsert.")
    flagged_total: int = Field(description="Of those, records carrying at least one dedup flag.")


STATUS_EVENTS: dict[str, type[Message]] = {
    m.ROUTING_KEY: m
    for m in (SubmissionProcessed, NikCollisionsFound, CentralInmatesUpdated, PacketStatusChanged)
}

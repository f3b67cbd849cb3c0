"""e-KTP captures at the centre: template and region checks, and each capture's moves through the statuses."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
import struct
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime

from shared import nik
from shared.contracts import (
    FACE_DIM,
    FINGER_DIM,
    IRIS_BITS,
    Biometrics,
    EktpReceipt,
    EnrolmentAccepted,
    EnrolmentPacket,
    PacketStatusChanged,
    RecordProblem,
    StatusMove,
    derive_message_id,
)
from shared.ektp import LEGAL_MOVES, REGIONAL_REPORTS, EktpStatus, path_to
from shared.nik import mask as mask_nik
from shared.problems import Problem, Severity

from . import codes as c
from .sdp import problem_entry

S = EktpStatus
MIN_QUALITY = {"finger": 40, "iris": 50, "face": 40}
MIN_MASK_SHARE = 0.25  # an IrisCode with less than a quarter of usable bits cannot be matched
AWAITING = frozenset({S.UNREGISTERED, *REGIONAL_REPORTS})  # statuses in which a capture's packet may arrive


def decode(text: str, size: int) -> bytes | None:
    """Strict base64 of exactly `size` bytes, or None."""
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw if len(raw) == size else None


def usable_vector(raw: bytes | None, dim: int) -> bool:
    """Finite and not all zeros: a NaN or a zero vector cannot be compared with anything."""
    if raw is None:
        return False
    values = struct.unpack(f"<{dim}f", raw)
    return all(math.isfinite(v) for v in values) and any(v != 0.0 for v in values)


def usable_mask(raw: bytes | None) -> bool:
    if raw is None:
        return False
    usable_bits = int.from_bytes(raw, "little").bit_count()
    return usable_bits >= MIN_MASK_SHARE * IRIS_BITS


def template_problems(bio: Biometrics) -> list[RecordProblem]:
    """What makes the templates unusable: absent without a declared exception, unreadable, or poor."""
    found: list[tuple[Problem, str, str | None]] = []
    missing_fingers, missing_eyes = set(bio.exceptions.missing_fingers), set(bio.exceptions.missing_irises)
    usable = Counter[str]()

    positions = Counter(f.position for f in bio.fingers)
    for f in bio.fingers:
        where = f"biometrics.fingers.{f.position}"
        if positions[f.position] > 1:
            found.append((c.TEMPLATE_DUPLICATED, where, None))
        elif f.position in missing_fingers:
            found.append((c.EXCEPTION_CONTRADICTED, where, None))
        elif not usable_vector(decode(f.embedding, FINGER_DIM * 4), FINGER_DIM):
            found.append(
                (c.TEMPLATE_UNREADABLE, where, f"expected {FINGER_DIM} finite float32, not all zero")
            )
        elif f.quality < MIN_QUALITY["finger"]:
            found.append((c.TEMPLATE_LOW_QUALITY, where, f"quality {f.quality} < {MIN_QUALITY['finger']}"))
        else:
            usable["finger"] += 1
    for position in sorted(set(range(1, 11)) - set(positions) - missing_fingers):
        found.append((c.TEMPLATE_MISSING, f"biometrics.fingers.{position}", None))

    eyes = Counter(i.eye for i in bio.irises)
    for i in bio.irises:
        where = f"biometrics.irises.{i.eye}"
        if eyes[i.eye] > 1:
            found.append((c.TEMPLATE_DUPLICATED, where, None))
        elif i.eye in missing_eyes:
            found.append((c.EXCEPTION_CONTRADICTED, where, None))
        elif decode(i.code, IRIS_BITS // 8) is None or not usable_mask(decode(i.mask, IRIS_BITS // 8)):
            found.append(
                (
                    c.TEMPLATE_UNREADABLE,
                    where,
                    f"expected {IRIS_BITS}-bit code and mask, at least {MIN_MASK_SHARE:.0%} of bits usable",
                )
            )
        elif i.quality < MIN_QUALITY["iris"]:
            found.append((c.TEMPLATE_LOW_QUALITY, where, f"quality {i.quality} < {MIN_QUALITY['iris']}"))
        else:
            usable["iris"] += 1
    for eye in sorted({"left", "right"} - set(eyes) - missing_eyes):
        found.append((c.TEMPLATE_MISSING, f"biometrics.irises.{eye}", None))

    if bio.face is None:
        found.append((c.TEMPLATE_MISSING, "biometrics.face", None))
    elif not usable_vector(decode(bio.face.embedding, FACE_DIM * 4), FACE_DIM):
        found.append(
            (c.TEMPLATE_UNREADABLE, "biometrics.face", f"expected {FACE_DIM} finite float32, not all zero")
        )
    elif bio.face.quality < MIN_QUALITY["face"]:
        found.append(
            (c.TEMPLATE_LOW_QUALITY, "biometrics.face", f"quality {bio.face.quality} < {MIN_QUALITY['face']}")
        )
    else:
        usable["face"] += 1

    if not usable:
        found.append((c.NO_USABLE_MODALITY, "biometrics", None))
    return [problem_entry(p, field=where, detail=detail) for p, where, detail in found]


def region_problems(packet: EnrolmentPacket, sender_kabkota: str, *, today: date) -> list[RecordProblem]:
    """Region codes that contradict the sender, each other, or the NIK: a regional recording error."""
    found: list[RecordProblem] = []
    if packet.kabkota != sender_kabkota:
        found.append(problem_entry(c.REGION_NOT_SENDER, field="kabkota"))
    a = packet.demographics.address
    nested = (
        a.regency_code.startswith(a.province_code)
        and (a.district_code is None or a.district_code.startswith(a.regency_code))
        and (
            a.village_code is None
            or (a.district_code is not None and a.village_code.startswith(a.district_code))
        )
    )
    if not nested:
        found.append(problem_entry(c.ADDRESS_REGION_INCONSISTENT, field="demographics.address"))
    elif a.regency_code not in nik.load_regions().regencies:
        found.append(problem_entry(c.ADDRESS_REGION_UNKNOWN, field="demographics.address.regency_code"))
    result = nik.check(packet.nik, today=today)
    found += [problem_entry(p, field="nik") for p in result.problems if p.severity is Severity.ERROR]
    return found


def content_hash(packet: EnrolmentPacket) -> str:
    """The same capture sent twice hashes the same, whatever its message id or send time."""
    body = packet.model_dump(mode="json", exclude={"message_id", "produced_at", "schema_version"})
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


@dataclass(frozen=True)
class Capture:
    """What the registry knows of one capture (a packet_id within a kab/kota)."""

    packet_id: str
    kabkota: str
    status: EktpStatus
    content_hash: str | None  # None until its packet arrived
    nik: str | None = None  # the NIK its packet claimed, once the packet arrived


@dataclass(frozen=True)
class Verdict:
    """A message's effect on one capture: the moves it made, or why it made none."""

    status: EktpStatus | None
    moves: list[StatusMove] = field(default_factory=list)
    refused: list[RecordProblem] = field(default_factory=list)
    problems: list[RecordProblem] = field(default_factory=list)
    forward: bool = False  # the packet goes on to dedup
    already_received: bool = False  # the same packet again: nothing changes, the same answer is given


def _move(
    src: EktpStatus, dst: EktpStatus, at: datetime, problem: Problem | None = None, implied: bool = False
) -> StatusMove:
    return StatusMove(
        from_status=src,
        to_status=dst,
        at=at,
        implied=implied,
        code=problem.code if problem else None,
        reason_id=problem.reason_id if problem else None,
        reason_en=problem.reason_en if problem else None,
    )


def _failure(problems: Sequence[RecordProblem]) -> Problem:
    return c.CATALOGUE[problems[0].code]


def intake(
    capture: Capture | None,
    *,
    hash_: str,
    region: Sequence[RecordProblem],
    templates: Sequence[RecordProblem],
    now: datetime,
    retried: bool,
) -> Verdict:
    """A packet arrives: RECEIVED_AT_CENTRAL, then a regional or central failure, or SENT_FOR_DEDUP."""
    current = capture.status if capture else S.UNREGISTERED
    if capture is not None and capture.content_hash is not None and current not in AWAITING:
        if capture.content_hash == hash_:
            return Verdict(current, already_received=True)
        return Verdict(current, refused=[problem_entry(c.PACKET_ID_CONFLICT, field="packet_id")])
    steps = path_to(current, S.RECEIVED_AT_CENTRAL, through=REGIONAL_REPORTS)
    if steps is None:
        return Verdict(
            current,
            refused=[
                problem_entry(
                    c.ILLEGAL_STATUS_MOVE, field="packet_id", detail=f"{current} -> {S.RECEIVED_AT_CENTRAL}"
                )
            ],
        )
    moves: list[StatusMove] = []
    for src, dst in zip([current, *steps], steps, strict=False):
        moves.append(_move(src, dst, now, implied=dst is not S.RECEIVED_AT_CENTRAL))
    if retried:  # it was received before and a fault at the centre sent it back to the queue
        moves += [
            _move(S.RECEIVED_AT_CENTRAL, S.PACKET_RETRY, now, c.TRANSIENT_FAULT),
            _move(S.PACKET_RETRY, S.RECEIVED_AT_CENTRAL, now),
        ]
    if region:
        moves.append(_move(S.RECEIVED_AT_CENTRAL, S.ENROLL_FAILURE_AT_REGIONAL, now, _failure(region)))
        return Verdict(S.ENROLL_FAILURE_AT_REGIONAL, moves, problems=list(region))
    if templates:
        moves.append(_move(S.RECEIVED_AT_CENTRAL, S.ENROLL_FAILURE_AT_CENTRAL, now, _failure(templates)))
        return Verdict(S.ENROLL_FAILURE_AT_CENTRAL, moves, problems=list(templates))
    moves.append(_move(S.RECEIVED_AT_CENTRAL, S.SENT_FOR_DEDUP, now))
    return Verdict(S.SENT_FOR_DEDUP, moves, forward=True)


def report(capture: Capture | None, target: EktpStatus, *, now: datetime) -> Verdict:
    """A regional progress report or a print event: legal moves only; anything else is refused."""
    current = capture.status if capture else S.UNREGISTERED
    if capture is None and target not in REGIONAL_REPORTS:
        return Verdict(None, refused=[problem_entry(c.UNKNOWN_PACKET, field="packet_id")])
    if target == current:
        return Verdict(current)  # reported twice: nothing moves
    if target not in LEGAL_MOVES[current]:
        return Verdict(
            current,
            refused=[problem_entry(c.ILLEGAL_STATUS_MOVE, field="status", detail=f"{current} -> {target}")],
        )
    return Verdict(target, [_move(current, target, now)])


def given_up(current: EktpStatus | None, *, now: datetime) -> Verdict:
    """Faults at the centre outlasted the retries: the capture fails centrally and must be sent again."""
    moves = []
    if current in (None, *AWAITING):
        moves.append(_move(current or S.UNREGISTERED, S.RECEIVED_AT_CENTRAL, now, implied=True))
    moves += [
        _move(S.RECEIVED_AT_CENTRAL, S.PACKET_RETRY, now, c.TRANSIENT_FAULT),
        _move(S.PACKET_RETRY, S.RECEIVED_AT_CENTRAL, now),
        _move(S.RECEIVED_AT_CENTRAL, S.ENROLL_FAILURE_AT_CENTRAL, now, c.RETRIES_EXHAUSTED),
    ]
    return Verdict(S.ENROLL_FAILURE_AT_CENTRAL, moves, problems=[problem_entry(c.RETRIES_EXHAUSTED)])


def retrying(*, now: datetime) -> Verdict:
    """A fault at the centre: the packet waits in PACKET_RETRY and will be taken up again."""
    return Verdict(S.PACKET_RETRY, [_move(S.RECEIVED_AT_CENTRAL, S.PACKET_RETRY, now, c.TRANSIENT_FAULT)])


def answers(
    in_reply_to: str,
    sender: str,
    kabkota: str,
    packet_id: str | None,
    verdict: Verdict,
    *,
    now: datetime,
    nik: str | None = None,
) -> tuple[EktpReceipt, PacketStatusChanged]:
    """The receipt to the kab/kota and the status event for the monitor (the capture's NIK masked, when known),
    with ids derived from the message."""
    receipt = EktpReceipt(
        message_id=derive_message_id("registry", "receipt", in_reply_to),
        produced_at=now,
        in_reply_to=in_reply_to,
        sender=sender,
        packet_id=packet_id,
        status=verdict.status,
        moves=verdict.moves,
        refused=verdict.refused,
        problems=verdict.problems,
    )
    status = PacketStatusChanged(
        message_id=derive_message_id("registry", "status", in_reply_to),
        produced_at=now,
        packet_id=packet_id,
        kabkota=kabkota,
        status=verdict.status,
        moves=verdict.moves,
        refused=[p.code for p in verdict.refused],
        nik_masked=mask_nik(nik) if nik else None,
    )
    return receipt, status


def modalities(bio: Biometrics) -> dict[str, object]:
    """What the registry keeps of the templates: which came and how good they were, never the templates."""
    return {
        "fingers": {str(f.position): f.quality for f in bio.fingers},
        "irises": {i.eye: i.quality for i in bio.irises},
        "face": bio.face.quality if bio.face else None,
        "signature": bio.signature_sha256 is not None,
        "exceptions": bio.exceptions.model_dump(mode="json"),
    }


def forward(packet: EnrolmentPacket, kabkota: str, hash_: str, *, now: datetime) -> EnrolmentAccepted:
    """The packet as dedup receives it; the same capture always forwards under the same id."""
    return EnrolmentAccepted(
        message_id=derive_message_id("registry", "enrolment", kabkota, packet.packet_id, hash_),
        produced_at=now,
        packet_id=packet.packet_id,
        kabkota=kabkota,
        station_id=packet.station_id,
        nik=packet.nik,
        demographics=packet.demographics,
        biometrics=packet.biometrics,
        captured_at=packet.captured_at,
        received_at=now,
    )

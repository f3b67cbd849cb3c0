"""A corpus of hostile and malformed messages, each with the answer the suite owes its sender."""

from __future__ import annotations

import base64
import copy
import itertools
import json
import struct
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from shared.contracts import WIB, derive_message_id
from tests.builders import inmate, packets, submission

UPT, DUKCAPIL, KABKOTA = "upt-3273-1", "dukcapil-3273", "3273"
Outcome = Literal["receipt", "record", "dead", "broker", "accepted"]
_ids = itertools.count(1)


@dataclass
class Case:
    """One message and what must come of it.

    `receipt`: the whole message is refused with `code` in a receipt (a dead letter may come too);
    `record`: the part is answered, the record at `index` refused with `code`, the `accepted` others stored;
    `dead`: dead-lettered with `code` (no sender to answer); `broker`: the broker itself refuses the publish;
    `accepted`: odd but legitimate content, stored as sent.
    """

    name: str
    sender: str
    key: str
    body: bytes
    outcome: Outcome
    code: str = ""
    message_id: str | None = field(default_factory=lambda: f"hostile-{next(_ids)}")
    user_id: str | None = ""  # "" = the sender's own user
    index: int | None = None
    accepted: int = 0
    broker_error: str = ""


def _sdp(records: list[Any], **kw: Any) -> dict[str, Any]:
    return submission(records, as_of=datetime.now(WIB).date(), **kw)


def _json(body: Any) -> bytes:
    return json.dumps(body).encode()


def sdp_case(name: str, body: Any, outcome: Outcome, code: str = "", **kw: Any) -> Case:
    """A submission whose body id, when it has one, matches the message id property."""
    raw = body if isinstance(body, bytes) else _json(body)
    case = Case(name, UPT, f"sdp.{UPT}.submission", raw, outcome, code, **kw)
    if isinstance(body, dict) and "message_id" in body and "message_id" not in kw:
        case.message_id = body["message_id"]
    return case


def with_record(name: str, bad: Any, code: str) -> Case:
    """A bad record between two good ones: the good ones must still be stored."""
    body = _sdp([inmate(), bad, inmate()])
    return sdp_case(name, body, "record", code, index=1, accepted=2)


def _packet_case(name: str, body: dict[str, Any], outcome: Outcome, code: str, kind: str = "packet") -> Case:
    return Case(
        name,
        DUKCAPIL,
        f"ektp.{KABKOTA}.{kind}",
        _json(body),
        outcome,
        code,
        message_id=body.get("message_id") if isinstance(body.get("message_id"), str) else None,
    )


def _packet(**changes: Any) -> dict[str, Any]:
    body = copy.deepcopy(packets(1, seed=next(_ids))[0])
    body["packet_id"] = f"{KABKOTA}-hostile-{next(_ids)}"
    body["message_id"] = derive_message_id("hostile", body["packet_id"])
    return body | changes


def _report(packet_id: str, status: str) -> dict[str, Any]:
    now = datetime.now(UTC)
    return {
        "message_id": derive_message_id("hostile-report", packet_id, status),
        "produced_at": now.isoformat(),
        "packet_id": packet_id,
        "kabkota": KABKOTA,
        "status": status,
        "at": now.isoformat(),
    }


def corpus() -> list[Case]:
    """At least forty ways to be wrong, and a few odd but lawful messages."""
    today = datetime.now(WIB).date()
    nested: bytes = b"[" * 100_000 + b"]" * 100_000
    cases = [
        # --- bodies that are not submissions at all
        sdp_case(
            "truncated JSON",
            b'{"upt_id": "upt-3273-1", "records": [{"inmate_id": "x"',
            "receipt",
            "MESSAGE_NOT_JSON",
        ),
        sdp_case("empty body", b"", "receipt", "MESSAGE_NOT_JSON"),
        sdp_case("not UTF-8", b"\xff\xfe\x00{}", "receipt", "MESSAGE_NOT_JSON"),
        sdp_case("nested a hundred thousand deep", nested, "receipt", "MESSAGE_NOT_JSON"),
        sdp_case("a JSON array", b"[]", "receipt", "MESSAGE_SCHEMA"),
        sdp_case("a JSON string", b'"sdp"', "receipt", "MESSAGE_SCHEMA"),
        sdp_case("JSON null", b"null", "receipt", "MESSAGE_SCHEMA"),
        # --- envelopes of the wrong shape
        sdp_case("parts is a word", _sdp([inmate()]) | {"parts": "two"}, "receipt", "MESSAGE_SCHEMA"),
        sdp_case("records is an object", _sdp([]) | {"records": {"a": 1}}, "receipt", "MESSAGE_SCHEMA"),
        sdp_case(
            "no upt_id",
            {k: v for k, v in _sdp([inmate()]).items() if k != "upt_id"},
            "receipt",
            "MESSAGE_SCHEMA",
        ),
        sdp_case("as_of not a date", _sdp([inmate()]) | {"as_of": "kemarin"}, "receipt", "MESSAGE_SCHEMA"),
        sdp_case("part zero", _sdp([inmate()]) | {"part": 0}, "receipt", "MESSAGE_SCHEMA"),
        sdp_case("parts zero", _sdp([inmate()]) | {"parts": 0}, "receipt", "MESSAGE_SCHEMA"),
        sdp_case(
            "schema_version a word", _sdp([inmate()]) | {"schema_version": "v1"}, "receipt", "MESSAGE_SCHEMA"
        ),
        sdp_case(
            "produced_at garbage", _sdp([inmate()]) | {"produced_at": "soon"}, "receipt", "MESSAGE_SCHEMA"
        ),
        sdp_case(
            "upt_id with SQL",
            _sdp([inmate()]) | {"upt_id": "x'; DROP TABLE submissions;--"},
            "receipt",
            "MESSAGE_SCHEMA",
        ),
        sdp_case("5,001 records", _sdp([{}] * 5_001), "receipt", "MESSAGE_SCHEMA"),
        # values no database column holds, and times given as numbers: refused at once, never retried
        sdp_case(
            "snapshot past a 32-bit integer",
            _sdp([inmate()]) | {"snapshot": 2**31},
            "receipt",
            "MESSAGE_SCHEMA",
        ),
        sdp_case(
            "produced_at as a number", _sdp([inmate()]) | {"produced_at": 12345}, "receipt", "MESSAGE_SCHEMA"
        ),
        sdp_case("as_of as a number", _sdp([inmate()]) | {"as_of": 20261203}, "receipt", "MESSAGE_SCHEMA"),
        sdp_case(
            "no message_id in the body",
            {k: v for k, v in _sdp([inmate()]).items() if k != "message_id"},
            "receipt",
            "MESSAGE_SCHEMA",
        ),
        sdp_case(
            "body id differs from the property",
            _sdp([inmate()]),
            "receipt",
            "MESSAGE_ID_MISMATCH",
            message_id="not-the-body-id",
        ),
        # --- parts that cannot stand
        sdp_case(
            "another UPT's submission", _sdp([inmate()], upt_id="upt-1101-1"), "receipt", "SENDER_MISMATCH"
        ),
        sdp_case("part beyond the total", _sdp([inmate()], part=3, parts=2), "receipt", "PART_OUT_OF_RANGE"),
        sdp_case("empty part of many", _sdp([], part=1, parts=3), "receipt", "PART_EMPTY"),
        sdp_case(
            "snapshot of tomorrow",
            submission([inmate()], as_of=today + timedelta(days=1)),
            "receipt",
            "AS_OF_IN_FUTURE",
        ),
        # --- bad records beside good ones
        with_record("a ten-megabyte name", inmate(full_name="A" * 10_000_000), "FIELD_TOO_LONG"),
        with_record("a NUL in the name", inmate(full_name="Budi\x00"), "FIELD_CONTROL_CHARACTERS"),
        with_record(
            "a right-to-left override", inmate(birth_place="Band\u202eung"), "FIELD_CONTROL_CHARACTERS"
        ),
        with_record("a NIK with letters", inmate(nik="32730115038500O7"), "NIK_NOT_DIGITS"),
        with_record("a record that is a number", 42, "RECORD_NOT_OBJECT"),
        with_record("a record that is null", None, "RECORD_NOT_OBJECT"),
        with_record("an unknown field", inmate(password="hunter2"), "FIELD_UNKNOWN"),
        with_record(
            "a nested field of the wrong type", inmate(case={"articles": "Pasal 362"}), "FIELD_INVALID"
        ),
        # NaN is not JSON (RFC 8259): the whole message is refused, not one record
        sdp_case(
            "sentence_days is NaN",
            _sdp([inmate(), inmate(sentence_days=float("nan"))]),
            "receipt",
            "MESSAGE_NOT_JSON",
        ),
        with_record("sentence_days is huge", inmate(sentence_days=10**30), "FIELD_INVALID"),
        with_record("birth date of 30 February", inmate(birth_date="1990-02-30"), "FIELD_INVALID"),
        with_record("birth date as a number", inmate(birth_date=12345), "FIELD_INVALID"),
        with_record("an unknown register", inmate(register="Z IX"), "REGISTER_UNKNOWN"),
        with_record("a B register without a sentence", inmate(sentence_days=None), "REGISTER_NEEDS_SENTENCE"),
        with_record(
            "entered in the future",
            inmate(entry_date=(today + timedelta(days=30)).isoformat()),
            "ENTRY_DATE_IN_FUTURE",
        ),
        with_record(
            "an inmate of nine",
            inmate(
                nik=None,
                birth_date=(today - timedelta(days=9 * 365)).isoformat(),
                entry_date=today.isoformat(),
            ),
            "TOO_YOUNG",
        ),
        # --- odd but lawful: stored as text, never executed or rendered
        # (dated yesterday, so that no later snapshot of today replaces them)
        sdp_case(
            "SQL in a name",
            submission(
                [inmate(full_name="Robert'); DROP TABLE inmates;--")], as_of=today - timedelta(days=1)
            ),
            "accepted",
        ),
        sdp_case(
            "HTML in a name",
            submission([inmate(full_name="<img src=x onerror=alert(1)>")], as_of=today - timedelta(days=2)),
            "accepted",
        ),
        # --- senders that cannot be established
        # the routing key names the sender (only its user may publish with it): it is answered all the same
        sdp_case("no user_id", _sdp([inmate()]), "receipt", "USER_ID_MISSING", user_id=None),
        # --- the broker itself refuses
        sdp_case("another UPT's routing key", _sdp([inmate()]), "broker", broker_error="ACCESS_REFUSED"),
        sdp_case(
            "a forged user_id",
            _sdp([inmate()]),
            "broker",
            user_id="upt-1101-1",
            broker_error="PRECONDITION_FAILED",
        ),
        sdp_case("an unbound routing key", _sdp([inmate()]), "broker", broker_error="NO_ROUTE"),
    ]
    cases[-3].key = "sdp.upt-1101-1.submission"
    cases[-1].key = f"sdp.{UPT}.nonsense"

    # --- e-KTP captures
    conflict_first = _packet()
    conflict_second = _packet(packet_id=conflict_first["packet_id"])
    wrong_length = _packet()
    wrong_length["biometrics"]["fingers"][0]["embedding"] = base64.b64encode(b"\x01" * 100).decode()
    nan = _packet()
    nan["biometrics"]["face"]["embedding"] = base64.b64encode(
        struct.pack("<128f", *[float("nan")] * 128)
    ).decode()
    blind = _packet()
    blind["biometrics"]["irises"][0]["mask"] = base64.b64encode(bytes(256)).decode()
    nothing = _packet()
    nothing["biometrics"].update(fingers=[], irises=[], face=None)
    nothing["biometrics"]["exceptions"] = {
        "missing_fingers": list(range(1, 11)),
        "missing_irises": ["left", "right"],
    }
    huge_street = _packet()
    huge_street["demographics"]["address"]["street"] = "J" * 10_000_000
    no_bio = {k: v for k, v in _packet().items() if k != "biometrics"}
    cases += [
        _packet_case("a packet", conflict_first, "accepted", "SENT_FOR_DEDUP"),
        _packet_case("another packet under the same id", conflict_second, "receipt", "PACKET_ID_CONFLICT"),
        _packet_case("a template of the wrong length", wrong_length, "receipt", "TEMPLATE_UNREADABLE"),
        _packet_case("a NaN face", nan, "receipt", "TEMPLATE_UNREADABLE"),
        _packet_case("an iris mask that covers everything", blind, "receipt", "TEMPLATE_UNREADABLE"),
        _packet_case("no usable modality", nothing, "receipt", "NO_USABLE_MODALITY"),
        _packet_case("captured in another kab/kota", _packet(kabkota="1101"), "receipt", "REGION_NOT_SENDER"),
        _packet_case("a ten-megabyte street", huge_street, "receipt", "MESSAGE_SCHEMA"),
        _packet_case("no biometrics", no_bio, "receipt", "MESSAGE_SCHEMA"),
        _packet_case(
            "a packet_id with a path", _packet(packet_id="../../etc/passwd"), "receipt", "MESSAGE_SCHEMA"
        ),
        _packet_case(
            "printing an unknown capture",
            _report("never-seen", "CARD_PRINTED"),
            "receipt",
            "UNKNOWN_PACKET",
            kind="print",
        ),
        _packet_case(
            "printing before dedup",
            _report(conflict_first["packet_id"], "SENT_FOR_CARD_PRINTING"),
            "receipt",
            "ILLEGAL_STATUS_MOVE",
            kind="print",
        ),
        _packet_case(
            "a status the region may not report",
            _report("p-x", "PRINT_READY_RECORD"),
            "receipt",
            "MESSAGE_SCHEMA",
            kind="status",
        ),
    ]
    return cases

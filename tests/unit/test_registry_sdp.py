"""Registry rules for SDP parts: each record stands or falls on its own; snapshots complete and supersede."""

from datetime import UTC, date, datetime
from typing import Any

import pytest

from services.registry.domain import codes, sdp
from shared.contracts import Lateness, ReceiptStatus, SdpSubmission
from tests.builders import AS_OF, inmate, submission

NOON = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)  # 09:00 WIB on the snapshot date
TODAY = date(2026, 11, 20)


def assess(records: list[Any], sender: str = "upt-3273-1", **kw: Any) -> sdp.Assessment:
    body = SdpSubmission.model_validate(submission(records, **kw))
    return sdp.assess(body, sender, today=TODAY, received_at=NOON)


def codes_of(a: sdp.Assessment) -> list[tuple[int | None, str]]:
    return [(p.index, p.code) for p in a.rejected]


def one(**overrides: Any) -> list[str]:
    """The refusal codes of a single record with these overrides."""
    return [p.code for p in assess([inmate(**overrides)]).rejected]


def warned(**overrides: Any) -> list[str]:
    return [p.code for p in assess([inmate(**overrides)]).warnings]


def test_a_clean_part_is_accepted_whole() -> None:
    a = assess([inmate(), inmate()])
    assert a.status is ReceiptStatus.ACCEPTED
    assert (len(a.accepted), a.rejected, a.warnings) == (2, [], [])


def test_invalid_records_are_refused_one_by_one_and_the_rest_go_through() -> None:
    a = assess([inmate(), inmate(nik="3273011503850000"), inmate(sex="X"), inmate()])
    assert a.status is ReceiptStatus.PARTIALLY_ACCEPTED
    assert codes_of(a) == [(1, "NIK_SERIAL_ZERO"), (2, "FIELD_INVALID")]
    assert len(a.accepted) == 2


def test_schema_problems_name_the_field_and_never_echo_the_value() -> None:
    record = inmate(full_name="X" * 300, hobby="catur")
    del record["birth_date"]
    a = assess([record])
    assert {(p.field, p.code) for p in a.rejected} == {
        ("full_name", "FIELD_TOO_LONG"),
        ("hobby", "FIELD_UNKNOWN"),
        ("birth_date", "FIELD_REQUIRED"),
    }
    assert all("XXXX" not in (p.detail or "") and "catur" not in (p.detail or "") for p in a.rejected)
    assert a.rejected[0].inmate_id == record["inmate_id"]


def test_an_unknown_register_has_its_own_code() -> None:
    assert one(register="C") == ["REGISTER_UNKNOWN"]
    assert one(register="B II") == ["REGISTER_UNKNOWN"]


@pytest.mark.parametrize("text", ["Budi\x00", "Budi\nSantoso", "Bu\u202edi", "Budi\x1b[31m", "Budi\x7f"])
def test_control_and_direction_characters_are_refused(text: str) -> None:
    assert one(full_name=text) == ["FIELD_CONTROL_CHARACTERS"]
    assert assess([inmate(case={"articles": [text]})]).rejected[0].field == "case.articles.0"


def test_sql_and_html_are_just_text() -> None:
    a = assess(
        [inmate(full_name="Robert'); DROP TABLE inmates;--"), inmate(birth_place="<script>x</script>")]
    )
    assert a.status is ReceiptStatus.ACCEPTED


def test_dates_that_cannot_be_are_refused() -> None:
    assert one(entry_date="2026-11-21") == ["ENTRY_DATE_IN_FUTURE"]
    assert one(birth_date="2027-01-01") == ["BIRTH_DATE_IN_FUTURE"]
    assert one(birth_date="2024-06-01", entry_date="2024-05-02") == ["BIRTH_AFTER_ENTRY"]
    assert one(birth_date="2015-01-01", nik=None) == ["TOO_YOUNG"]
    assert one(birth_date="1890-01-01", nik=None) == ["BIRTH_DATE_IMPLAUSIBLE"]
    assert one(expected_release="2024-01-01") == ["RELEASE_BEFORE_ENTRY"]


def test_detention_dates_must_follow_each_other() -> None:
    tahanan = {"register": "A III", "sentence_days": None, "detention_start": "2026-10-01"}
    assert one(**tahanan, detention_expiry="2026-09-01") == ["DETENTION_EXPIRY_BEFORE_START"]
    bad = [{"granted_by": "Ketua PN", "days": 30, "until": "2026-09-15"}]
    assert one(**tahanan, detention_expiry="2026-12-01", extensions=bad) == ["DETENTION_EXTENSION_INVALID"]


def test_a_register_that_contradicts_the_record_is_refused() -> None:
    assert one(sentence_days=None) == ["REGISTER_NEEDS_SENTENCE"]  # B I without a sentence
    assert one(register="B I", sentence_days=200) == ["REGISTER_SENTENCE_MISMATCH"]
    assert one(register="B IIb", sentence_days=400) == ["REGISTER_SENTENCE_MISMATCH"]
    assert one(register="B IIa", sentence_days=200) == []
    assert one(register="A I", sentence_days=None) == ["REGISTER_NEEDS_DETENTION"]
    assert one(register="A II", sentence_days=100, detention_start="2026-10-01") == [
        "REGISTER_TAHANAN_WITH_SENTENCE"
    ]
    assert (
        one(register="A IV", sentence_days=400, detention_start="2026-10-01") == []
    )  # appeal after a verdict


def test_contradictions_that_are_not_errors_are_warnings() -> None:
    assert warned(sex="P") == ["NIK_SEX_MISMATCH"]
    assert warned(birth_date="1985-03-16") == ["NIK_BIRTH_DATE_MISMATCH"]
    assert warned(nik=None) == ["NIK_ABSENT"]  # accepted: needs e-KTP recording
    held = {
        "register": "A I",
        "sentence_days": None,
        "detention_start": "2026-09-01",
        "detention_expiry": "2026-10-20",
    }
    assert warned(**held) == ["DETENTION_EXPIRED"]
    extended = [{"granted_by": "Kejaksaan", "days": 40, "until": "2026-11-29"}]
    assert warned(**held, extensions=extended) == []
    assert warned(updated_at="2026-11-20T12:00:00+00:00") == ["UPDATED_AT_AHEAD"]


def test_the_same_inmate_twice_in_a_part_keeps_the_first() -> None:
    first = inmate()
    a = assess([first, inmate(inmate_id=first["inmate_id"])])
    assert codes_of(a) == [(1, "DUPLICATE_INMATE_ID")]


def test_part_level_refusals() -> None:
    assert codes_of(assess([inmate(), inmate()], sender="upt-1101-1")) == [(None, "SENDER_MISMATCH")]
    assert codes_of(assess([inmate()], part=3, parts=2)) == [(None, "PART_OUT_OF_RANGE")]
    assert codes_of(assess([inmate()], as_of=date(2026, 11, 21))) == [(None, "AS_OF_IN_FUTURE")]
    assert codes_of(assess([], part=1, parts=2)) == [(None, "PART_EMPTY")]
    alone = assess([])
    assert alone.status is ReceiptStatus.ACCEPTED
    assert [w.code for w in alone.warnings] == ["SINGLE_EMPTY_PART"]
    assert assess([inmate()], part=3, parts=2).part_refused


def test_records_another_part_already_holds_are_refused() -> None:
    a = assess([inmate(inmate_id="A"), inmate(inmate_id="B")])
    b = sdp.without_taken(a, {"B"}, {"A": 0, "B": 1})
    assert [r.inmate_id for r in b.accepted] == ["A"]
    assert [(p.index, p.code) for p in b.rejected] == [(1, "DUPLICATE_INMATE_ID")]


def snap(n: int, parts: int, received: set[int], complete: bool = False) -> sdp.StoredSnapshot:
    return sdp.StoredSnapshot(n, parts, frozenset(received), complete, False)


def test_a_snapshot_completes_when_every_part_arrived_and_a_resent_part_counts_once() -> None:
    first = sdp.snapshot_decision([], 1, 1, 3)
    assert first.state is not None
    assert (first.state.parts_received, first.state.complete) == (1, False)
    again = sdp.snapshot_decision([snap(1, 3, {1})], 1, 1, 3)
    assert again.state is not None
    assert again.state.parts_received == 1
    last = sdp.snapshot_decision([snap(1, 3, {1, 2})], 1, 3, 3)
    assert last.state is not None
    assert last.state.complete
    assert last.completes


def test_a_later_complete_snapshot_supersedes_and_earlier_parts_are_refused_after() -> None:
    done = sdp.snapshot_decision([snap(1, 1, {1}, complete=True)], 2, 1, 1)
    assert done.completes
    assert done.supersedes == (1,)
    late = sdp.snapshot_decision([snap(2, 1, {1}, complete=True)], 1, 1, 1)
    assert late.refusal is not None
    assert late.refusal[0] is codes.SNAPSHOT_SUPERSEDED
    mixed = sdp.snapshot_decision([snap(1, 3, {1})], 1, 2, 4)
    assert mixed.refusal is not None
    assert mixed.refusal[0] is codes.PARTS_MISMATCH


@pytest.mark.parametrize(
    ("wib", "expected"),
    [
        ("2026-11-20T09:59:00+07:00", Lateness.ON_TIME),
        ("2026-11-20T10:00:00+07:00", Lateness.AFTER_10),
        ("2026-11-20T13:59:00+07:00", Lateness.AFTER_10),
        ("2026-11-20T14:00:00+07:00", Lateness.AFTER_14),
        ("2026-11-21T08:00:00+07:00", Lateness.AFTER_14),
        ("2026-11-19T23:00:00+07:00", Lateness.ON_TIME),
    ],
)
def test_lateness_is_measured_against_the_wib_deadlines_of_the_snapshot_date(
    wib: str, expected: Lateness
) -> None:
    assert sdp.lateness(AS_OF, datetime.fromisoformat(wib)) is expected


def test_the_outcome_derives_every_message_id_from_the_submission() -> None:
    body = SdpSubmission.model_validate(submission([inmate(), inmate(sex="X")]))
    a = sdp.assess(body, "upt-3273-1", today=TODAY, received_at=NOON)
    decision = sdp.snapshot_decision([], body.snapshot, 1, 1)
    first = sdp.outcome(body, "upt-3273-1", a, decision, now=NOON)
    again = sdp.outcome(body, "upt-3273-1", a, decision, now=NOON)
    assert first.receipt.message_id == again.receipt.message_id != first.status.message_id
    assert (first.receipt.received, first.receipt.accepted) == (2, 1)
    assert first.receipt.lateness is Lateness.ON_TIME
    assert first.receipt.snapshot_state is not None
    assert first.receipt.snapshot_state.complete
    assert first.accepted is not None
    assert len(first.accepted.records) == 1
    assert first.store_records


def test_every_code_in_the_catalogue_has_both_languages_and_is_unique() -> None:
    rows = codes.catalogue_rows()
    assert len(rows) == len({r[0] for r in rows}) >= 60
    assert all(r[3] and r[4] and r[3] != r[4] for r in rows)


def test_the_quick_look_at_a_body_never_misses_a_forbidden_character() -> None:
    import json
    import unicodedata

    import orjson

    forbidden = [chr(c) for c in range(0x10000) if unicodedata.category(chr(c)) == "Cc"]
    forbidden += list("\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
    for ch in forbidden:
        record = {"full_name": f"Budi{ch}"}
        for body in (
            json.dumps(record).encode(),
            json.dumps(record, ensure_ascii=False).encode(),
            orjson.dumps(record),
        ):
            assert sdp.may_hold_control_characters(body), (hex(ord(ch)), body)
    assert not sdp.may_hold_control_characters(
        b'{\n\t"full_name": "Siti Nurhaliza", "birth_place": "Bandung"\r\n}'
    )


def test_an_accepted_event_with_spliced_records_is_the_event_itself() -> None:
    from pydantic import TypeAdapter

    from services.registry.store import accepted_body
    from shared.contracts import InmateRecord, SdpRecordsAccepted

    records = [InmateRecord.model_validate(inmate(full_name='Siti "records":[] Aminah')) for _ in range(3)]
    event = SdpRecordsAccepted(
        message_id="m-1",
        produced_at=datetime(2026, 1, 2, 3, 4, tzinfo=UTC),
        submission_id="s-1",
        upt_id="upt-3273-1",
        as_of=date(2026, 1, 2),
        snapshot=1,
        part=1,
        parts=1,
        records=records,
    )
    spliced = accepted_body(event, TypeAdapter(list[InmateRecord]).dump_json(records))
    assert spliced == event.model_dump_json().encode()
    assert SdpRecordsAccepted.model_validate_json(spliced) == event

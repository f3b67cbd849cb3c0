"""Registry decisions on one submission part: each record stands or falls on its own."""

from datetime import date
from typing import Any

from services.registry import domain
from shared.contracts import ReceiptStatus, SdpSubmission
from tests.builders import NOW, inmate, submission

TODAY = date(2026, 11, 20)


def assess(
    records: list[Any], sender: str = "upt-3273-1", part: int = 1, parts: int = 1
) -> domain.Assessment:
    body = submission(records, part=part, parts=parts)
    return domain.assess(SdpSubmission.model_validate(body), sender, today=TODAY)


def codes(a: domain.Assessment) -> list[tuple[int | None, str]]:
    return [(p.index, p.code) for p in a.rejected]


def test_a_clean_part_is_accepted_whole() -> None:
    a = assess([inmate(), inmate(), inmate(nik=None)])
    assert a.status is ReceiptStatus.ACCEPTED
    assert len(a.accepted) == 3
    assert a.rejected == []
    assert a.warnings == []


def test_invalid_records_are_refused_one_by_one_and_the_rest_go_through() -> None:
    a = assess([inmate(), inmate(nik="3273011503850000"), inmate(sex="X"), inmate()])
    assert a.status is ReceiptStatus.PARTIALLY_ACCEPTED
    assert codes(a) == [(1, "NIK_SERIAL_ZERO"), (2, "FIELD_INVALID")]
    assert [r.inmate_id for r in a.accepted] == [a.accepted[0].inmate_id, a.accepted[1].inmate_id]
    assert len(a.accepted) == 2


def test_schema_problems_name_the_field_and_never_echo_the_value() -> None:
    record = inmate(full_name="X" * 300, hobby="catur")
    del record["birth_date"]
    a = assess([record])
    found = {(p.field, p.code) for p in a.rejected}
    assert found == {
        ("full_name", "FIELD_TOO_LONG"),
        ("hobby", "FIELD_UNKNOWN"),
        ("birth_date", "FIELD_REQUIRED"),
    }
    assert all("X" * 20 not in (p.detail or "") and "catur" not in (p.detail or "") for p in a.rejected)
    assert a.rejected[0].inmate_id == record["inmate_id"]


def test_a_record_that_is_not_an_object_is_refused() -> None:
    a = assess(["not a record", inmate()])
    assert codes(a) == [(0, "RECORD_NOT_OBJECT")]
    assert len(a.accepted) == 1


def test_the_same_inmate_twice_in_a_part_keeps_the_first() -> None:
    first = inmate()
    a = assess([first, inmate(inmate_id=first["inmate_id"])])
    assert codes(a) == [(1, "DUPLICATE_INMATE_ID")]
    assert len(a.accepted) == 1


def test_nik_contradictions_are_warnings_and_the_record_is_accepted() -> None:
    a = assess([inmate(sex="P"), inmate(birth_date="1985-03-16")])
    assert a.status is ReceiptStatus.ACCEPTED
    assert [w.code for w in a.warnings] == ["NIK_SEX_MISMATCH", "NIK_BIRTH_DATE_MISMATCH"]


def test_a_submission_for_another_unit_is_refused_whole() -> None:
    a = assess([inmate(), inmate()], sender="upt-1101-1")
    assert a.status is ReceiptStatus.REJECTED
    assert codes(a) == [(None, "SENDER_MISMATCH")]
    assert a.accepted == []


def test_a_part_number_beyond_the_total_is_refused_whole() -> None:
    a = assess([inmate()], part=3, parts=2)
    assert codes(a) == [(None, "PART_OUT_OF_RANGE")]


def test_the_outcome_derives_every_message_id_from_the_submission() -> None:
    body = SdpSubmission.model_validate(submission([inmate(), inmate(sex="X")]))
    a = domain.assess(body, "upt-3273-1", today=TODAY)
    first = domain.outcome(body, "upt-3273-1", a, now=NOW)
    again = domain.outcome(body, "upt-3273-1", a, now=NOW)
    assert first.receipt.message_id == again.receipt.message_id != first.status.message_id
    assert first.receipt.in_reply_to == body.message_id
    assert (first.receipt.received, first.receipt.accepted) == (2, 1)
    assert (first.status.accepted, first.status.rejected) == (1, 1)
    assert first.accepted is not None
    assert len(first.accepted.records) == 1


def test_nothing_accepted_means_no_accepted_event() -> None:
    body = SdpSubmission.model_validate(submission([inmate(sex="X")]))
    out = domain.outcome(body, "upt-3273-1", domain.assess(body, "upt-3273-1", today=TODAY), now=NOW)
    assert out.accepted is None
    assert out.receipt.status is ReceiptStatus.REJECTED


def test_every_code_in_the_catalogue_has_both_languages() -> None:
    assert len(domain.CATALOGUE) >= 20
    for problem in domain.CATALOGUE.values():
        assert problem.reason_id
        assert problem.reason_en

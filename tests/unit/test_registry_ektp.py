"""Registry rules for e-KTP captures: templates, regions, and the status machine, move by move."""

import base64
import copy
import struct
from datetime import UTC, datetime
from typing import Any

import pytest

from services.registry.domain import ektp
from shared.contracts import EnrolmentPacket
from shared.ektp import LEGAL_MOVES, is_legal, path_to
from shared.ektp import EktpStatus as S
from sim.ektp import REGION_FAULTS, TEMPLATE_FAULTS
from tests.builders import AS_OF, packets

NOW = datetime(2026, 11, 20, 3, tzinfo=UTC)
GOOD = packets(1)[0]


def packet(**changes: Any) -> EnrolmentPacket:
    body = copy.deepcopy(GOOD) | changes
    return EnrolmentPacket.model_validate(body)


def template_codes(body: dict[str, Any]) -> set[str]:
    return {p.code for p in ektp.template_problems(EnrolmentPacket.model_validate(body).biometrics)}


def test_the_status_machine_allows_the_documented_moves_only() -> None:
    assert is_legal(S.SENT_FOR_ENROLLMENT, S.RECEIVED_AT_CENTRAL)
    assert is_legal(S.PACKET_RETRY, S.RECEIVED_AT_CENTRAL)
    assert is_legal(S.DUPLICATE_RECORD, S.BIO_CAPTURED)  # central record deleted, person recorded again
    assert not is_legal(S.RECEIVED_AT_CENTRAL, S.PRINT_READY_RECORD)
    assert not is_legal(S.CARD_ISSUED, S.CARD_PRINTED)
    assert set(LEGAL_MOVES) == set(S)
    assert path_to(
        S.UNREGISTERED, S.RECEIVED_AT_CENTRAL, [S.BIO_CAPTURED, S.PROCESSING, S.SENT_FOR_ENROLLMENT]
    ) == [S.BIO_CAPTURED, S.PROCESSING, S.SENT_FOR_ENROLLMENT, S.RECEIVED_AT_CENTRAL]
    assert path_to(S.SENT_FOR_DEDUP, S.RECEIVED_AT_CENTRAL, [S.BIO_CAPTURED]) is None


def test_simulated_packets_pass_every_check() -> None:
    p = packet()
    assert ektp.template_problems(p.biometrics) == []
    assert ektp.region_problems(p, "3273", today=AS_OF) == []


@pytest.mark.parametrize(("code", "fault"), TEMPLATE_FAULTS)
def test_every_planted_template_fault_is_caught_with_its_code(code: str, fault: Any) -> None:
    body = copy.deepcopy(GOOD)
    fault(body["biometrics"])
    assert code in template_codes(body)


@pytest.mark.parametrize(("code", "fault"), REGION_FAULTS)
def test_every_planted_region_fault_is_caught_with_its_code(code: str, fault: Any) -> None:
    body = copy.deepcopy(GOOD)
    fault(body, "1101")
    p = EnrolmentPacket.model_validate(body)
    assert code in {x.code for x in ektp.region_problems(p, "3273", today=AS_OF)}


def test_declared_exceptions_excuse_missing_templates() -> None:
    body = copy.deepcopy(GOOD)
    bio = body["biometrics"]
    bio["fingers"] = [f for f in bio["fingers"] if f["position"] not in (1, 2)]
    bio["irises"] = [i for i in bio["irises"] if i["eye"] != "left"]
    assert template_codes(body) == {"TEMPLATE_MISSING"}
    bio["exceptions"] = {"missing_fingers": [1, 2], "missing_irises": ["left"], "reason": "amputasi"}
    assert template_codes(body) == set()


def test_a_packet_with_no_usable_modality_fails_with_that_reason() -> None:
    body = copy.deepcopy(GOOD)
    bio = body["biometrics"]
    bio.update(fingers=[], irises=[], face=None)
    bio["exceptions"] = {"missing_fingers": list(range(1, 11)), "missing_irises": ["left", "right"]}
    assert template_codes(body) == {"TEMPLATE_MISSING", "NO_USABLE_MODALITY"}


def test_vectors_that_cannot_be_compared_are_unreadable() -> None:
    infinite = base64.b64encode(struct.pack("<64f", *([float("inf")] + [0.1] * 63))).decode()
    body = copy.deepcopy(GOOD)
    body["biometrics"]["fingers"][0]["embedding"] = infinite
    assert template_codes(body) == {"TEMPLATE_UNREADABLE"}


def test_the_same_capture_hashes_the_same_whatever_its_envelope() -> None:
    a = packet()
    b = packet(message_id="another", produced_at="2026-11-21T00:00:00+00:00")
    c = packet(station_id="3273-ST99")
    assert ektp.content_hash(a) == ektp.content_hash(b) != ektp.content_hash(c)


def statuses(verdict: ektp.Verdict) -> list[tuple[str, str, bool]]:
    return [(m.from_status.value, m.to_status.value, m.implied) for m in verdict.moves]


def test_a_good_packet_from_nowhere_goes_through_the_implied_regional_steps_to_dedup() -> None:
    v = ektp.intake(None, hash_="h", region=[], templates=[], now=NOW, retried=False)
    assert v.status is S.SENT_FOR_DEDUP
    assert v.forward
    assert statuses(v) == [
        ("UNREGISTERED", "BIO_CAPTURED", True),
        ("BIO_CAPTURED", "PROCESSING", True),
        ("PROCESSING", "SENT_FOR_ENROLLMENT", True),
        ("SENT_FOR_ENROLLMENT", "RECEIVED_AT_CENTRAL", False),
        ("RECEIVED_AT_CENTRAL", "SENT_FOR_DEDUP", False),
    ]


def test_a_reported_capture_only_takes_the_steps_left() -> None:
    known = ektp.Capture("p", "3273", S.SENT_FOR_ENROLLMENT, None)
    v = ektp.intake(known, hash_="h", region=[], templates=[], now=NOW, retried=False)
    assert statuses(v)[0] == ("SENT_FOR_ENROLLMENT", "RECEIVED_AT_CENTRAL", False)


def test_failures_stop_before_dedup_with_their_reasons() -> None:
    region = ektp.region_problems(packet(kabkota="1101"), "3273", today=AS_OF)
    v = ektp.intake(None, hash_="h", region=region, templates=[], now=NOW, retried=False)
    assert v.status is S.ENROLL_FAILURE_AT_REGIONAL
    assert not v.forward
    assert v.moves[-1].code == "REGION_NOT_SENDER"
    assert v.moves[-1].reason_id
    bad = copy.deepcopy(GOOD)
    bad["biometrics"]["face"] = None
    templates = ektp.template_problems(EnrolmentPacket.model_validate(bad).biometrics)
    v = ektp.intake(None, hash_="h", region=[], templates=templates, now=NOW, retried=False)
    assert v.status is S.ENROLL_FAILURE_AT_CENTRAL
    assert [p.code for p in v.problems] == ["TEMPLATE_MISSING"]


def test_a_retried_packet_records_its_stay_in_packet_retry() -> None:
    v = ektp.intake(None, hash_="h", region=[], templates=[], now=NOW, retried=True)
    assert ("RECEIVED_AT_CENTRAL", "PACKET_RETRY", False) in statuses(v)
    assert ("PACKET_RETRY", "RECEIVED_AT_CENTRAL", False) in statuses(v)
    gave_up = ektp.given_up(None, now=NOW)
    assert gave_up.status is S.ENROLL_FAILURE_AT_CENTRAL
    assert gave_up.moves[-1].code == "RETRIES_EXHAUSTED"


def test_the_same_packet_again_changes_nothing_and_another_under_its_id_is_refused() -> None:
    received = ektp.Capture("p", "3273", S.SENT_FOR_DEDUP, "h")
    same = ektp.intake(received, hash_="h", region=[], templates=[], now=NOW, retried=False)
    assert same.already_received
    assert same.moves == []
    assert same.status is S.SENT_FOR_DEDUP
    other = ektp.intake(received, hash_="other", region=[], templates=[], now=NOW, retried=False)
    assert [p.code for p in other.refused] == ["PACKET_ID_CONFLICT"]
    assert other.moves == []


def test_a_recapture_after_a_failure_is_a_new_packet_under_the_same_id() -> None:
    failed = ektp.Capture("p", "3273", S.ENROLL_FAILURE_AT_CENTRAL, "h")
    assert ektp.report(failed, S.BIO_CAPTURED, now=NOW).status is S.BIO_CAPTURED
    recaptured = ektp.Capture("p", "3273", S.BIO_CAPTURED, "h")
    again = ektp.intake(recaptured, hash_="new", region=[], templates=[], now=NOW, retried=False)
    assert again.status is S.SENT_FOR_DEDUP


def test_reports_move_only_along_legal_moves() -> None:
    assert ektp.report(None, S.BIO_CAPTURED, now=NOW).status is S.BIO_CAPTURED
    assert [p.code for p in ektp.report(None, S.CARD_PRINTED, now=NOW).refused] == ["UNKNOWN_PACKET"]
    waiting = ektp.Capture("p", "3273", S.SENT_FOR_DEDUP, "h")
    refused = ektp.report(waiting, S.SENT_FOR_CARD_PRINTING, now=NOW)
    assert [p.code for p in refused.refused] == ["ILLEGAL_STATUS_MOVE"]
    assert refused.refused[0].detail == "SENT_FOR_DEDUP -> SENT_FOR_CARD_PRINTING"
    ready = ektp.Capture("p", "3273", S.PRINT_READY_RECORD, "h")
    assert ektp.report(ready, S.SENT_FOR_CARD_PRINTING, now=NOW).status is S.SENT_FOR_CARD_PRINTING
    assert ektp.report(ready, S.PRINT_READY_RECORD, now=NOW).moves == []  # said twice: nothing moves


def test_the_registry_keeps_a_summary_of_templates_never_the_templates() -> None:
    summary = str(ektp.modalities(packet().biometrics))
    assert GOOD["biometrics"]["face"]["embedding"][:20] not in summary
    assert "'face':" in summary


def test_the_forwarded_enrolment_has_an_id_fixed_by_its_content() -> None:
    p = packet()
    a = ektp.forward(p, "3273", ektp.content_hash(p), now=NOW)
    b = ektp.forward(p, "3273", ektp.content_hash(p), now=datetime(2027, 1, 1, tzinfo=UTC))
    assert a.message_id == b.message_id
    assert a.biometrics == p.biometrics

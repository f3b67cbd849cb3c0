"""The registry's e-KTP handlers on the in-memory broker: moves, receipts, forwarding and faults."""

import copy
import json
from typing import Any

import pytest
from faststream.rabbit import RabbitBroker

from services.registry.app import build_app
from services.registry.config import Settings
from shared import messaging
from shared.contracts import EktpReceipt, PacketStatusChanged, derive_message_id
from shared.nik import mask
from tests.builders import NOW, packets
from tests.fakes import FakeCaptureStore, FakeSubmissionStore
from tests.unit.harness import in_memory

SETTINGS = Settings(
    amqp_url="amqp://svc-registry:secret@localhost:5672/simpul", health_port=0, packet_retry_limit=3
)
UNIT, KABKOTA = "dukcapil-3273", "3273"


def app(store: FakeCaptureStore) -> Any:
    return build_app(SETTINGS, parts=FakeSubmissionStore(), captures=store, clock=lambda: NOW)


async def send(
    broker: RabbitBroker,
    body: dict[str, Any],
    *,
    kind: str = "packet",
    user_id: str = UNIT,
    headers: dict[str, Any] | None = None,
) -> None:
    await broker.publish(
        json.dumps(body).encode(),
        exchange=messaging.INGEST,
        routing_key=f"ektp.{KABKOTA}.{kind}",
        message_id=body["message_id"],
        user_id=user_id,
        content_type="application/json",
        headers=headers or {},
    )


def receipts(store: FakeCaptureStore) -> list[EktpReceipt]:
    return [o.message for o in store.outbox if isinstance(o.message, EktpReceipt)]


def report(packet_id: str, status: str, n: int = 1) -> dict[str, Any]:
    return {
        "message_id": derive_message_id("report", packet_id, status, n),
        "produced_at": NOW.isoformat(),
        "packet_id": packet_id,
        "kabkota": KABKOTA,
        "status": status,
        "at": NOW.isoformat(),
    }


async def test_a_good_packet_is_forwarded_to_dedup_and_answered_with_its_moves() -> None:
    store = FakeCaptureStore()
    body = packets(1)[0]
    async with in_memory(app(store)) as (broker, spies):
        await send(broker, body)
    (receipt,) = receipts(store)
    assert receipt.status == "SENT_FOR_DEDUP"
    assert [m.to_status.value for m in receipt.moves][-2:] == ["RECEIVED_AT_CENTRAL", "SENT_FOR_DEDUP"]
    (forwarded,) = spies.forwarded
    assert forwarded.json()["packet_id"] == body["packet_id"]
    assert forwarded.json()["biometrics"] == body["biometrics"]
    events = [o.message for o in store.outbox if isinstance(o.message, PacketStatusChanged)]
    assert events[0].kabkota == KABKOTA
    # status events carry the capture's NIK masked, for the stuck list; never in full
    assert events[0].nik_masked == mask(body["nik"]) != body["nik"]
    assert body["nik"] not in events[0].model_dump_json()
    assert all(
        o.routing_key != "registry.accepted.ektp" for o in store.outbox
    )  # templates never in the outbox


async def test_a_faulty_packet_fails_with_reasons_and_is_not_forwarded() -> None:
    store = FakeCaptureStore()
    body = packets(1)[0]
    body["biometrics"]["fingers"][0]["quality"] = 5
    body["kabkota"] = "1101"
    async with in_memory(app(store)) as (broker, spies):
        await send(broker, body)
    (receipt,) = receipts(store)
    assert receipt.status == "ENROLL_FAILURE_AT_REGIONAL"  # the region is checked first
    assert [p.code for p in receipt.problems] == ["REGION_NOT_SENDER"]
    assert spies.forwarded == []


async def test_the_same_packet_again_gets_the_same_answer_and_is_forwarded_again() -> None:
    store = FakeCaptureStore()
    body = packets(1)[0]
    async with in_memory(app(store)) as (broker, spies):
        await send(broker, body)
        await send(broker, body)
        resent = copy.deepcopy(body) | {"message_id": "a-new-envelope"}
        await send(broker, resent)
    assert len(spies.forwarded) == 3  # dedup drops the repeats by their common id
    assert len({f.json()["message_id"] for f in spies.forwarded}) == 1
    assert [r.json()["in_reply_to"] for r in spies.receipts] == [
        body["message_id"]
    ]  # the repeat, from storage
    assert receipts(store)[-1].moves == []  # the resend under a new id moved nothing


async def test_another_packet_under_a_known_id_is_refused() -> None:
    store = FakeCaptureStore()
    first, second = packets(2)
    second = second | {"packet_id": first["packet_id"]}
    async with in_memory(app(store)) as (broker, spies):
        await send(broker, first)
        await send(broker, second)
        await send(broker, report(first["packet_id"], "SENT_FOR_CARD_PRINTING"), kind="print")
    assert [p.code for p in receipts(store)[1].refused] == ["PACKET_ID_CONFLICT"]
    assert len(spies.forwarded) == 1
    # every status event about the capture names it by the NIK the registry keeps, masked: the refused
    # packet's claim is not the capture's
    events = [o.message for o in store.outbox if isinstance(o.message, PacketStatusChanged)]
    assert [e.nik_masked for e in events] == [mask(first["nik"])] * 3
    assert first["nik"] != second["nik"]


async def test_regional_reports_and_print_events_move_the_capture_when_legal() -> None:
    store = FakeCaptureStore()
    async with in_memory(app(store)) as (broker, spies):
        for status in ("BIO_CAPTURED", "PROCESSING", "SENT_FOR_ENROLLMENT"):
            await send(broker, report("p-1", status), kind="status")
        await send(broker, report("p-1", "SENT_FOR_CARD_PRINTING"), kind="print")
        await send(broker, report("p-2", "CARD_PRINTED"), kind="print")
    answers = receipts(store)
    assert [r.status.value if r.status else None for r in answers] == [
        "BIO_CAPTURED",
        "PROCESSING",
        "SENT_FOR_ENROLLMENT",
        "SENT_FOR_ENROLLMENT",
        None,
    ]
    assert [p.code for p in answers[3].refused] == ["ILLEGAL_STATUS_MOVE"]
    assert [p.code for p in answers[4].refused] == ["UNKNOWN_PACKET"]
    assert spies.dead == []


async def test_a_print_event_on_the_status_key_is_a_schema_error() -> None:
    async with in_memory(app(FakeCaptureStore())) as (broker, spies):
        await send(broker, report("p-1", "CARD_PRINTED"), kind="status")
    assert spies.dead_reasons() == ["MESSAGE_SCHEMA"]
    assert [r.json()["refused"][0]["code"] for r in spies.receipts] == ["MESSAGE_SCHEMA"]


async def test_a_upt_user_cannot_send_packets() -> None:
    async with in_memory(app(FakeCaptureStore())) as (broker, spies):
        await send(broker, packets(1)[0], user_id="upt-3273-1")
    assert spies.dead_reasons() == ["SENDER_NOT_ALLOWED"]


async def test_a_fault_at_the_centre_puts_the_packet_in_packet_retry_then_fails_it_at_the_limit() -> None:
    store = FakeCaptureStore(fail_with=ConnectionError("database down"))
    body = packets(1)[0]
    async with in_memory(app(store)) as (broker, spies):
        with pytest.raises(ConnectionError):  # requeued by the broker, with back-off
            await send(broker, body)
        await send(broker, body, headers={"x-delivery-count": 2})  # the third delivery: the limit
    retry, failure = [r.json() for r in spies.receipts]
    assert (retry["status"], retry["moves"][-1]["code"]) == ("PACKET_RETRY", "TRANSIENT_FAULT")
    assert (failure["status"], failure["moves"][-1]["code"]) == (
        "ENROLL_FAILURE_AT_CENTRAL",
        "RETRIES_EXHAUSTED",
    )
    assert spies.dead_reasons() == ["RETRIES_EXHAUSTED"]  # kept for replay; the sender was told already
    assert [e.json()["status"] for e in spies.events] == ["PACKET_RETRY", "ENROLL_FAILURE_AT_CENTRAL"]

"""The registry's SDP handler on the in-memory broker: what is stored, answered and dead-lettered."""

import json
from typing import Any

from faststream.rabbit import RabbitBroker

from services.registry.app import build_app
from services.registry.config import Settings
from shared import messaging
from shared.contracts import SdpSubmission
from tests.builders import AS_OF, NOW, inmate, submission
from tests.fakes import FakeCaptureStore, FakeSubmissionStore
from tests.unit.harness import in_memory

SETTINGS = Settings(amqp_url="amqp://svc-registry:secret@localhost:5672/simpul", health_port=0)
UPT = "upt-3273-1"
KEY = f"sdp.{UPT}.submission"


def app(store: FakeSubmissionStore, settings: Settings = SETTINGS) -> Any:
    return build_app(settings, parts=store, captures=FakeCaptureStore(), clock=lambda: NOW)


async def send(
    broker: RabbitBroker,
    body: Any,
    *,
    user_id: str | None = UPT,
    message_id: str | None = "auto",
    routing_key: str = KEY,
) -> None:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    mid = body["message_id"] if message_id == "auto" and isinstance(body, dict) else message_id
    await broker.publish(
        raw,
        exchange=messaging.INGEST,
        routing_key=routing_key,
        message_id=mid,
        user_id=user_id,
        content_type="application/json",
    )


async def test_a_valid_part_is_stored_and_its_receipt_and_events_go_through_the_outbox() -> None:
    store = FakeSubmissionStore()
    body = submission([inmate(), inmate(), inmate(nik="3273011503859999X")])
    async with in_memory(app(store)) as (broker, spies):
        await send(broker, body)
    write = store.writes[body["message_id"]]
    assert len(write.records) == 2
    assert [(o.exchange, o.routing_key) for o in store.outbox] == [
        ("receipts", UPT),
        ("events", "status.registry.submission"),
        ("events", "registry.accepted.sdp"),
    ]
    assert write.receipt.rejected[0].code == "NIK_NOT_DIGITS"
    assert write.receipt.lateness is not None
    assert write.receipt.lateness.value == "after_10"
    assert write.receipt.snapshot_state is not None
    assert write.receipt.snapshot_state.complete
    assert spies.dead == []


async def test_a_snapshot_in_parts_completes_once_every_part_arrived() -> None:
    store = FakeSubmissionStore()
    parts = [submission([inmate()], part=n, parts=3, snapshot=5) for n in (1, 2, 2, 3)]
    parts[2]["message_id"] = "resend-of-part-2"  # the same part, sent again under another id
    async with in_memory(app(store)) as (broker, _):
        for body in parts:
            await send(broker, body)
    states = [store.writes[p["message_id"]].receipt.snapshot_state for p in parts]
    assert [(s.parts_received, s.complete) for s in states if s] == [
        (1, False),
        (2, False),
        (2, False),
        (3, True),
    ]
    assert len(store.records[(UPT, AS_OF, 5)]) == 3


async def test_a_submission_for_another_unit_is_refused_with_a_receipt_to_the_real_sender() -> None:
    store = FakeSubmissionStore()
    body = submission([inmate()], upt_id="upt-1101-1")
    async with in_memory(app(store)) as (broker, _):
        await send(broker, body)
    write = store.writes[body["message_id"]]
    assert write.records == []
    assert write.decision is None
    assert store.outbox[0].routing_key == UPT
    assert [p.code for p in write.receipt.rejected] == ["SENDER_MISMATCH"]


async def test_a_body_that_is_not_json_is_dead_lettered_with_its_reason_and_answered() -> None:
    store = FakeSubmissionStore()
    async with in_memory(app(store)) as (broker, spies):
        await send(broker, b'{"upt_id": "upt-3273-1", "records": [', message_id="m-broken")
    assert spies.dead_reasons() == ["MESSAGE_NOT_JSON"]
    assert spies.dead[0].headers["x-original-user-id"] == UPT
    assert spies.dead[0].body == b'{"upt_id": "upt-3273-1", "records": ['  # the original bytes, kept
    assert [r.json()["status"] for r in spies.receipts] == ["rejected"]
    assert spies.receipts[0].json()["rejected"][0]["code"] == "MESSAGE_NOT_JSON"
    assert store.writes == {}


async def test_a_body_of_the_wrong_shape_is_dead_lettered_with_the_failing_fields() -> None:
    body = submission([inmate()])
    del body["parts"]
    body["as_of"] = "kemarin"
    async with in_memory(app(FakeSubmissionStore())) as (broker, spies):
        await send(broker, body)
    assert spies.dead_reasons() == ["MESSAGE_SCHEMA"]
    detail = spies.dead[0].headers["x-dead-detail"]
    assert "parts" in detail
    assert "as_of" in detail
    assert "kemarin" not in detail


async def test_a_message_without_user_id_is_dead_lettered_and_answered_to_the_unit_its_routing_key_names() -> (
    None
):
    store = FakeSubmissionStore()
    body = submission([inmate()])
    async with in_memory(app(store)) as (broker, spies):
        await send(broker, body, user_id=None)
    assert spies.dead_reasons() == ["USER_ID_MISSING"]
    assert [(r.routing_key, r.json()["in_reply_to"], r.json()["status"]) for r in spies.receipts] == [
        (UPT, body["message_id"], "rejected")
    ]  # only that unit's user may publish with its routing key: the broker vouches for it
    assert store.writes == {}


async def test_a_body_id_that_differs_from_the_property_is_dead_lettered() -> None:
    async with in_memory(app(FakeSubmissionStore())) as (broker, spies):
        await send(broker, submission([inmate()]), message_id="something-else")
    assert spies.dead_reasons() == ["MESSAGE_ID_MISMATCH"]


async def test_only_upt_users_of_this_installation_may_send_submissions() -> None:
    settings = Settings(amqp_url=SETTINGS.amqp_url, broker_namespace="prod-", health_port=0)
    async with in_memory(app(FakeSubmissionStore(), settings)) as (broker, spies):
        await send(broker, submission([inmate()]), user_id=UPT)
    async with in_memory(app(FakeSubmissionStore())) as (broker2, spies2):
        await send(
            broker2,
            submission([inmate()], upt_id="dukcapil-3273"),
            user_id="dukcapil-3273",
            routing_key="sdp.dukcapil-3273.submission",
        )
    assert spies.dead_reasons() == spies2.dead_reasons() == ["SENDER_NOT_ALLOWED"]


async def test_the_same_message_twice_is_stored_once_and_answered_twice_with_the_same_receipt() -> None:
    store = FakeSubmissionStore()
    body = submission([inmate()])
    async with in_memory(app(store)) as (broker, spies):
        await send(broker, body)
        await send(broker, body)
    assert len(store.writes) == 1
    assert sum(1 for o in store.outbox if o.exchange == "receipts") == 1
    assert len(spies.receipts) == 1  # the repeat is answered directly, with the stored receipt
    assert spies.receipts[0].json()["message_id"] == store.outbox[0].message.message_id


async def test_the_sim_submission_parses_back() -> None:
    body = submission([inmate()])
    assert SdpSubmission.model_validate(body).message_id == body["message_id"]


async def test_a_upt_sending_beyond_its_allowance_is_told_to_resend_later_and_its_part_is_not_read() -> None:
    store = FakeSubmissionStore()
    settings = SETTINGS.model_copy(update={"sdp_burst_records": 3, "sdp_records_per_second": 0.5})
    first, second = submission([inmate(), inmate()]), submission([inmate(), inmate()], snapshot=2)
    async with in_memory(app(store, settings)) as (broker, spies):
        await send(broker, first)
        await send(broker, second)
    assert list(store.writes) == [first["message_id"]]  # the second part was not read, nor stored
    told = [r.json() for r in spies.receipts]
    assert [(r["in_reply_to"], r["status"]) for r in told] == [(second["message_id"], "rejected")]
    assert told[0]["rejected"][0]["code"] == "SENDER_OVER_RATE"
    assert told[0]["retry_after_s"] == 2.0  # one record short at half a record a second
    assert told[0]["message_id"] != store.writes[first["message_id"]].receipt.message_id
    assert [e.json()["submission_id"] for e in spies.events] == []  # no refusal counted: it comes back
    assert spies.dead == []

"""Bad input and failures on the real broker and database: answered, dead-lettered, never looped, never doubled."""

from __future__ import annotations

import json

import pika
import pytest

from services.registry.app import build_app
from services.registry.config import Settings
from services.registry.store import Decide, PartKey, PostgresSubmissionStore
from shared.contracts import SubmissionReceipt
from shared.runtime import Database
from sim.publisher import UnitClient
from tests.builders import inmate, submission
from tests.conftest import Installation
from tests.integration.helpers import body, eventually, fetchval, purge, queue_depth, running, take

pytestmark = pytest.mark.integration
ME = "upt-3273-1"
QUEUES = ("registry.sdp", "dead.letters", "monitor.dead", f"receipts.{ME}", "dedup.sdp", "monitor.status")


@pytest.fixture
async def clean(installation: Installation) -> Installation:
    await purge(installation.admin_url, *QUEUES)
    return installation


def settings(inst: Installation) -> Settings:
    return inst.settings("registry", Settings, retry_backoff_max=0.05)


def upt(inst: Installation) -> UnitClient:
    cred = next(c for c in inst.credentials if c.role == "upt" and c.unit_id == ME)
    return UnitClient(inst.url_for("upt", ME), cred.username, ME)


class FailingStore(PostgresSubmissionStore):
    """The real store, made to fail on purpose for chosen messages."""

    def __init__(self, database: Database, *, poison: set[str], fail_after_commit: set[str]) -> None:
        super().__init__(database)
        self.poison = poison
        self.fail_after_commit = fail_after_commit
        self.calls: list[str] = []

    async def save_part(
        self, message_id: str, sender: str, key: PartKey | None, decide: Decide
    ) -> SubmissionReceipt | None:
        self.calls.append(message_id)
        if message_id in self.poison:
            raise RuntimeError("simulated bug")
        result = await super().save_part(message_id, sender, key, decide)
        if message_id in self.fail_after_commit:
            self.fail_after_commit.discard(message_id)
            raise ConnectionError("simulated crash after the commit, before the ack")
        return result


@pytest.fixture
def registry_parts(clean: Installation) -> tuple[Settings, Database]:
    s = settings(clean)
    return s, Database.of_service(s.database_url, "registry")


async def test_malformed_json_is_dead_lettered_with_its_reason_answered_and_not_looped(
    clean: Installation,
) -> None:
    inst = clean
    good = submission([inmate(), inmate()], upt_id=ME)
    async with running(build_app(settings(inst))), upt(inst) as client:
        await client.publish_body(b'{"upt_id": "upt-3273-1", "records": [', message_id="broken-1")
        await client.publish_part(good)
        receipts = [body(m) for m in await take(inst.admin_url, f"receipts.{ME}", count=2)]
        dead = await take(inst.admin_url, "dead.letters", count=1)
    assert {r["in_reply_to"]: r["status"] for r in receipts} == {
        "broken-1": "rejected",
        good["message_id"]: "accepted",
    }
    broken = next(r for r in receipts if r["in_reply_to"] == "broken-1")
    assert broken["rejected"][0]["code"] == "MESSAGE_NOT_JSON"
    assert broken["rejected"][0]["reason_id"]
    (letter,) = dead
    headers = letter.headers or {}
    assert headers["x-dead-reason"] == "MESSAGE_NOT_JSON"
    assert headers["x-original-message-id"] == "broken-1"
    assert headers["x-original-user-id"] == f"{inst.namespace}{ME}"
    assert letter.body == b'{"upt_id": "upt-3273-1", "records": ['
    assert await queue_depth(inst.admin_url, "registry.sdp") == 0
    assert await queue_depth(inst.admin_url, "dead.letters") == 0  # once, not again and again


def publish_without_message_id(inst: Installation, payload: bytes) -> None:
    """aio-pika always invents a message_id; pika sends none, like some regional systems would."""
    cred = next(c for c in inst.credentials if c.role == "upt" and c.unit_id == ME)
    params = pika.URLParameters(inst.url_for("upt", ME))
    with pika.BlockingConnection(params) as connection:
        channel = connection.channel()
        channel.confirm_delivery()
        channel.basic_publish(
            "ingest",
            f"sdp.{ME}.submission",
            payload,
            pika.BasicProperties(user_id=cred.username, delivery_mode=2, content_type="application/json"),
            mandatory=True,
        )


async def test_messages_without_id_or_sender_are_dead_lettered(clean: Installation) -> None:
    inst = clean
    async with running(build_app(settings(inst))), upt(inst) as client:
        publish_without_message_id(inst, json.dumps(submission([inmate()], upt_id=ME)).encode())
        no_user = submission([inmate()], upt_id=ME)
        await client.publish_body(
            json.dumps(no_user).encode(), message_id=no_user["message_id"], user_id=None
        )
        dead = await take(inst.admin_url, "dead.letters", count=2)
    assert sorted(str((m.headers or {})["x-dead-reason"]) for m in dead) == [
        "MESSAGE_ID_MISSING",
        "USER_ID_MISSING",
    ]
    count = await fetchval(
        inst.database_url,
        "SELECT count(*) FROM registry.submissions WHERE message_id = $1",
        no_user["message_id"],
    )
    assert count == 0


async def _calls(store: FailingStore, n: int) -> bool:
    return len(store.calls) >= n


async def test_a_message_redelivered_after_its_commit_is_processed_once(
    clean: Installation, registry_parts: tuple[Settings, Database]
) -> None:
    inst = clean
    s, database = registry_parts
    part = submission([inmate(), inmate(), inmate()], upt_id=ME)
    store = FailingStore(database, poison=set(), fail_after_commit={part["message_id"]})
    async with running(build_app(s, parts=store, database=database)), upt(inst) as client:
        await client.publish_part(part)
        await eventually(lambda: _calls(store, 2), what="the redelivery")
        receipts = [body(m) for m in await take(inst.admin_url, f"receipts.{ME}", count=2, timeout=3)]
    assert store.calls == [part["message_id"], part["message_id"]]  # delivered, failed, delivered again
    # answered once: the first answer left through the outbox with the commit; the redelivery adds none
    assert len(receipts) == 1
    assert receipts[0]["in_reply_to"] == part["message_id"]
    rows = await fetchval(
        inst.database_url,
        "SELECT count(*) FROM registry.sdp_records WHERE submission_id = $1",
        part["message_id"],
    )
    submissions = await fetchval(
        inst.database_url,
        "SELECT count(*) FROM registry.submissions WHERE message_id = $1",
        part["message_id"],
    )
    assert (submissions, rows) == (1, 3)
    await eventually(lambda: queue_depth(inst.admin_url, "dedup.sdp"), what="the accepted event")
    assert await queue_depth(inst.admin_url, "dedup.sdp") == 1  # one accepted event, not two


async def test_a_message_that_keeps_failing_reaches_the_delivery_limit_and_the_rest_flows(
    clean: Installation, registry_parts: tuple[Settings, Database]
) -> None:
    inst = clean
    s, database = registry_parts
    poison = submission([inmate()], upt_id=ME)
    good = submission([inmate()], upt_id=ME)
    store = FailingStore(database, poison={poison["message_id"]}, fail_after_commit=set())
    async with running(build_app(s, parts=store, database=database)), upt(inst) as client:
        await client.publish_part(poison)
        await client.publish_part(good)
        (receipt,) = [body(m) for m in await take(inst.admin_url, f"receipts.{ME}", count=1)]
        (letter,) = await take(inst.admin_url, "dead.letters", count=1, timeout=30)
    assert receipt["in_reply_to"] == good["message_id"]
    deaths = (letter.headers or {})["x-death"]
    assert deaths[0]["reason"] == "delivery_limit"  # type: ignore[index,call-overload]
    assert store.calls.count(poison["message_id"]) == 11  # the first delivery and ten more (x-delivery-limit)
    assert await queue_depth(inst.admin_url, "registry.sdp") == 0

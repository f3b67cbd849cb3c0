"""Every hostile or malformed message gets an answer its sender can act on, and nothing else suffers."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import aio_pika
import aiormq
import asyncpg
import pytest

from services.registry.app import build_app
from services.registry.config import Settings
from shared.contracts import WIB
from sim.publisher import UnitClient
from tests.builders import inmate, packets, submission
from tests.conftest import Installation
from tests.hostile import DUKCAPIL, KABKOTA, UPT, Case, corpus
from tests.integration.helpers import purge, queue_depth, running

pytestmark = pytest.mark.integration


@dataclass
class Collector:
    """Everything that comes back: receipts by the message they answer, dead letters by the message they hold."""

    receipts: dict[str, dict[str, Any]] = field(default_factory=dict)
    dead: dict[str, dict[str, Any]] = field(default_factory=dict)

    async def wait(self, predicate: Any, timeout: float = 15) -> bool:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.02)
        return True


@asynccontextmanager
async def collecting(inst: Installation) -> AsyncIterator[Collector]:
    found = Collector()
    connection = await aio_pika.connect(inst.admin_url)
    channel = await connection.channel()

    async def on_receipt(message: aio_pika.abc.AbstractIncomingMessage) -> None:
        async with message.process():
            body = json.loads(message.body)
            found.receipts.setdefault(body["in_reply_to"], body)

    async def on_dead(message: aio_pika.abc.AbstractIncomingMessage) -> None:
        async with message.process():
            headers = message.headers or {}
            found.dead[str(headers.get("x-original-message-id") or message.message_id)] = dict(headers)

    for name in (f"receipts.{UPT}", f"receipts.{DUKCAPIL}"):
        await (await channel.get_queue(name, ensure=False)).consume(on_receipt)
    await (await channel.get_queue("dead.letters", ensure=False)).consume(on_dead)
    try:
        yield found
    finally:
        await connection.close()


def codes_of(receipt: dict[str, Any]) -> set[str]:
    listed = receipt.get("rejected", []) + receipt.get("refused", []) + receipt.get("problems", [])
    return {p["code"] for p in listed}


async def send(inst: Installation, case: Case) -> Exception | None:
    cred = next(c for c in inst.credentials if c.unit_id == case.sender and c.role in ("upt", "dukcapil"))
    user_id = (
        cred.username if case.user_id == "" else (f"{inst.namespace}{case.user_id}" if case.user_id else None)
    )
    try:
        async with UnitClient(inst.url_for(cred.role, case.sender), cred.username, case.sender) as client:
            await client.publish_body(
                case.body, message_id=case.message_id, routing_key=case.key, user_id=user_id
            )
    except Exception as refused:  # the broker's answer: a closed channel or a returned message
        return refused
    return None


async def test_every_hostile_message_is_answered_and_the_service_stays_up(installation: Installation) -> None:
    inst = installation
    await purge(
        inst.admin_url,
        "registry.sdp",
        "registry.ektp",
        "registry.ektp-print",
        "registry.ektp-status",
        "dead.letters",
        f"receipts.{UPT}",
        f"receipts.{DUKCAPIL}",
    )
    cases = corpus()
    assert len([c for c in cases if c.outcome != "accepted"]) >= 40
    settings = inst.settings("registry", Settings, retry_backoff_max=0.05)
    failures: list[str] = []
    async with running(build_app(settings)), collecting(inst) as found:
        for case in cases:
            failures += await check(inst, case, found)
        # Still up: a good part and a good packet sent after all that are accepted.
        good = submission([inmate(), inmate()], upt_id=UPT, as_of=datetime.now(WIB).date())
        packet = packets(1, seed=777)[0]
        await send(
            inst,
            Case(
                "good part",
                UPT,
                f"sdp.{UPT}.submission",
                json.dumps(good).encode(),
                "accepted",
                message_id=good["message_id"],
            ),
        )
        await send(
            inst,
            Case(
                "good packet",
                DUKCAPIL,
                f"ektp.{KABKOTA}.packet",
                json.dumps(packet).encode(),
                "accepted",
                message_id=packet["message_id"],
            ),
        )
        ok = await found.wait(lambda: {good["message_id"], packet["message_id"]} <= found.receipts.keys())
    assert failures == []
    assert ok
    assert found.receipts[good["message_id"]]["status"] == "accepted"
    assert found.receipts[packet["message_id"]]["status"] == "SENT_FOR_DEDUP"
    for queue in ("registry.sdp", "registry.ektp", "registry.ektp-print", "registry.ektp-status"):
        assert await queue_depth(inst.admin_url, queue) == 0, f"{queue} holds a message that loops"
    assert not [d for d in found.dead.values() if d.get("x-death")], "nothing should need the delivery limit"
    conn = await asyncpg.connect(inst.database_url)
    try:  # odd but lawful text is stored exactly as sent
        stored = await conn.fetchval(
            "SELECT count(*) FROM registry.sdp_records WHERE record->>'full_name' = $1",
            "Robert'); DROP TABLE inmates;--",
        )
    finally:
        await conn.close()
    assert stored == 1


async def check(inst: Installation, case: Case, found: Collector) -> list[str]:
    """Send one case and compare what came back with what it is owed."""
    error = await send(inst, case)
    mid = case.message_id or ""
    if case.outcome == "broker":
        if error is None or case.broker_error not in repr(error):
            return [f"{case.name}: broker should refuse with {case.broker_error}, got {error!r}"]
        return []
    if error is not None:
        return [f"{case.name}: refused at publish: {error!r}"]
    if case.outcome == "dead":
        if not await found.wait(lambda: mid in found.dead):
            return [f"{case.name}: no dead letter"]
        reason = found.dead[mid].get("x-dead-reason")
        if reason != case.code or mid in found.receipts:
            return [f"{case.name}: dead-lettered with {reason}, receipt {mid in found.receipts}"]
        return []
    if not await found.wait(lambda: mid in found.receipts):
        return [f"{case.name}: no receipt"]
    receipt = found.receipts[mid]
    if case.outcome == "accepted":
        wanted = case.code or "accepted"
        return (
            [] if receipt.get("status") == wanted else [f"{case.name}: {receipt.get('status')} not {wanted}"]
        )
    if case.outcome == "record":
        refused = {(p["index"], p["code"]) for p in receipt["rejected"]}
        if (case.index, case.code) not in refused or receipt["accepted"] != case.accepted:
            return [f"{case.name}: refused {sorted(refused)}, accepted {receipt['accepted']}"]
        return []
    if case.code not in codes_of(receipt):
        return [f"{case.name}: expected {case.code}, got {sorted(codes_of(receipt))}"]
    return []


async def test_a_closed_channel_does_not_leak_into_the_next_connection(installation: Installation) -> None:
    cred = next(c for c in installation.credentials if c.unit_id == UPT)
    async with UnitClient(installation.url_for("upt", UPT), cred.username, UPT) as client:
        with pytest.raises(aiormq.exceptions.ChannelAccessRefused):
            await client.publish_body(b"{}", message_id="x", routing_key="sdp.upt-1101-1.submission")
    async with UnitClient(installation.url_for("upt", UPT), cred.username, UPT) as client:
        await client.publish_part(submission([inmate()], upt_id=UPT))  # a fresh connection works
    await purge(installation.admin_url, "registry.sdp")

"""The centre's dead-letter tool on the real broker and database: letters taken off the queue into the store,
listed with their reasons, shown masked, replayed where they came from in their sender's name, discarded, and
every action audited. Its own installation: it empties `dead.letters`, which other tests read."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aio_pika
import aiormq
import asyncpg
import pytest

from deploy import credentials as creds
from deploy.sandbox import Servers, remove_sandbox
from shared.settings import PROJECT_ROOT
from tests.conftest import Installation, make_installation
from tests.integration.helpers import queue_depth, take

pytestmark = pytest.mark.integration
UPT = "upt-3273-1"
NIK = "3273015505900001"


@pytest.fixture(scope="module")
def own(servers: Servers, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installation]:
    inst = make_installation(servers, tmp_path_factory.mktemp("deadletters"), (UPT,))
    try:
        yield inst
    finally:
        remove_sandbox(inst)


async def dead_letter(inst: Installation, n: int, reason: str) -> None:
    """A dead letter as a service writes one (shared/messaging.py DeadLetter): the body kept, the reason and
    the origin in its headers."""
    registry = inst.url_for("service", "registry")
    upt = creds.find(inst.credentials, "upt", UPT).username
    body = json.dumps({"upt_id": UPT, "records": [{"nik": NIK, "n": n}]}).encode()
    async with await aio_pika.connect(registry) as connection:
        channel = await connection.channel(publisher_confirms=True)
        dead = await channel.get_exchange("dead", ensure=False)
        await dead.publish(
            aio_pika.Message(
                body, message_id=f"dead-{n}", user_id=creds.find(inst.credentials, "service", "registry").username,
                content_type="application/octet-stream", delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                headers={"x-dead-reason": reason, "x-dead-detail": "line 1 column 1", "x-dead-service": "registry",
                         "x-dead-queue": "registry.sdp", "x-dead-at": f"2026-12-03T0{n}:00:00+00:00",
                         "x-original-exchange": "ingest", "x-original-routing-key": f"sdp.{UPT}.submission",
                         "x-original-user-id": upt, "x-original-message-id": f"orig-{n}",
                         "x-original-content-type": "application/json"},
            ),
            routing_key=f"sdp.{UPT}.submission",
        )  # fmt: skip


def tool(inst: Installation, *args: str) -> subprocess.CompletedProcess[str]:
    base = ["--amqp-url", inst.servers.amqp_url, "--vhost", inst.vhost, "--credentials", str(inst.credentials_path),
            "--database-url", inst.database_url, "--by", "Siti (pusat)"]  # fmt: skip
    return subprocess.run(
        [sys.executable, "-m", "deploy.deadletters", *base, *args],
        cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


async def rows(inst: Installation, sql: str) -> list[dict[str, Any]]:
    conn = await asyncpg.connect(inst.database_url)
    try:
        return [dict(r) for r in await conn.fetch(sql)]
    finally:
        await conn.close()


def ids_listed(stdout: str) -> list[int]:
    return [int(line.split()[0]) for line in stdout.splitlines()[1:] if line.strip()]


def test_letters_are_listed_shown_replayed_and_discarded_and_every_action_is_audited(
    own: Installation,
) -> None:
    inst = own
    asyncio.run(dead_letter(inst, 1, "MESSAGE_NOT_JSON"))
    asyncio.run(dead_letter(inst, 2, "SCHEMA_INVALID"))

    listed = tool(inst, "list")
    assert listed.returncode == 0, listed.stderr
    assert "took 2 dead letters" in listed.stderr
    first, second = ids_listed(listed.stdout)
    assert "MESSAGE_NOT_JSON" in listed.stdout
    assert f"sdp.{UPT}.submission" in listed.stdout
    assert asyncio.run(queue_depth(inst.admin_url, "dead.letters")) == 0  # taken into the store, acknowledged
    only = tool(inst, "list", "--reason", "SCHEMA_INVALID")
    assert ids_listed(only.stdout) == [second]
    assert ids_listed(tool(inst, "list", "--routing-key", "ektp.*").stdout) == []

    shown = tool(inst, "show", str(first))
    assert shown.returncode == 0, shown.stderr
    assert NIK not in shown.stdout  # masked ...
    assert "3273********0001" in shown.stdout
    assert NIK in tool(inst, "show", str(first), "--raw").stdout  # ... unless asked for as stored

    assert tool(inst, "replay", "--why", "x").returncode == 2  # neither ids nor a filter: refused
    replayed = tool(inst, "replay", str(first), "--why", "the registry's schema was fixed")
    assert replayed.returncode == 0, replayed.stderr
    assert f"{first} replayed as replay-" in replayed.stdout
    (again,) = asyncio.run(take(inst.admin_url, "registry.sdp", count=1))
    upt = creds.find(inst.credentials, "upt", UPT).username
    assert again.user_id == upt  # in its sender's name: the registry reads the UPT from it
    assert again.message_id is not None
    assert again.message_id.startswith("replay-")
    assert (again.headers or {})["x-replay-of"] == "orig-1"
    assert json.loads(again.body)["records"][0]["nik"] == NIK
    assert "0 of 1 letters replayed" in tool(inst, "replay", str(first), "--why", "twice").stderr  # once only

    gone = tool(inst, "discard", "--reason", "SCHEMA_INVALID", "--why", "sent again by the UPT")
    assert "1 of 1 letters discarded" in gone.stderr
    letters = asyncio.run(
        rows(inst, "SELECT id, state, body IS NULL AS emptied FROM deadletters.letters ORDER BY id")
    )
    assert [(r["state"], r["emptied"]) for r in letters] == [("replayed", False), ("discarded", True)]

    actions = asyncio.run(
        rows(inst, "SELECT operator, action, letters, why FROM deadletters.actions ORDER BY id")
    )
    assert {a["operator"] for a in actions} == {"Siti (pusat)"}
    assert [a["action"] for a in actions if a["action"] != "list"] == [
        "collect", "show", "show", "replay", "replay", "discard",
    ]  # fmt: skip
    assert [a["letters"] for a in actions if a["action"] == "replay"] == [[first], []]
    assert actions[-1]["why"] == "sent again by the UPT"
    with pytest.raises(asyncpg.RaiseError, match="append-only"):
        asyncio.run(rows(inst, "UPDATE deadletters.actions SET why = 'nothing'"))

    # Retention: the letters (all dead before today) go once handled; a kept one stays unless asked
    asyncio.run(dead_letter(inst, 3, "MESSAGE_NOT_JSON"))
    kept = tool(inst, "prune", "--older-than", "0", "--why", "retention")
    assert "2 letters removed" in kept.stderr, kept.stderr
    assert [r["state"] for r in asyncio.run(rows(inst, "SELECT state FROM deadletters.letters"))] == ["kept"]
    assert (
        "1 letters removed" in tool(inst, "prune", "--older-than", "0", "--include-kept", "--why", "x").stderr
    )
    pruned = asyncio.run(
        rows(inst, "SELECT letters FROM deadletters.actions WHERE action = 'prune' ORDER BY id")
    )
    assert [len(p["letters"]) for p in pruned] == [2, 1]


async def test_only_the_operator_reads_the_dead_letters(own: Installation) -> None:
    for role, unit in (("upt", UPT), ("pusat", "pusat"), ("service", "monitor")):
        async with await aio_pika.connect(own.url_for(role, unit)) as connection:
            channel = await connection.channel()
            queue = await channel.get_queue("dead.letters", ensure=False)  # (no call to the broker yet)
            with pytest.raises(aiormq.exceptions.ChannelAccessRefused):
                await queue.get(fail=False)


def test_without_an_operator_user_the_tool_says_to_provision(own: Installation, tmp_path: Path) -> None:
    empty = tmp_path / "credentials.csv"
    creds.write(empty, [c for c in own.credentials if c.role != "operator"])
    result = subprocess.run(
        [sys.executable, "-m", "deploy.deadletters", "--credentials", str(empty), "list"],
        cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 2
    assert "no operator user" in result.stderr
    assert "provision again" in result.stderr

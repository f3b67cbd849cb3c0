"""Stopping a service mid-stream loses nothing: in-flight parts finish or are requeued, then resume."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import asyncpg
import pytest

from deploy import credentials as creds
from sim.publisher import UnitClient
from tests.builders import inmate, submission
from tests.e2e.conftest import Suite
from tests.e2e.test_sdp_day import OPTIONS, SHUTDOWN_UPT

pytestmark = pytest.mark.e2e
PARTS, RECORDS = (
    150,
    60,
)  # more parts than the prefetch (some must wait in the queue), within one UPT's allowance


async def stored_parts(dsn: str, parts: list[dict[str, Any]]) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        return int(
            await conn.fetchval(
                "SELECT count(*) FROM registry.submissions WHERE message_id = ANY($1)",
                [p["message_id"] for p in parts],
            )
        )
    finally:
        await conn.close()


async def test_sigterm_while_parts_are_in_flight_loses_and_doubles_nothing(suite: Suite) -> None:
    inst = suite.installation
    cred = creds.find(inst.credentials, "upt", SHUTDOWN_UPT)
    parts = [
        submission(
            [inmate() for _ in range(RECORDS)],
            upt_id=SHUTDOWN_UPT,
            as_of=OPTIONS.as_of,
            snapshot=7,
            part=n,
            parts=PARTS,
        )
        for n in range(1, PARTS + 1)
    ]
    async with UnitClient(inst.url_for("upt", SHUTDOWN_UPT), cred.username, SHUTDOWN_UPT) as client:
        await asyncio.gather(*(client.publish_part(part) for part in parts))
        started = time.monotonic()
        exit_code = await asyncio.to_thread(suite.stop, "registry")
        stopped_in = time.monotonic() - started
        assert exit_code == 0  # a clean, graceful exit
        assert stopped_in < 15
        before_restart = await stored_parts(inst.database_url, parts)
        assert before_restart < PARTS  # the stop really happened mid-stream
        await asyncio.to_thread(suite.start, "registry")
        receipts = await client.receipts({p["message_id"] for p in parts}, timeout=90)
    assert len(receipts) == PARTS
    assert all(r["status"] == "accepted" and r["accepted"] == RECORDS for r in receipts.values())

    conn = await asyncpg.connect(inst.database_url)
    try:
        stored = await stored_parts(inst.database_url, parts)
        records = await conn.fetchval(
            "SELECT count(*) FROM registry.sdp_records WHERE upt_id = $1 AND snapshot = 7", SHUTDOWN_UPT
        )
    finally:
        await conn.close()
    assert (stored, records) == (PARTS, PARTS * RECORDS)
    assert "stopping: finishing in-flight messages" in suite.log("registry")

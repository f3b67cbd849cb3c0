"""The simulated UPTs behave like well-written regional clients: when the broker closes their connections
(CONNECTION_FORCED, as in a broker restart), they connect again and send again what was not answered, under
the same message ids; every part is answered and stored once."""

from __future__ import annotations

import asyncio
import subprocess
from datetime import datetime

import asyncpg
import pytest

from services.registry.app import build_app
from services.registry.config import Settings
from shared.contracts import WIB
from sim import population
from sim.day import run_day
from tests.conftest import Installation
from tests.integration.helpers import connections, eventually, purge, running

pytestmark = pytest.mark.integration
UPTS = ("upt-3273-1", "upt-3273-2")


def close_connections(inst: Installation, users: set[str]) -> int:
    """The broker closes every connection of these users, as it does to all when it restarts."""
    closed = 0
    for pid, user in connections(inst, "pid", "user"):
        if user in users:
            subprocess.run(
                [*inst.servers.rabbitmqctl, "close_connection", pid, "simulated broker restart"],
                capture_output=True, check=False, timeout=60,
            )  # fmt: skip
            closed += 1
    return closed


async def test_upts_ride_out_their_connections_being_closed_and_every_part_is_answered_once(
    installation: Installation,
) -> None:
    inst = installation
    await purge(inst.admin_url, "registry.sdp", *(f"receipts.{u}" for u in UPTS))
    units = inst.units.subset(set(UPTS))
    day = datetime.now(WIB).date()
    by_upt = population.generate(units, population.Options(as_of=day, total=1_200, seed=41, part_size=200))
    users = {f"{inst.namespace}{u}" for u in UPTS}
    day_task = asyncio.create_task(
        run_day(
            units=units, by_upt=by_upt, credentials=inst.credentials, amqp_url=inst.servers.amqp_url,
            vhost=inst.vhost, as_of=day, part_size=200, receipt_timeout=90, progress=False, snapshot=77,
        )
    )  # fmt: skip
    # The parts are out and confirmed, nobody answers yet (no registry): then the broker drops the UPTs.
    await eventually(
        lambda: asyncio.to_thread(close_connections, inst, users), timeout=30, what="connections"
    )
    assert not day_task.done()
    settings = inst.settings("registry", Settings, retry_backoff_max=0.05)
    async with running(build_app(settings)):
        report = await asyncio.wait_for(day_task, 120)
    assert report.mismatches == []
    assert report.reconnects >= len(UPTS)  # each came back after its connection was closed
    assert report.receipts == report.parts == sum(len(population.parts(by_upt[u], 200)) for u in UPTS)
    conn = await asyncpg.connect(inst.database_url)
    try:
        stored = await conn.fetch(
            "SELECT upt_id, count(*) AS parts, sum(accepted) AS accepted FROM registry.submissions "
            "WHERE as_of = $1 AND snapshot = 77 AND upt_id = ANY($2) GROUP BY upt_id",
            day, list(UPTS),
        )  # fmt: skip
    finally:
        await conn.close()
    assert {r["upt_id"]: r["parts"] for r in stored} == {
        u: len(population.parts(by_upt[u], 200)) for u in UPTS
    }
    assert sum(r["accepted"] for r in stored) == report.accepted  # each part once, resends changed nothing


async def test_a_upt_told_to_slow_down_resends_after_the_pause_and_every_part_is_stored_once(
    installation: Installation,
) -> None:
    inst = installation
    upt = UPTS[0]
    await purge(inst.admin_url, "registry.sdp", f"receipts.{upt}")
    units = inst.units.subset({upt})
    day = datetime.now(WIB).date()
    by_upt = population.generate(units, population.Options(as_of=day, total=1_000, seed=43, part_size=100))
    # An allowance of 300 records refilled at 200 a second: most of the ten parts are first told to wait.
    settings = inst.settings("registry", Settings, sdp_burst_records=300, sdp_records_per_second=200.0)
    async with running(build_app(settings)):
        report = await run_day(
            units=units, by_upt=by_upt, credentials=inst.credentials, amqp_url=inst.servers.amqp_url,
            vhost=inst.vhost, as_of=day, part_size=100, receipt_timeout=90, progress=False, snapshot=78,
        )  # fmt: skip
    assert report.mismatches == []
    assert report.over_rate >= 5  # parts the registry did not read at first, sent again after the pause
    assert report.receipts == report.parts == 10
    assert sum(report.publishes.values()) == 10 + report.over_rate
    conn = await asyncpg.connect(inst.database_url)
    try:
        stored = await conn.fetchval(
            "SELECT count(*) FROM registry.submissions WHERE as_of = $1 AND snapshot = 78 AND upt_id = $2",
            day,
            upt,
        )
    finally:
        await conn.close()
    assert stored == 10

"""e-KTP captures end to end: Dukcapil offices send packets as their own users; the registry moves each capture
through the statuses, answers, forwards the good ones to dedup and keeps no template; dedup decides each
good capture once and keeps its templates only sealed."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import datetime
from typing import Any

import asyncpg
import httpx
import pytest

from deploy import credentials as creds
from shared.contracts import WIB
from sim.ektp import CENTRAL, REGIONAL, SENT, TRUTHS, CaptureStations, PacketOptions, PlannedPacket
from sim.ektp_day import EktpReport, run_ektp_day
from tests.e2e.conftest import Suite
from tests.integration.helpers import eventually, queue_depth

pytestmark = pytest.mark.e2e
OPTIONS = PacketOptions(
    as_of=datetime.now(WIB).date(),
    total=400,
    seed=3,
    declared_exception_share=0.05,
    region_fault_share=0.05,
    template_fault_share=0.08,
)


@pytest.fixture(scope="module")
def ektp_day(suite: Suite) -> tuple[list[PlannedPacket], EktpReport]:
    inst = suite.installation
    packets = CaptureStations(inst.units.dukcapil, OPTIONS).day()
    report = asyncio.run(
        run_ektp_day(
            offices=inst.units.dukcapil,
            packets=packets,
            credentials=inst.credentials,
            amqp_url=inst.servers.amqp_url,
            vhost=inst.vhost,
            receipt_timeout=60,
            progress=False,
        )
    )
    return packets, report


def test_every_capture_ended_where_the_ground_truth_says(
    ektp_day: tuple[list[PlannedPacket], EktpReport],
) -> None:
    packets, report = ektp_day
    assert report.mismatches == []
    expected = Counter(p.expected_status for p in packets)
    assert report.statuses == expected
    assert expected[REGIONAL] >= 10
    assert expected[CENTRAL] >= 20
    assert expected[SENT] >= 300


async def test_exactly_the_good_captures_went_on_to_dedup_and_no_template_stayed(
    suite: Suite, ektp_day: tuple[list[PlannedPacket], EktpReport]
) -> None:
    packets, _ = ektp_day
    inst = suite.installation
    good = sum(1 for p in packets if p.expected_status == SENT)

    async def verdicts() -> dict[str, int] | None:
        conn = await asyncpg.connect(inst.database_url)
        try:
            rows = await conn.fetch("SELECT status, count(*) AS n FROM dedup.verdicts GROUP BY status")
        finally:
            await conn.close()
        found = {r["status"]: r["n"] for r in rows}
        return found if sum(found.values()) == good else None

    # dedup decided each good capture once, as the truth says: a day of distinct people, unique (in the
    # gallery now) except those whose NIK contradicts the packet
    expected = Counter(TRUTHS[p.truth][0] for p in packets if p.expected_status == SENT)
    assert expected["PRINT_READY_RECORD"] >= 300
    assert await eventually(verdicts, timeout=60, what="a verdict per good capture") == dict(expected)
    assert await queue_depth(inst.admin_url, "dedup.ektp") == 0
    conn = await asyncpg.connect(inst.database_url)
    try:
        assert (
            await conn.fetchval("SELECT count(*) FROM dedup.gallery WHERE origin = 'enrolment'")
            == expected["PRINT_READY_RECORD"]
        )
        face = packets[0].body["biometrics"]["face"]["embedding"][:40]
        leaked = await conn.fetchval(
            "SELECT (SELECT count(*) FROM registry.captures WHERE demographics::text || modalities::text LIKE $1) + "
            "(SELECT count(*) FROM registry.outbox WHERE position(convert_to($2, 'UTF8') in body) > 0) + "
            "(SELECT count(*) FROM registry.ektp_messages WHERE receipt::text LIKE $1) + "
            "(SELECT count(*) FROM dedup.gallery WHERE position(convert_to($2, 'UTF8') in templates) > 0)",
            f"%{face}%",
            face,
        )
    finally:
        await conn.close()
    assert leaked == 0

    # the good captures left SENT_FOR_DEDUP on dedup's verdict, the one the truth predicts
    after_dedup = dict(
        Counter(TRUTHS[p.truth][0] if p.expected_status == SENT else p.expected_status for p in packets)
    )

    async def statuses() -> dict[str, int] | None:
        conn = await asyncpg.connect(inst.database_url)
        try:
            rows = await conn.fetch("SELECT status, count(*) AS n FROM registry.captures GROUP BY status")
        finally:
            await conn.close()
        found = {r["status"]: r["n"] for r in rows}
        return found if found == after_dedup else None

    await eventually(statuses, timeout=30, what="the registry moving each capture on dedup's verdict")


async def test_a_dukcapil_office_sees_its_own_pipeline_in_the_monitor(
    suite: Suite, ektp_day: tuple[list[PlannedPacket], EktpReport]
) -> None:
    packets, _ = ektp_day
    login = creds.find(suite.installation.credentials, "monitor", "dukcapil-3273")
    mine = Counter(p.expected_status for p in packets if p.kabkota == "3273")
    async with httpx.AsyncClient(base_url=suite.monitor_url) as client:
        await client.post(
            "/login",
            data={"username": login.username, "password": login.password},
            headers={"Origin": suite.monitor_url},  # as the login page's form is posted by a browser
        )

        async def view() -> dict[str, Any] | None:
            data: dict[str, Any] = (await client.get("/api/units")).json()
            row = data["offices"][0] if data["offices"] else {}
            return (
                data
                if row.get("printing") == mine[SENT]
                and row.get("central") == 0
                and row.get("failed") == mine[REGIONAL] + mine[CENTRAL]
                else None
            )

        data = await eventually(view, timeout=30, what="the office's pipeline")
    assert [o["unit_id"] for o in data["offices"]] == ["dukcapil-3273"]
    assert data["units"] == []  # a civil registry does not watch prisons
    assert data["scope"]["label"] == "Disdukcapil Kota Bandung"

"""One SDP day end to end: UPTs publish through sim/ as their own users, four service processes do the rest."""

from __future__ import annotations

import asyncio
import json
import re
from datetime import datetime
from typing import Any

import asyncpg
import httpx
import pytest

from deploy import credentials as creds
from services.consolidator.consolidation import WORKLIST
from services.consolidator.feed import FeedMessage, read_feed
from services.consolidator.stream_wire import stream_url
from shared.contracts import WIB, CentralRecordChanged
from sim import population
from sim.day import DayReport, run_day
from tests.e2e.conftest import Suite, consolidate
from tests.integration.helpers import eventually

pytestmark = pytest.mark.e2e
OPTIONS = population.Options(
    as_of=datetime.now(WIB).date(),
    total=3_000,
    seed=11,
    invalid_nik_share=0.02,
    invalid_record_share=0.01,
    shared_nik_share=0.01,
    part_size=250,
)


# Two units stay out of the day: the browser test publishes for one and watches its row change, the
# shutdown test stops the registry while the other one's parts are in flight.
LIVE_UPT = "upt-3204-1"
SHUTDOWN_UPT = "upt-3171-1"


@pytest.fixture(scope="module")
def day(suite: Suite) -> tuple[dict[str, list[population.PlannedRecord]], DayReport]:
    inst = suite.installation
    units = inst.units.subset({u.upt_id for u in inst.units.upts} - {LIVE_UPT, SHUTDOWN_UPT})
    by_upt = population.generate(units, OPTIONS)
    report = asyncio.run(
        run_day(
            units=units,
            by_upt=by_upt,
            credentials=inst.credentials,
            amqp_url=inst.servers.amqp_url,
            vhost=inst.vhost,
            as_of=OPTIONS.as_of,
            part_size=OPTIONS.part_size,
            receipt_timeout=60,
            progress=False,
        )
    )
    return by_upt, report


@pytest.fixture(scope="module")
def consolidated(suite: Suite, day: tuple[dict[str, list[population.PlannedRecord]], DayReport]) -> str:
    """The centre's run of the day, once every part has reached the consolidator; the run id."""
    by_upt, report = day

    async def staged() -> bool:
        conn = await asyncpg.connect(suite.installation.database_url)
        try:
            known = await conn.fetchval(
                "SELECT count(*) FROM consolidator.sdp_parts WHERE as_of = $1 AND upt_id = ANY($2) "
                "AND (checked OR (stored AND accepted = 0))",
                OPTIONS.as_of,
                list(by_upt),
            )
        finally:
            await conn.close()
        return bool(known >= report.parts)

    async def run() -> str:
        await eventually(staged, timeout=60, what="every part staged at the consolidator")
        return await consolidate(suite, OPTIONS.as_of)

    return asyncio.run(run())


async def central_keys(dsn: str, upts: list[str]) -> tuple[set[tuple[str, str]], set[tuple[str, str]]]:
    """Every inmate in custody in the central records of these UPTs, and those carrying a dedup flag."""
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT upt_id, inmate_id FROM consolidator.episodes WHERE state = 'active' AND upt_id = ANY($1)",
            upts,
        )
        flagged = await conn.fetch(
            "SELECT f.upt_id, f.inmate_id FROM consolidator.inmate_flags f "
            "JOIN consolidator.episodes e USING (upt_id, inmate_id) "
            "WHERE e.state = 'active' AND f.flags <> '[]' AND f.upt_id = ANY($1)",
            upts,
        )
        return {(r[0], r[1]) for r in rows}, {(r[0], r[1]) for r in flagged}
    finally:
        await conn.close()


def test_every_part_got_the_receipt_the_ground_truth_predicts(
    day: tuple[dict[str, list[population.PlannedRecord]], DayReport],
) -> None:
    by_upt, report = day
    assert report.mismatches == []
    assert report.parts == sum(len(population.parts(r, OPTIONS.part_size)) for r in by_upt.values())
    assert report.receipts == report.parts
    assert (report.accepted, report.rejected) == (report.expected_accepted, report.expected_rejected)
    assert report.expected_rejected >= 60  # the day really carried bad records
    codes = {p["code"] for r in report.receipt_bodies.values() for p in r["rejected"]}
    assert {"NIK_SERIAL_ZERO", "NIK_DATE_INVALID", "FIELD_INVALID"} <= codes
    for receipt in report.receipt_bodies.values():
        for problem in receipt["rejected"]:
            assert problem["reason_id"]
            assert problem["reason_en"]
            assert problem["index"] is not None


async def test_exactly_the_valid_records_became_central_records_with_shared_niks_flagged(
    suite: Suite,
    day: tuple[dict[str, list[population.PlannedRecord]], DayReport],
    consolidated: str,
) -> None:
    by_upt, _ = day
    expected = {(upt, p.inmate_id) for upt, records in by_upt.items() for p in records if p.accepted}
    expected_flagged = population.expected_flagged(by_upt)
    assert len(expected_flagged) >= 20
    pairs = _pairs(by_upt)
    assert any(a[0] != b[0] for a, b in pairs)  # across UPTs
    assert any(a[0] == b[0] for a, b in pairs)  # and within one UPT

    async def settled() -> tuple[set[tuple[str, str]], set[tuple[str, str]]] | None:
        keys, flagged = await central_keys(suite.installation.database_url, list(by_upt))
        return (keys, flagged) if keys == expected and flagged == expected_flagged else None

    await eventually(settled, timeout=60, what="central records matching the ground truth")


def _pairs(
    by_upt: dict[str, list[population.PlannedRecord]],
) -> list[tuple[tuple[str, str], tuple[str, str]]]:
    return [
        ((upt, p.inmate_id), p.shares_nik_with)
        for upt, records in by_upt.items()
        for p in records
        if p.accepted and p.shares_nik_with is not None
    ]


async def test_the_monitor_shows_each_upts_day_and_no_dead_letters(
    suite: Suite,
    day: tuple[dict[str, list[population.PlannedRecord]], DayReport],
    consolidated: str,
) -> None:
    by_upt, _ = day
    login = creds.find(suite.installation.credentials, "monitor", "pusat")
    async with httpx.AsyncClient(base_url=suite.monitor_url) as client:
        await client.post(
            "/login",
            data={"username": login.username, "password": login.password},
            headers={"Origin": suite.monitor_url},  # as the login page's form is posted by a browser
        )

        async def view() -> dict[str, Any] | None:
            data: dict[str, Any] = (await client.get("/api/units")).json()
            rows = {u["upt_id"]: u for u in data["units"]}
            done = all(
                rows[upt]["central_total"] == sum(p.accepted for p in records)
                for upt, records in by_upt.items()
            )
            return data if done else None

        data = await eventually(view, timeout=60, what="the monitor to show every central total")
    rows = {u["upt_id"]: u for u in data["units"]}
    assert set(rows) == {u.upt_id for u in suite.installation.units.upts}
    for upt, records in by_upt.items():
        row = rows[upt]
        assert row["state"] == "complete"
        assert row["accepted"] == sum(p.accepted for p in records)
        assert row["rejected"] == sum(not p.accepted for p in records)
        assert row["parts_received"] == row["parts"] == len(population.parts(records, OPTIONS.part_size))
    assert sum(r["flagged_total"] for r in rows.values()) == len(population.expected_flagged(by_upt))
    assert {rows[LIVE_UPT]["state"], rows[SHUTDOWN_UPT]["state"]} <= {"missing", "complete"}  # not in the day
    assert data["dead_letters_today"] == 0
    assert not re.search(r"\d{16}", str(data))  # the monitor never shows a NIK


async def test_the_run_report_matches_the_simulators_truth(
    suite: Suite,
    day: tuple[dict[str, list[population.PlannedRecord]], DayReport],
    consolidated: str,
) -> None:
    by_upt, _ = day
    conn = await asyncpg.connect(suite.installation.database_url)
    try:
        lines = {r["upt_id"]: dict(r) for r in await conn.fetch(
            "SELECT * FROM consolidator.run_upts WHERE run_id = $1", consolidated)}  # fmt: skip
        await conn.execute("SET search_path = consolidator")
        without = await conn.fetch(WORKLIST, consolidated)  # as the run's report lists it
        state = await conn.fetchval("SELECT state FROM consolidator.runs WHERE run_id = $1", consolidated)
    finally:
        await conn.close()
    assert state == "finished"
    for upt, records in by_upt.items():
        line = lines[upt]
        accepted = sum(p.accepted for p in records)
        assert (line["sent"], line["complete"], line["applied"]) == (True, True, "applied")
        assert (line["accepted"], line["refused"]) == (accepted, sum(not p.accepted for p in records))
        # The suite's first day of these UPTs registers who is there (no entry is dated on the day itself).
        assert (line["inmates"], line["admissions"], line["releases"]) == (accepted, 0, 0)
    # Inmates without a NIK are on the Dukcapil work list (the population record is empty in this suite, so
    # every inmate with a NIK is there too, as one whose NIK the population record does not hold).
    no_nik = {(u, p.inmate_id) for u, rs in by_upt.items() for p in rs if p.accepted and not p.raw.get("nik")}
    assert no_nik
    details = [(r["upt_id"], r["inmate_id"], json.loads(r["detail"])) for r in without]
    assert {(u, i) for u, i, d in details if d["reason"] == "no_nik" and u in by_upt} == no_nik
    assert not re.search(r"\d{16}", str(details))  # NIKs masked in the list


async def test_the_central_feed_carries_every_central_record_once_at_its_last_version(
    suite: Suite, consolidated: str
) -> None:
    inst = suite.installation

    async def fed() -> dict[str, int] | None:
        conn = await asyncpg.connect(inst.database_url)
        try:
            behind = await conn.fetchval(
                "SELECT count(*) FROM consolidator.persons WHERE fed_version < version"
            )
            unsent = await conn.fetchval(
                "SELECT count(*) FROM consolidator.outbox "
                "WHERE routing_key = 'central.record.changed' AND published_at IS NULL"
            )
            rows = await conn.fetch("SELECT person_id, version FROM consolidator.persons")
        finally:
            await conn.close()
        return {f"C{r[0]}": r[1] for r in rows} if behind == unsent == 0 else None

    persons = await eventually(fed, timeout=120, what="every central record's change on the feed")
    assert len(persons) >= 2_000
    got: dict[str, list[FeedMessage]] = {}
    for protocol, url in (("amqp", inst.url_for("pusat", "pusat")), ("stream", feed_url(inst))):
        messages: list[FeedMessage] = []
        await read_feed(url, start="first", follow=False, limit=None, idle=2.0, on_message=messages.append)
        got[protocol] = messages
    assert [(m.offset, m.message_id) for m in got["amqp"]] == [
        (m.offset, m.message_id) for m in got["stream"]
    ]
    ids = [m.message_id for m in got["stream"]]
    assert len(ids) == len(set(ids))  # each change once
    last: dict[str, int] = {}
    for m in got["stream"]:
        change = CentralRecordChanged.model_validate_json(m.body)
        assert m.message_id == change.message_id
        last[change.central_id] = max(last.get(change.central_id, 0), change.version)
    assert last == persons
    async with httpx.AsyncClient() as client:
        health = (await client.get(suite.ready_url("consolidator"))).json()
    assert health["feed_over_stream"] >= len(persons)  # the consolidator wrote it over the stream protocol


def feed_url(inst: Any) -> str:
    return stream_url(inst.url_for("pusat", "pusat"), inst.servers.stream_port)

"""The consolidator as a process on the real broker and database: only the centre commands a run, and a run
killed (kill -9) in the middle finishes after a restart without doubling anything."""

from __future__ import annotations

import asyncio
import itertools
import json
import signal
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiormq
import asyncpg
import pytest

from deploy import credentials as creds
from deploy.sandbox import Processes
from services.consolidator.command import request_run
from services.consolidator.consolidation import PostgresConsolidationStore
from services.consolidator.report.render import csv_files
from shared.contracts import (
    WIB,
    InmateRecord,
    Lateness,
    ReceiptStatus,
    SdpRecordsChecked,
    SnapshotState,
    SubmissionProcessed,
)
from shared.runtime import Database
from sim import population
from tests.conftest import Installation, Servers, make_installation, remove_sandbox
from tests.integration.helpers import eventually, publish_as, queue_depth

pytestmark = pytest.mark.integration
# Yesterday (WIB): the service refuses days in the future and older than it keeps staged snapshots.
DAY = datetime.now(WIB).date() - timedelta(days=1)
NOW = datetime.combine(DAY, datetime.min.time(), tzinfo=UTC) + timedelta(hours=2)
_n = itertools.count(1)


@pytest.fixture(scope="module")
def installation(servers: Servers, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installation]:
    """An installation of its own: other tests leave messages in the shared one's queues, which a
    consolidator started here would consume into the records this test counts."""
    inst = make_installation(servers, tmp_path_factory.mktemp("consolidator-process"))
    try:
        yield inst
    finally:
        remove_sandbox(inst)


@pytest.fixture
def processes(installation: Installation, tmp_path: Path) -> Iterator[Processes]:
    running = Processes(installation, tmp_path)
    try:
        yield running
    finally:
        running.stop_all()


@pytest.fixture
async def admin(installation: Installation) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(installation.database_url)
    try:
        yield conn
    finally:
        await conn.close()


async def stage_day(inst: Installation, total: int) -> dict[str, list[InmateRecord]]:
    """A day of every UPT as the registry answers it and dedup checks it, published as those services."""
    by_upt = population.generate(inst.units, population.Options(as_of=DAY, total=total, seed=7))
    staged: dict[str, list[InmateRecord]] = {}
    for upt, planned in by_upt.items():
        records = [InmateRecord.model_validate(p.raw) for p in planned if p.accepted]
        staged[upt] = records
        chunks = [records[i : i + 500] for i in range(0, len(records), 500)]
        for part, chunk in enumerate(chunks, start=1):
            n = next(_n)
            await publish_as(inst, "registry", SubmissionProcessed(
                message_id=f"kill-status-{n}", produced_at=NOW, submission_id=f"kill-{n}", upt_id=upt, as_of=DAY,
                snapshot=1, part=part, parts=len(chunks), status=ReceiptStatus.ACCEPTED, received=len(chunk),
                accepted=len(chunk), rejected=0, warnings=0, lateness=Lateness.ON_TIME,
                snapshot_state=SnapshotState(parts=len(chunks), parts_received=part, complete=part == len(chunks)),
            ))  # fmt: skip
            await publish_as(inst, "dedup", SdpRecordsChecked(
                message_id=f"kill-checked-{n}", produced_at=NOW, submission_id=f"kill-{n}", upt_id=upt,
                as_of=DAY, snapshot=1, part=part, parts=len(chunks), records=chunk, flag_seq=n,
            ))  # fmt: skip
    return staged


async def test_only_the_centre_may_command_a_run_at_the_broker(installation: Installation) -> None:
    for role, unit in (("upt", "upt-3273-1"), ("dukcapil", "dukcapil-3273"), ("service", "dedup")):
        cred = creds.find(installation.credentials, role, unit)
        with pytest.raises(aiormq.exceptions.ChannelAccessRefused):
            await request_run(
                installation.url_for(role, unit), cred.username, DAY, requested_by="x", reason="y"
            )
    assert await queue_depth(installation.admin_url, "consolidator.commands") == 0


async def test_a_run_command_from_a_user_the_broker_lets_through_is_refused_by_the_service(
    installation: Installation, processes: Processes, admin: asyncpg.Connection
) -> None:
    """The vhost's administrator may write to `commands`; the consolidator still runs only for the centre."""
    processes.start("consolidator")
    administrator = installation.admin_url.split("//", 1)[1].split(":", 1)[0]
    run_id = await request_run(
        installation.admin_url, administrator, DAY, requested_by="x", reason="y", message_id="adm-1"
    )

    async def answered() -> str | None:
        refused = await admin.fetchval(
            "SELECT refused FROM consolidator.run_requests WHERE message_id = 'adm-1'"
        )
        return str(refused) if refused else None

    assert await eventually(answered, timeout=30, what="the refusal recorded") == "RUN_NOT_CENTRE"
    assert await admin.fetchval("SELECT count(*) FROM consolidator.runs WHERE run_id = $1", run_id) == 0


async def test_a_run_killed_mid_way_finishes_after_a_restart_and_reports_what_a_clean_run_reports(
    installation: Installation, processes: Processes, admin: asyncpg.Connection
) -> None:
    processes.start("consolidator", RUN_CHECK_INTERVAL="1")
    staged = await stage_day(installation, total=40_000)
    expected_parts = sum(max(1, -(-len(r) // 500)) for r in staged.values() if r)

    async def all_staged() -> bool:
        return bool(
            await admin.fetchval("SELECT count(*) FROM consolidator.sdp_parts WHERE checked")
            >= expected_parts
        )

    await eventually(all_staged, timeout=120, what="every part staged")
    pusat = creds.find(installation.credentials, "pusat", "pusat")
    url = installation.url_for("pusat", "pusat")
    run_id = await request_run(url, pusat.username, DAY, requested_by="Siti", reason="kill test")

    # Kill the process as soon as the run has committed its first step (and before its last).
    killed_at = None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        step = await admin.fetchval("SELECT step FROM consolidator.runs WHERE run_id = $1", run_id)
        if step is not None and step >= 1:
            processes.running["consolidator"].send_signal(signal.SIGKILL)
            processes.running.pop("consolidator").wait(10)
            killed_at = step
            break
        await asyncio.sleep(0.005)
    assert killed_at is not None
    state = await admin.fetchrow("SELECT step, state FROM consolidator.runs WHERE run_id = $1", run_id)
    assert state is not None
    assert state["state"] == "running", f"the run finished before the kill (step {state['step']})"

    processes.start("consolidator", RUN_CHECK_INTERVAL="1")

    async def finished() -> bool:
        state = await admin.fetchval("SELECT state FROM consolidator.runs WHERE run_id = $1", run_id)
        return bool(state == "finished")

    await eventually(finished, timeout=120, what="the run resumed and finished")

    # Nothing doubled: one central person per NIK (or per inmate without one), one episode per record,
    # one feed message per person, every inmate in custody. (The installation is shared with other tests:
    # only what this day made is counted.)
    records = [r for rs in staged.values() for r in rs]
    people = len({r.nik for r in records if r.nik}) + sum(1 for r in records if not r.nik)
    mine = f"SELECT DISTINCT person_id FROM consolidator.episodes WHERE first_snapshot = '{DAY}/1'"
    persons = await admin.fetch(
        f"SELECT person_id, version FROM consolidator.persons WHERE person_id IN ({mine})"
    )
    assert len(persons) == people
    active = (
        f"SELECT count(*) FROM consolidator.episodes WHERE state = 'active' AND first_snapshot = '{DAY}/1'"
    )
    assert await admin.fetchval(active) == len(records)

    async def fed() -> bool:
        unfed = await admin.fetchval(f"SELECT count(*) FROM consolidator.persons WHERE version > fed_version "
                                     f"AND person_id IN ({mine})")  # fmt: skip
        return bool(unfed == 0)

    await eventually(fed, timeout=120, what="the run's changes on the central feed")
    published = "SELECT count(*) FROM consolidator.outbox WHERE message_id = ANY($1::text[])"
    assert [r["version"] for r in persons] == [1] * people  # one change each: the run's
    assert await admin.fetchval(published, [f"central-C{r['person_id']}-v1" for r in persons]) == people
    assert await admin.fetchval(published, [f"central-C{r['person_id']}-v2" for r in persons]) == 0

    # A second, undisturbed run of the same day reports the same, byte for byte.
    again = await request_run(url, pusat.username, DAY, requested_by="Siti", reason="again")

    async def again_finished() -> bool:
        state = await admin.fetchval("SELECT state FROM consolidator.runs WHERE run_id = $1", again)
        return bool(state == "finished")

    await eventually(again_finished, timeout=120, what="the second run")
    database = Database.of_service(installation.database_url, "consolidator")
    await database.open()
    try:
        store = PostgresConsolidationStore(database)
        first, second = await store.load_report(run_id), await store.load_report(again)
    finally:
        await database.close()
    assert first is not None
    assert second is not None
    assert csv_files(first) == csv_files(second)
    by_upt = {line.upt_id: line for line in first.lines}
    for upt, rs in staged.items():
        assert by_upt[upt].inmates == len(rs)
    print(json.dumps({"killed_after_step": killed_at}))

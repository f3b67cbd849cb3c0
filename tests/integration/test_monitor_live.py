"""The monitor on the real database: the live-event log (every instance sees every change, in commit order) and
the logins, checked against the fake the unit tests use."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from services.monitor.domain import scope_of_login
from services.monitor.domain.cases import DecisionRequest, Refusal
from services.monitor.domain.live import LiveEvent
from services.monitor.hub import Hub
from services.monitor.journal import GroupCommit, PostgresLiveLog, PostgresStores, postgres_unit_of_work
from services.monitor.live import LiveFeed
from services.monitor.probe import QueueProbe
from services.monitor.store import Account, MonitorStore, PostgresMonitorStore
from services.monitor.usecases import Monitor
from shared import db
from shared.contracts import (
    WIB,
    AdjudicationCaseChanged,
    ConsolidationRunReported,
    ReceiptStatus,
    RunLineReported,
    RunState,
    SnapshotState,
    SubmissionProcessed,
)
from shared.runtime import Database
from shared.settings import PROJECT_ROOT
from shared.units import load_units
from tests.conftest import Installation
from tests.fakes import FakeMonitorStore

DAY = date(2026, 11, 20)
NOW = datetime(2026, 11, 20, 5, tzinfo=UTC)
UPTS = ("upt-3273-1", "upt-1101-1", "upt-3273-2")


@pytest.fixture
async def url(installation: Installation) -> AsyncIterator[str]:
    url = db.with_database(installation.database_url, f"simpul_scratch_{uuid.uuid4().hex[:8]}")
    await db.ensure_database(url)
    try:
        yield url
    finally:
        await db.drop_database(url)


async def instance(url: str) -> tuple[Database, Hub, LiveFeed]:
    database = Database.of_service(url, "monitor")
    await database.open()
    await database.pool.executemany(
        "INSERT INTO units (upt_id, name, kind, kabkota_code, kabkota_name, province_code, kanwil_id, kanwil_name) "
        "VALUES ($1, $1, 'lapas', '3273', 'Bandung', '32', 'kanwil-' || substr($1, 5, 2), 'Kanwil') "
        "ON CONFLICT DO NOTHING",
        [(u,) for u in UPTS],
    )
    hub = Hub()
    feed = LiveFeed(PostgresLiveLog(database), hub, poll_seconds=30)  # woken by NOTIFY, not by polling
    await feed.start()
    return database, hub, feed


def part(upt: str, n: int) -> SubmissionProcessed:
    return SubmissionProcessed(
        message_id=f"st-{upt}-{n}", produced_at=NOW, submission_id=f"sub-{n}", upt_id=upt, as_of=DAY, snapshot=1,
        part=n, parts=40, status=ReceiptStatus.ACCEPTED, received=n, accepted=n, rejected=0, warnings=0,
        snapshot_state=SnapshotState(parts=40, parts_received=n, complete=False),
    )  # fmt: skip


async def test_two_instances_both_show_every_change_in_the_order_committed(url: str) -> None:
    first, second = await instance(url), await instance(url)
    centre, jabar = (
        first[1].subscribe(scope_of_login("pusat")),
        second[1].subscribe(scope_of_login("kanwil-32")),
    )
    monitors = [Monitor(postgres_unit_of_work(d), lambda: NOW) for d in (first[0], second[0])]
    try:
        # Both instances consume status events (they share the queue): each change is recorded by one of them.
        await asyncio.gather(
            *(monitors[n % 2].record_submission(part(UPTS[n % 3], n)) for n in range(1, 31)),
            monitors[0].record_submission(part(UPTS[1], 1)),  # a redelivered copy: no second event
        )
        got_centre = [await asyncio.wait_for(centre.queue.get(), 5) for _ in range(30)]
        jabar_parts = [n for n in range(1, 31) if UPTS[n % 3].startswith("upt-3273")]
        got_jabar = [await asyncio.wait_for(jabar.queue.get(), 5) for _ in jabar_parts]
        await asyncio.sleep(0.3)
        assert centre.queue.empty()
        assert jabar.queue.empty()
    finally:
        for database, _, feed in (first, second):
            await feed.stop()
            await database.close()
    assert [e.id for e in got_centre] == list(range(1, 31))  # every change, once, in order, none skipped
    last = {e.unit_id: e.payload["row"]["accepted"] for e in got_centre}  # the newest row of each UPT
    assert last == {u: sum(n for n in range(1, 31) if UPTS[n % 3] == u) for u in UPTS}
    assert [e.id for e in got_jabar] == [e.id for e in got_centre if e.kanwil_id == "kanwil-32"]


async def test_an_append_waits_for_the_one_before_it_to_commit(url: str) -> None:
    database = Database.of_service(url, "monitor")
    await database.open()
    log = PostgresLiveLog(database)
    try:
        async with database.pool.acquire() as slow, database.pool.acquire() as fast:
            early = slow.transaction()
            await early.start()
            first = PostgresStores(slow)
            first.live(LiveEvent("unit", {"n": 1}))
            await first.append_live()

            async def later() -> None:
                async with fast.transaction():
                    second = PostgresStores(fast)
                    second.live(LiveEvent("unit", {"n": 2}))
                    await second.append_live()

            task = asyncio.create_task(later())
            await asyncio.sleep(0.3)
            assert not task.done()  # it would otherwise commit id 2 while id 1 is still invisible
            assert (await log.bounds())[1] == 0
            await early.commit()
            await asyncio.wait_for(task, 5)
        assert [(e.id, e.payload["n"]) for e in await log.since(0, 10)] == [(1, 1), (2, 2)]
    finally:
        await database.close()


async def test_units_that_arrive_together_commit_together_each_only_once_committed(url: str) -> None:
    database = Database.of_service(url, "monitor")
    await database.open()
    log, unit = PostgresLiveLog(database), GroupCommit(database, window=1.0)
    transactions: list[int] = []
    seen_on_return: dict[int, int] = {}

    async def one(n: int) -> None:
        async with unit() as tx:
            assert isinstance(tx, PostgresStores)
            transactions.append(await tx.conn.fetchval("SELECT txid_current()"))
            tx.live(LiveEvent("unit", {"n": n}))
            if n == 7:
                raise ValueError("this unit fails")
        # back here only once committed: another connection sees it
        seen_on_return[n] = len([e for e in await log.since(0, 100) if e.payload["n"] == n])

    try:
        results = await asyncio.gather(*(one(n) for n in range(20)), return_exceptions=True)
        events = await log.since(0, 100)
    finally:
        await database.close()
    assert [n for n, r in enumerate(results) if r is not None] == [7]
    assert isinstance(results[7], ValueError)
    assert len(set(transactions)) < 20  # joined: fewer transactions than units
    assert seen_on_return == {n: 1 for n in range(20) if n != 7}
    assert sorted(e.payload["n"] for e in events) == [
        n for n in range(20) if n != 7
    ]  # the failed one undone alone
    assert [e.id for e in events] == sorted(e.id for e in events)


@pytest.fixture(params=["fake", "postgres"])
async def logins_store(request: pytest.FixtureRequest, url: str) -> AsyncIterator[MonitorStore]:
    if request.param == "fake":
        yield FakeMonitorStore()
        return
    database = Database.of_service(url, "monitor")
    await database.open()
    try:
        yield PostgresMonitorStore(database)
    finally:
        await database.close()


async def test_logins_sessions_and_failures_behave_alike_in_both_stores(logins_store: MonitorStore) -> None:
    store = logins_store
    assert await store.create_account(Account("andi", "h1", "kanwil-32"))
    assert not await store.create_account(Account("andi", "h2", "pusat"))
    await store.create_session("t1", "andi", NOW + timedelta(hours=1))
    assert (await store.session_user("t1", NOW)) == Account("andi", "h1", "kanwil-32")
    assert await store.session_user("t1", NOW + timedelta(hours=2)) is None  # expired
    assert await store.set_password("andi", "h3")
    assert await store.session_user("t1", NOW) is None  # a new password ends the sessions
    await store.create_session("t2", "andi", NOW + timedelta(hours=1))
    assert await store.set_disabled("andi", True)
    assert await store.session_user("t2", NOW) is None
    assert await store.list_accounts() == [Account("andi", "h3", "kanwil-32", disabled=True)]
    assert await store.set_disabled("andi", False)
    assert not await store.set_disabled("nobody", True)
    assert not await store.set_password("nobody", "h")
    keys = ["user:andi", "addr:10.0.0.1"]
    await store.record_login_failure(keys, NOW - timedelta(minutes=20))
    await store.record_login_failure(keys[:1], NOW)
    found = await store.login_failures(keys, NOW - timedelta(minutes=15))
    assert found == {"user:andi": [NOW], "addr:10.0.0.1": []}
    await store.clear_login_failures(keys)
    assert await store.login_failures(keys, NOW - timedelta(days=1)) == {"user:andi": [], "addr:10.0.0.1": []}


async def test_a_run_overtaken_by_its_own_events_keeps_the_furthest_and_its_lines_per_scope(url: str) -> None:
    database, _, feed = await instance(url)
    monitor = Monitor(postgres_unit_of_work(database), lambda: NOW)
    store = PostgresMonitorStore(database)

    def event(state: str, steps: int, n: int) -> ConsolidationRunReported:
        return ConsolidationRunReported(
            message_id=f"run-{n}", produced_at=NOW + timedelta(seconds=n), run_id="run-1", day=DAY,
            state=RunState(state), steps_done=steps, steps_total=5, summary={"accepted": 3} if steps == 5 else None,
        )  # fmt: skip

    try:
        for e in (event("started", 0, 1), event("finished", 5, 3), event("progress", 2, 2)):
            await monitor.record_run(e)
        for upt in UPTS:
            await monitor.record_run_line(
                RunLineReported(
                    message_id=f"line-{upt}",
                    produced_at=NOW,
                    run_id="run-1",
                    day=DAY,
                    upt_id=upt,
                    sent=True,
                    complete=True,
                    snapshot=1,
                    applied="applied",
                    figures={"accepted": 1},
                    breakdowns={"overstaying_by_register": {"A I": 2}},
                )
            )
        run = await store.run("run-1")
        assert run is not None
        assert (run["state"], run["steps_done"], run["summary"], run["started_at"]) == (
            "finished",
            5,
            {"accepted": 3},
            NOW + timedelta(seconds=1),
        )
        assert [r["run_id"] for r in await store.runs_of_day(DAY)] == ["run-1"]
        jabar = await store.run_lines(scope_of_login("kanwil-32"), "run-1")
        assert [line["upt_id"] for line in jabar] == ["upt-3273-1", "upt-3273-2"]
        assert jabar[0]["figures"]["accepted"] == 1  # (every figure kept, absent ones as 0)
        assert jabar[0]["breakdowns"] == {"overstaying_by_register": {"A I": 2}}
        assert jabar[0]["kabkota_code"] == "3273"  # where the UPT lies, for the work list per kab/kota
        assert "Bandung" in jabar[0]["kabkota_name"]
        assert [r["run_id"] for r in await store.finished_runs_since(DAY)] == ["run-1"]
        assert await store.finished_runs_since(DAY + timedelta(days=1)) == []
        assert len(await store.run_lines(scope_of_login("pusat"), "run-1")) == 3
        assert await store.run_lines(scope_of_login("dukcapil-3273"), "run-1") == []
        several = await store.lines_of_runs(scope_of_login("kanwil-32"), ["run-1", "run-0"], "upt-3273-2")
        assert {k: [line["upt_id"] for line in v] for k, v in several.items()} == {
            "run-1": ["upt-3273-2"],
            "run-0": [],
        }
        assert (await store.lines_of_runs(scope_of_login("kanwil-11"), ["run-1"], "upt-3273-2")) == {
            "run-1": []
        }
        events = [e.payload["state"] for e in await PostgresLiveLog(database).since(0, 10) if e.kind == "run"]
        assert events == ["started", "finished"]
    finally:
        await feed.stop()
        await database.close()


async def test_the_probe_reads_each_queues_depth_and_consumers_with_the_monitors_own_user(
    installation: Installation,
) -> None:
    import aio_pika

    probe = QueueProbe(installation.url_for("service", "monitor"), lambda: NOW)
    admin = await aio_pika.connect(installation.admin_url)
    try:
        channel = await admin.channel()
        events = await channel.get_exchange("events", ensure=False)
        async with await aio_pika.connect(installation.url_for("service", "monitor")) as connection:
            await probe.sample(connection)  # (the installation is shared: other tests left messages)
            for n in range(3):
                message = aio_pika.Message(b"{}", message_id=f"probe-{n}")
                await events.publish(message, routing_key="status.probe.test")
            await probe.sample(connection)
    finally:
        await admin.close()
    assert probe.source == "amqp"
    assert set(probe.current) == set(probe.queues)  # every queue of the topology found, none refused
    status, before = probe.current["monitor.status"], probe.previous["monitor.status"]
    assert (status.messages - before.messages, status.consumers, status.unacked) == (3, 0, None)


async def test_the_probe_counts_messages_in_delivery_from_the_management_api_with_the_monitors_own_user(
    installation: Installation,
) -> None:
    """The management API (as the monitor's own user, tagged `management`) tells a queue's unacknowledged
    messages apart from its ready ones; an API that does not answer leaves the AMQP sample."""
    import aio_pika

    api = installation.servers.management_url
    if api is None:
        pytest.skip("the broker's management API does not answer here")
    monitor_url = installation.url_for("service", "monitor")
    probe = QueueProbe(monitor_url, lambda: NOW, api_url=api)
    admin = await aio_pika.connect(installation.admin_url)
    try:
        channel = await admin.channel()
        events = await channel.get_exchange("events", ensure=False)
        status_queue = await channel.get_queue("monitor.status", ensure=False)
        await status_queue.purge()
        for n in range(3):
            await events.publish(
                aio_pika.Message(b"{}", message_id=f"api-{n}"), routing_key="status.probe.api"
            )
        held = await status_queue.get(no_ack=False)  # one in delivery, not acknowledged
        other = await admin.channel()
        dead = await other.get_queue("dead.letters", ensure=False)

        async def keep(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            """A consumer that never acknowledges."""

        await dead.consume(keep, no_ack=False)
        async with await aio_pika.connect(monitor_url) as connection:
            for _ in range(40):  # the broker refreshes the totals it shows every 5 s
                await probe.sample(connection)
                status, letters = probe.current.get("monitor.status"), probe.current.get("dead.letters")
                if (
                    status is not None
                    and (status.messages, status.unacked) == (2, 1)
                    and letters
                    and letters.consumers
                ):
                    break
                await asyncio.sleep(0.5)
            assert probe.source == "management"
            assert status is not None
            assert set(probe.current) == set(probe.queues)  # every queue of the vhost's topology, one request
            assert (status.messages, status.unacked) == (2, 1)
            assert (
                probe.current["dead.letters"].consumers == 1
            )  # (a quorum queue counts a basic.get as one too)
            await held.nack(requeue=True)
            await status_queue.purge()
            unreachable = QueueProbe(monitor_url, lambda: NOW, api_url="http://127.0.0.1:9", api_timeout=2)
            await unreachable.sample(connection)
            assert unreachable.source == "amqp"
            assert unreachable.current["monitor.status"].unacked is None
    finally:
        await admin.close()


async def test_the_days_parts_are_counted_per_wib_hour_within_the_scope(url: str) -> None:
    database, _, feed = await instance(url)
    monitor = Monitor(postgres_unit_of_work(database), lambda: NOW)
    try:
        for n in (1, 2):
            await monitor.record_submission(part("upt-3273-1", n))
        await monitor.record_submission(part("upt-1101-1", 3))
        store = PostgresMonitorStore(database)
        noon = NOW.astimezone(WIB).hour
        assert await store.parts_by_hour(scope_of_login("kanwil-32"), DAY) == [(noon, "on_time", 2, 3)]
        assert await store.parts_by_hour(scope_of_login("pusat"), DAY) == [(noon, "on_time", 3, 6)]
        assert await store.parts_by_hour(scope_of_login("dukcapil-3273"), DAY) == []
    finally:
        await feed.stop()
        await database.close()


async def test_a_desk_case_opens_takes_one_request_closes_and_every_read_of_it_is_kept(url: str) -> None:
    database, _, feed = await instance(url)
    monitor = Monitor(postgres_unit_of_work(database), lambda: NOW)
    store = PostgresMonitorStore(database)

    def case(state: str, **extra: Any) -> AdjudicationCaseChanged:
        return AdjudicationCaseChanged(
            message_id=f"case-{state}", produced_at=NOW, kabkota="3273", packet_id="p-grey", state=state,
            nik_masked="3273********0001", **extra,
        )  # fmt: skip

    try:
        await monitor.record_case(case("opened", full_name="Siti Aminah"))
        asked = await monitor.request_decision("andi", "3273", "p-grey", "unique", "faces differ at the eyes")
        assert asked == DecisionRequest("3273", "p-grey", "unique", "andi", "faces differ at the eyes")
        again = await monitor.request_decision("budi", "3273", "p-grey", "duplicate", "second opinion")
        assert again == Refusal("already_requested", 409)
        await monitor.record_case(case("decided", decision="unique", operator="andi", reason="faces differ"))
        (row,) = await store.cases(10)
        assert (row["requested_by"], row["decision"], row["operator"]) == ("andi", "unique", "andi")
        found = await store.case("3273", "p-grey", "andi")
        assert found is not None
        assert found["detail"]["full_name"] == "Siti Aminah"
        async with database.pool.acquire() as conn:
            assert await conn.fetchval("SELECT count(*) FROM case_reads WHERE username = 'andi'") == 1
            command = await conn.fetchval("SELECT routing_key FROM outbox WHERE exchange = 'commands'")
            assert command == "command.adjudication.decide"
            with pytest.raises(asyncpg.exceptions.RaiseError, match="append-only"):
                await conn.execute("DELETE FROM case_reads")
    finally:
        await feed.stop()
        await database.close()


@pytest.fixture(params=["fake", "postgres"])
async def pages_store(
    request: pytest.FixtureRequest, url: str
) -> AsyncIterator[tuple[MonitorStore, Monitor]]:
    """A store of the pages with the installation's units, and the use cases that write what it reads."""
    units = load_units(PROJECT_ROOT / "deploy" / "units")
    if request.param == "fake":
        fake = FakeMonitorStore()
        await fake.load_units(units)
        yield fake, Monitor(fake.unit_of_work(), lambda: NOW)
        return
    database = Database.of_service(url, "monitor")
    await database.open()
    try:
        store = PostgresMonitorStore(database)
        await store.load_units(units)
        yield store, Monitor(postgres_unit_of_work(database), lambda: NOW)
    finally:
        await database.close()


async def test_a_upts_day_and_parts_read_alike_from_both_stores(
    pages_store: tuple[MonitorStore, Monitor],
) -> None:
    store, monitor = pages_store
    for snapshot, n, accepted in ((1, 1, 10), (1, 2, 20), (2, 1, 30)):  # snapshot 2 supersedes snapshot 1
        event = part("upt-3273-1", n).model_copy(
            update={"message_id": f"p-{snapshot}-{n}", "snapshot": snapshot, "parts": 2, "accepted": accepted}
        )
        await monitor.record_submission(event)
    jabar = scope_of_login("kanwil-32")
    (row,) = await store.unit_rows(jabar, DAY, "upt-3273-1")
    assert (row["parts"], row["parts_received"], row["accepted"]) == (2, 1, 30)  # the latest snapshot alone
    assert await store.unit_rows(scope_of_login("kanwil-11"), DAY, "upt-3273-1") == []
    assert await store.unit_rows(jabar, DAY, "upt-1101-1") == []
    parts = await store.unit_parts("upt-3273-1", DAY)
    assert [(p["snapshot"], p["part"], p["parts"], p["accepted"], p["status"]) for p in parts] == [
        (1, 1, 2, 10, "accepted"),
        (1, 2, 2, 20, "accepted"),
        (2, 1, 2, 30, "accepted"),
    ]
    assert {p["received_at"] for p in parts} == {NOW}
    assert await store.unit_parts("upt-3273-1", DAY + timedelta(days=1)) == []


async def test_a_upts_days_read_in_one_go_match_its_days_read_one_by_one(
    pages_store: tuple[MonitorStore, Monitor],
) -> None:
    """The UPT page's history (one read over a range of days) gives each day's row exactly as the overview's
    read of that day does: days not sent included, a later snapshot superseding, the latest day first."""
    store, monitor = pages_store
    sent = {DAY: [(1, 1, 10), (1, 2, 20), (2, 1, 30)], DAY - timedelta(days=2): [(1, 1, 7)]}
    for day, parts in sent.items():
        for snapshot, n, accepted in parts:
            event = part("upt-3273-1", n).model_copy(
                update={"message_id": f"h-{day}-{snapshot}-{n}", "as_of": day, "snapshot": snapshot,
                        "parts": 2, "accepted": accepted}
            )  # fmt: skip
            await monitor.record_submission(event)
    first, last = DAY - timedelta(days=3), DAY
    history = await store.unit_history("upt-3273-1", first, last)
    assert [d for d, _ in history] == [DAY - timedelta(days=n) for n in range(4)]
    own = scope_of_login("upt-3273-1")
    for day, row in history:
        assert [row] == await store.unit_rows(own, day, "upt-3273-1")
    assert [r["accepted"] or 0 for _, r in history] == [30, 0, 7, 0]  # (not sent: no figure)

"""Monitor: scopes, live fan-out, and the web endpoints (with an in-memory store)."""

import asyncio
import dataclasses
import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest

from services.monitor import accounts, domain, web
from services.monitor import live as live_stream
from services.monitor.app import build_app
from services.monitor.config import Settings
from services.monitor.domain import alerts, cases, live, operations, pipeline, status, views
from services.monitor.domain import metrics as metrics_domain
from services.monitor.domain import runs as domain_runs
from services.monitor.domain.access import LoginPolicy, decide_login_gate, decide_same_origin
from services.monitor.domain.live import LiveEvent
from services.monitor.hub import Hub, Subscription
from services.monitor.probe import QueueProbe, samples_from_api
from services.monitor.scrape import MetricsScraper
from services.monitor.store import Account, DeadLetterSeen
from services.monitor.usecases import Monitor
from shared import messaging
from shared.contracts import (
    WIB,
    AdjudicationCaseChanged,
    AdjudicationDecision,
    CaseCandidate,
    ConsolidationRunReported,
    ReceiptStatus,
    RunLineReported,
    RunState,
    SnapshotState,
    SubmissionProcessed,
)
from shared.settings import PROJECT_ROOT
from shared.units import load_units
from tests.fakes import FakeMonitorStore
from tests.unit.harness import in_memory, publish_event

SETTINGS = Settings(amqp_url="amqp://svc-monitor:secret@localhost:5672/simpul", health_port=0, web_port=0)
UNITS = load_units(PROJECT_ROOT / "deploy" / "units")
DAY = date(2026, 11, 20)
NOW = datetime(2026, 11, 20, 5, tzinfo=UTC)
MORNING = datetime(2026, 11, 20, 1, tzinfo=UTC)  # 08:00 WIB


def test_scopes_follow_the_login() -> None:
    pusat, kanwil, upt = (domain.scope_of_login(u) for u in ("pusat", "kanwil-32", "upt-3273-1"))
    assert pusat.sees("upt-1101-1", "kanwil-11")
    assert kanwil.sees("upt-3273-1", "kanwil-32")
    assert not kanwil.sees("upt-1101-1", "kanwil-11")
    assert upt.sees("upt-3273-1", "kanwil-32")
    assert not upt.sees("upt-3273-2", "kanwil-32")


def test_a_unit_row_says_whether_the_day_is_complete() -> None:
    base = {"upt_id": "u", "name": "n", "kanwil_id": "k", "kanwil_name": "K"}
    assert domain.unit_row(base)["state"] == "missing"
    assert domain.unit_row(base | {"parts": 3, "parts_received": 2})["state"] == "partial"
    assert domain.unit_row(base | {"parts": 3, "parts_received": 3})["state"] == "complete"


async def test_the_hub_sends_each_client_only_what_it_may_see_and_drops_slow_ones() -> None:
    hub = Hub()
    kanwil = hub.subscribe(domain.scope_of_login("kanwil-32"))
    centre = hub.subscribe(domain.scope_of_login("pusat"))
    hub.publish(LiveEvent("unit", {"n": 1}, unit_id="upt-1101-1", kanwil_id="kanwil-11", id=1))
    hub.publish(LiveEvent("dead_letters", {"today": 1}, centre_only=True, id=2))
    hub.publish(LiveEvent("unit", {"n": 2}, unit_id="upt-3273-1", kanwil_id="kanwil-32", id=3))
    assert kanwil.queue.get_nowait().id == 3
    assert kanwil.queue.empty()
    assert centre.queue.qsize() == 3
    for n in range(1_001):
        hub.publish(LiveEvent("flood", id=10 + n))
    assert kanwil.dropped
    assert hub.clients == 0


def test_a_page_resumes_after_its_last_event_or_reloads_when_it_cannot() -> None:
    assert live.decide_resume(None, 1, 40) == live.Resume(40, reload=False)  # a new page: from now on
    assert live.decide_resume(35, 1, 40) == live.Resume(35, reload=False)
    assert live.decide_resume(40, 1, 40) == live.Resume(40, reload=False)
    assert live.decide_resume(10, 30, 40) == live.Resume(40, reload=True)  # what it missed was pruned
    assert live.decide_resume(29, 30, 40) == live.Resume(29, reload=False)  # nothing pruned that it needs
    assert live.decide_resume(90, 30, 40) == live.Resume(40, reload=True)  # an id from another log
    assert live.decide_resume(1, 1, 1 + live.MAX_REPLAY + 1) == live.Resume(live.MAX_REPLAY + 2, reload=True)


def test_passwords_are_hashed_and_checked() -> None:
    stored = accounts.hash_password("rahasia")
    assert stored.startswith("scrypt$")
    assert "rahasia" not in stored
    assert accounts.verify_password("rahasia", stored)
    assert not accounts.verify_password("salah", stored)
    assert not accounts.verify_password("rahasia", "garbage")


def status_event(upt: str, accepted: int, n: int = 1) -> SubmissionProcessed:
    return SubmissionProcessed(
        message_id=f"st-{upt}-{n}",
        produced_at=NOW,
        submission_id=f"sub-{n}",
        upt_id=upt,
        as_of=DAY,
        snapshot=1,
        part=n,
        parts=2,
        status=ReceiptStatus.ACCEPTED,
        received=accepted,
        accepted=accepted,
        rejected=0,
        warnings=0,
        snapshot_state=SnapshotState(parts=2, parts_received=n, complete=n == 2),
    )


def monitor_app(store: FakeMonitorStore, hub: Hub | None = None) -> Any:
    # The day's morning, before any UPT's deadline: no alert of the wall clock's hour joins the events tested.
    return build_app(
        SETTINGS,
        store=store,
        unit_of_work=store.unit_of_work(),
        live_log=store,
        hub=hub,
        clock=lambda: MORNING,
    )


async def next_event(sub: Subscription) -> LiveEvent:
    return await asyncio.wait_for(sub.queue.get(), 2)


async def test_a_status_event_updates_the_view_and_reaches_the_clients_that_see_the_unit() -> None:
    store, hub = FakeMonitorStore(), Hub()
    jabar = hub.subscribe(domain.scope_of_login("kanwil-32"))
    aceh = hub.subscribe(domain.scope_of_login("kanwil-11"))
    async with in_memory(monitor_app(store, hub)) as (broker, _spies):
        event = status_event("upt-3273-1", 480)
        for _ in range(2):  # a redelivered copy changes nothing and is shown once
            await publish_event(broker, event, user="svc-registry")
        pushed = await next_event(jabar)
    assert (pushed.kind, pushed.id) == ("unit", 1)
    assert pushed.payload["row"]["upt_id"] == "upt-3273-1"
    assert pushed.payload["row"]["accepted"] == 480
    assert pushed.payload["row"]["state"] == "partial"
    assert aceh.queue.empty()
    assert jabar.queue.empty()
    assert [e.kind for e in store.log] == ["unit"]


async def test_dead_letters_are_counted_from_their_headers_without_parsing_the_body() -> None:
    store = FakeMonitorStore()
    async with in_memory(monitor_app(store)) as (broker, _spies):
        await broker.publish(
            b"\x00not json",
            exchange=messaging.DEAD,
            routing_key="sdp.upt-3273-1.submission",
            message_id="d1",
            headers={"x-dead-reason": "MESSAGE_NOT_JSON", "x-original-message-id": "orig-1"},
            content_type="application/json",
        )
    assert [(d.message_id, d.reason) for d in store.dead.values()] == [("orig-1", "MESSAGE_NOT_JSON")]


async def with_logins() -> FakeMonitorStore:
    """The test units and a centre, a Kanwil and a UPT login (passwords pw-pusat, pw-jabar, pw-upt)."""
    store = FakeMonitorStore()
    await store.load_units(UNITS)
    await store.upsert_accounts(
        [
            Account("pusat", accounts.hash_password("pw-pusat"), "pusat"),
            Account("kanwil-32", accounts.hash_password("pw-jabar"), "kanwil-32"),
            Account("upt-3273-1", accounts.hash_password("pw-upt"), "upt-3273-1"),
        ]
    )
    return store


@pytest.fixture
async def store() -> FakeMonitorStore:
    store = await with_logins()
    await Monitor(store.unit_of_work(), lambda: NOW).record_submission(status_event("upt-3273-1", 480))
    return store


@pytest.fixture
def probe() -> QueueProbe:
    return QueueProbe("amqp://unused", lambda: NOW)  # never started: a test sets its samples


@pytest.fixture
def scraper() -> MetricsScraper:
    return MetricsScraper({}, lambda: NOW)  # never started: a test sets its figures


@pytest.fixture
async def client(store: FakeMonitorStore, probe: QueueProbe, scraper: MetricsScraper):  # type: ignore[no-untyped-def]
    monitor = Monitor(store.unit_of_work(), lambda: NOW)
    app = web.build_web(
        store, Hub(), store, probe, monitor, SETTINGS, clock=lambda: NOW, checks={}, stopping=asyncio.Event(),
        scraper=scraper,
    )  # fmt: skip
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://monitor") as c:
        yield c


ORIGIN = {"Origin": "http://monitor"}  # what a browser sends with a form posted from the monitor's own page


async def login(client: httpx.AsyncClient, user: str, password: str) -> httpx.Response:
    return await client.post("/login", data={"username": user, "password": password}, headers=ORIGIN)


async def test_the_view_needs_a_login(client: httpx.AsyncClient) -> None:
    assert (await client.get("/")).headers["location"] == "/login"
    assert (await client.get("/api/units")).status_code == 401
    assert (await client.get("/events")).status_code == 401


async def test_a_wrong_password_is_refused(client: httpx.AsyncClient) -> None:
    response = await login(client, "pusat", "nope")
    assert response.headers["location"] == "/login?failed=1"
    assert (await client.get("/api/units")).status_code == 401


async def test_the_centre_sees_every_unit_and_a_kanwil_only_its_own(client: httpx.AsyncClient) -> None:
    await login(client, "pusat", "pw-pusat")
    everything = (await client.get("/api/units", params={"day": DAY.isoformat()})).json()
    assert len(everything["units"]) == len(UNITS.upts)
    assert everything["dead_letters_today"] == 0
    await client.post("/logout", headers=ORIGIN)
    assert (await client.get("/api/units")).status_code == 401

    await login(client, "kanwil-32", "pw-jabar")
    jabar = (await client.get("/api/units", params={"day": DAY.isoformat()})).json()
    assert {u["kanwil_id"] for u in jabar["units"]} == {"kanwil-32"}
    assert jabar["scope"] == {"role": "kanwil", "unit": "kanwil-32", "label": "Kanwil Ditjenpas Jawa Barat"}
    assert len(jabar["units"]) == sum(1 for u in UNITS.upts if u.kanwil_id == "kanwil-32")
    assert jabar["dead_letters_today"] is None  # only the centre sees the broker's dead letters
    bandung = next(u for u in jabar["units"] if u["upt_id"] == "upt-3273-1")
    assert bandung["accepted"] == 480


async def test_pages_carry_a_strict_content_security_policy(client: httpx.AsyncClient) -> None:
    page = await client.get("/login")
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert '<script src="/static/login.js">' in page.text
    assert "http" not in page.text.split("<body")[1]


def capture_event(n: int, packet: str, *moves: tuple[str, str], refused: tuple[str, ...] = ()) -> Any:
    from shared.contracts import PacketStatusChanged, StatusMove

    return PacketStatusChanged(
        message_id=f"ek-{n}",
        produced_at=NOW,
        packet_id=packet,
        kabkota="3273",
        status=moves[-1][1] if moves else None,
        refused=list(refused),
        moves=[StatusMove(from_status=a, to_status=b, at=NOW) for a, b in moves],
    )


async def test_capture_moves_build_each_offices_pipeline_and_reach_only_those_who_see_it() -> None:
    store, hub = FakeMonitorStore(), Hub()
    bandung = hub.subscribe(domain.scope_of_login("dukcapil-3273"))
    kanwil = hub.subscribe(domain.scope_of_login("kanwil-32"))
    events = [
        capture_event(1, "p1", ("UNREGISTERED", "BIO_CAPTURED")),
        capture_event(
            2,
            "p1",
            ("BIO_CAPTURED", "PROCESSING"),
            ("PROCESSING", "SENT_FOR_ENROLLMENT"),
            ("SENT_FOR_ENROLLMENT", "RECEIVED_AT_CENTRAL"),
            ("RECEIVED_AT_CENTRAL", "SENT_FOR_DEDUP"),
        ),
        capture_event(3, "p2", ("UNREGISTERED", "BIO_CAPTURED")),
        capture_event(4, "p3", refused=("ILLEGAL_STATUS_MOVE",)),
    ]
    async with in_memory(monitor_app(store, hub)) as (broker, _):
        for event in events:
            await publish_event(broker, event, user="svc-registry")
        seen = [await next_event(bandung) for _ in events]
    last = seen[-1]
    assert last.kind == "ektp"
    row = last.payload["row"]
    assert (row["regional"], row["central"], row["refused_messages"]) == (1, 1, 1)
    assert row["statuses"] == {"SENT_FOR_DEDUP": 1, "BIO_CAPTURED": 1}
    assert kanwil.queue.empty()  # a Ditjenpas Kanwil does not watch civil registration


async def test_a_dukcapil_login_sees_its_own_pipeline_only() -> None:
    store = FakeMonitorStore()
    await store.load_units(UNITS)
    scope = domain.scope_of_login("dukcapil-3273")
    offices = await store.office_rows(scope, DAY)
    assert [o["unit_id"] for o, _, _ in offices] == ["dukcapil-3273"]
    assert await store.office_rows(domain.scope_of_login("kanwil-32"), DAY) == []
    assert len(await store.office_rows(domain.scope_of_login("pusat"), DAY)) == 514
    assert await store.unit_rows(scope, DAY) == []


async def test_a_reconnecting_page_gets_what_it_missed_then_the_live_events_each_once() -> None:
    store, hub = FakeMonitorStore(), Hub()
    monitor = Monitor(store.unit_of_work(), lambda: NOW)
    await store.load_units(UNITS)
    for n in (1, 2):
        await monitor.record_submission(status_event("upt-3273-1", 100 * n, n))
    await monitor.record_submission(status_event("upt-1101-1", 5))  # another Kanwil's: not for this page
    stopping = asyncio.Event()
    jabar = domain.scope_of_login("kanwil-32")
    frames = live_stream.stream(store, hub, jabar, 1, heartbeat=5, stopping=stopping)
    assert await anext(frames) == "retry: 2000\n\n"
    replayed = await anext(frames)  # what followed event 1: event 2 (event 3 is not this page's)
    assert replayed.startswith("id: 2\nevent: unit\n")
    # The live feed hands the hub events the log replay already covered, then a new one: only that is sent.
    waiting = asyncio.ensure_future(anext(frames))
    await asyncio.sleep(0)
    for event in store.log:
        hub.publish(event)
    await monitor.record_submission(status_event("upt-3273-1", 50, 3))
    hub.publish(store.log[-1])
    assert (await asyncio.wait_for(waiting, 1)).startswith("id: 4\nevent: unit\n")
    stopping.set()
    hub.publish(LiveEvent("flood", id=5))
    assert [f async for f in frames] == []
    assert hub.clients == 0


def test_logins_back_off_after_repeated_failures() -> None:
    policy = LoginPolicy(max_failures=3, window=timedelta(minutes=15), lockout=timedelta(minutes=15))
    failed = [NOW - timedelta(minutes=m) for m in (10, 5, 1)]
    assert decide_login_gate(failed[:2], NOW, policy).open
    locked = decide_login_gate(failed, NOW, policy)
    assert (locked.open, locked.retry_after_s) == (False, 14 * 60)
    assert decide_login_gate(failed, NOW + timedelta(minutes=14, seconds=1), policy).open
    assert decide_login_gate([NOW - timedelta(minutes=m) for m in (40, 30, 20)], NOW, policy).open  # old ones


def test_only_the_monitors_own_origin_may_post() -> None:
    own = ["http://monitor"]
    assert decide_same_origin("GET", None, None, own)
    assert decide_same_origin("POST", "http://monitor", None, own)
    assert decide_same_origin("POST", None, "http://monitor/login?failed=1", own)
    assert not decide_same_origin("POST", None, None, own)  # says nothing: refused
    assert not decide_same_origin("POST", "https://evil.example", "http://monitor/", own)
    assert not decide_same_origin("POST", "null", None, own)
    assert not decide_same_origin("DELETE", "http://monitor.evil.example", None, own)


async def test_a_post_from_another_origin_is_refused(client: httpx.AsyncClient) -> None:
    assert (
        await client.post("/login", data={"username": "pusat", "password": "pw-pusat"})
    ).status_code == 403
    forged = await client.post(
        "/login",
        data={"username": "pusat", "password": "pw-pusat"},
        headers={"Origin": "https://evil.example"},
    )
    assert forged.status_code == 403
    assert (await client.get("/api/units")).status_code == 401  # no session was made
    await login(client, "pusat", "pw-pusat")
    assert (await client.post("/logout", headers={"Origin": "https://evil.example"})).status_code == 403
    assert (await client.get("/api/units")).status_code == 200  # still logged in
    assert (await client.post("/logout", headers=ORIGIN)).status_code == 303
    assert (await client.get("/api/units")).status_code == 401


async def test_after_five_failures_even_the_right_password_waits(client: httpx.AsyncClient) -> None:
    for _ in range(5):
        assert (await login(client, "kanwil-32", "guess")).headers["location"] == "/login?failed=1"
    locked = await login(client, "kanwil-32", "pw-jabar")
    assert locked.headers["location"].startswith("/login?locked=")
    assert (await client.get("/api/units")).status_code == 401


async def test_a_kanwil_gets_403_for_another_kanwils_upt_and_its_csv(client: httpx.AsyncClient) -> None:
    await login(client, "kanwil-32", "pw-jabar")
    day = {"day": DAY.isoformat()}
    assert (await client.get("/api/units/upt-3273-1", params=day)).json()["accepted"] == 480
    assert (await client.get("/api/units/upt-1101-1", params=day)).status_code == 403
    assert (await client.get("/units.csv", params=day | {"upt": "upt-1101-1"})).status_code == 403
    table = (await client.get("/units.csv", params=day)).text.splitlines()
    assert table[0].startswith("upt_id,name,kanwil_id")
    assert {line.split(",")[2] for line in table[1:]} == {"kanwil-32"}
    assert len(table) - 1 == sum(1 for u in UNITS.upts if u.kanwil_id == "kanwil-32")


async def test_a_upt_login_sees_only_its_own_upt(client: httpx.AsyncClient) -> None:
    await login(client, "upt-3273-1", "pw-upt")
    view = (await client.get("/api/units", params={"day": DAY.isoformat()})).json()
    assert [u["upt_id"] for u in view["units"]] == ["upt-3273-1"]
    assert view["offices"] == []
    assert (await client.get("/api/units/upt-3273-2")).status_code == 403


async def test_accounts_are_created_reset_and_disabled_from_the_command_line(
    client: httpx.AsyncClient,
) -> None:
    store = FakeMonitorStore()

    async def cli(*argv: str, password: str | None = None) -> str:
        return await accounts.manage(store, accounts.parser().parse_args(list(argv)), UNITS, password)

    made = await cli("create", "andi", "--scope", "kanwil-32")
    assert made.startswith("andi created for kanwil-32; password: ")
    first = made.rsplit(" ", 1)[1]
    assert accounts.verify_password(first, store.accounts["andi"].password_hash)
    with pytest.raises(accounts.AccountError, match="exists"):
        await cli("create", "andi", "--scope", "kanwil-32")
    with pytest.raises(accounts.AccountError, match="not pusat"):
        await cli("create", "budi", "--scope", "kanwil-99")
    await store.create_session("t", "andi", NOW + timedelta(hours=1))
    assert "sessions ended" in await cli("reset", "andi", password="a-new-password")
    assert accounts.verify_password("a-new-password", store.accounts["andi"].password_hash)
    assert await store.session_user("t", NOW) is None
    await store.create_session("t2", "andi", NOW + timedelta(hours=1))
    await cli("disable", "andi")
    assert await store.session_user("t2", NOW) is None
    assert await cli("list") == "andi\tkanwil-32\tdisabled"
    await cli("enable", "andi")
    with pytest.raises(accounts.AccountError, match="no such login"):
        await cli("disable", "nobody")


async def test_a_disabled_login_is_logged_out_and_cannot_log_in(
    client: httpx.AsyncClient, store: FakeMonitorStore
) -> None:
    await login(client, "kanwil-32", "pw-jabar")
    assert (await client.get("/api/units")).status_code == 200
    await store.set_disabled("kanwil-32", True)
    assert (await client.get("/api/units")).status_code == 401
    assert (await login(client, "kanwil-32", "pw-jabar")).headers["location"] == "/login?failed=1"
    await store.set_disabled("kanwil-32", False)
    assert (await login(client, "kanwil-32", "pw-jabar")).headers["location"] == "/"


def test_the_pipeline_counts_both_critical_times_and_lists_the_stuck_oldest_first() -> None:
    def at(hours: float) -> datetime:
        return NOW - timedelta(hours=hours)

    def capture(packet: str, status: str, **times: float) -> pipeline.CaptureTimes:
        moments = {k: at(v) for k, v in times.items()}
        changed = min(moments.values(), default=NOW)
        sent, received, verdict = (moments.get(k) for k in ("sent", "received", "verdict"))
        return pipeline.CaptureTimes(
            "3273", packet, status, changed, sent, received, verdict, None, f"3273********000{packet}"
        )

    summary = pipeline.summarise(
        [
            capture("a", "SENT_FOR_ENROLLMENT", sent=0.5),  # waiting I, < 1 h
            capture("b", "SENT_FOR_ENROLLMENT", sent=30),  # waiting I, 1-3 days: stuck
            capture("c", "SENT_FOR_DEDUP", sent=50, received=49),  # waiting II since 49 h: stuck, older
            capture("d", "PRINT_READY_RECORD", sent=10, received=7, verdict=6.5),  # took 3 h, then 0.5 h
            capture(
                "e", "ADJUDICATE_RECORD", sent=40, received=39, verdict=38
            ),  # II ended 38 h ago: not recent
        ],
        NOW,
        stuck_after=timedelta(hours=24),
        recent=timedelta(hours=24),
    )
    assert summary.waiting_i == [1, 0, 0, 1, 0]
    assert summary.waiting_ii == [0, 0, 0, 1, 0]
    assert summary.took_i == [0, 1, 0, 0, 0]  # d: 3 h (e's receipt is older than a day)
    assert summary.took_ii == [1, 0, 0, 0, 0]  # d: half an hour
    assert [(s.packet_id, s.phase) for s in summary.stuck] == [("c", "II"), ("b", "I")]
    assert summary.stuck[0].reason == "menunggu keputusan pusat"
    assert summary.stuck[0].nik_masked == "3273********000c"  # masked, as the registry sent it
    assert '"nik_masked": "3273********000c"' in json.dumps(summary.as_dict())
    assert (summary.adjudication_backlog, summary.print_backlog, summary.stuck_total) == (1, 1, 2)
    assert list(summary.statuses.items()) == [  # the funnel, in the order a capture passes the statuses
        ("SENT_FOR_ENROLLMENT", 2), ("SENT_FOR_DEDUP", 1), ("ADJUDICATE_RECORD", 1), ("PRINT_READY_RECORD", 1),
    ]  # fmt: skip


def test_a_capture_keeps_the_first_time_it_reached_each_milestone() -> None:
    moves = [("PROCESSING", "SENT_FOR_ENROLLMENT"), ("SENT_FOR_ENROLLMENT", "RECEIVED_AT_CENTRAL"),
             ("RECEIVED_AT_CENTRAL", "PACKET_RETRY"), ("PACKET_RETRY", "RECEIVED_AT_CENTRAL")]  # fmt: skip
    event = capture_event(7, "p7", *moves)
    event = event.model_copy(update={"moves": [m.model_copy(update={"at": NOW + timedelta(minutes=i)})
                                               for i, m in enumerate(event.moves)]})  # fmt: skip
    seen = status.decide_capture(event).capture
    assert seen is not None
    assert (seen.sent_at, seen.received_at, seen.verdict_at) == (NOW, NOW + timedelta(minutes=1), None)


async def test_the_pipeline_is_the_centres_and_each_offices_own(
    client: httpx.AsyncClient, store: FakeMonitorStore
) -> None:
    monitor = Monitor(store.unit_of_work(), lambda: NOW)
    await monitor.record_capture_change(capture_event(1, "p1", ("PROCESSING", "SENT_FOR_ENROLLMENT")))
    await store.upsert_accounts(
        [Account("dukcapil-1101", accounts.hash_password("pw-aceh"), "dukcapil-1101")]
    )
    await login(client, "pusat", "pw-pusat")
    assert (await client.get("/api/pipeline")).json()["statuses"] == {"SENT_FOR_ENROLLMENT": 1}
    await client.post("/logout", headers=ORIGIN)
    await login(client, "dukcapil-1101", "pw-aceh")
    assert (await client.get("/api/pipeline")).json()["statuses"] == {}  # Bandung's capture is not Aceh's
    await client.post("/logout", headers=ORIGIN)
    await login(client, "kanwil-32", "pw-jabar")
    assert (await client.get("/api/pipeline")).status_code == 403


def run_event(state: str, steps_done: int, n: int, **extra: Any) -> ConsolidationRunReported:
    return ConsolidationRunReported(
        message_id=f"run-{n}", produced_at=NOW + timedelta(seconds=n), run_id="run-1", day=DAY,
        state=RunState(state), requested_by="operator", steps_done=steps_done, steps_total=5, **extra,
    )  # fmt: skip


def line_event(upt: str, accepted: int) -> RunLineReported:
    figures = dict.fromkeys(domain_runs.FIGURES, 0) | {
        "accepted": accepted,
        "inmates": accepted,
        "overstaying": 1,
    }
    figures["without_ektp"] = 3
    breakdowns = {
        "overstaying_by_register": {"A II": 1},
        "without_ektp_by_reason": {"no_nik": 1, "nik_not_in_population": 2},
        "without_ektp_by_nik_kabkota": {"-": 1, "3273": 2},
        "something_else": {"x": 5},  # not a breakdown the monitor knows: not kept
    }
    return RunLineReported(
        message_id=f"line-{upt}", produced_at=NOW, run_id="run-1", day=DAY, upt_id=upt, sent=True, complete=True,
        lateness="on_time", snapshot=1, applied="applied", figures=figures, breakdowns=breakdowns,
    )  # fmt: skip


async def test_a_run_is_followed_live_and_its_report_lines_are_shown_within_each_scope(
    client: httpx.AsyncClient, store: FakeMonitorStore
) -> None:
    monitor = Monitor(store.unit_of_work(), lambda: NOW)
    await monitor.record_run(run_event("started", 0, 1))
    await monitor.record_run(run_event("finished", 5, 3, summary={"accepted": 700}))
    await monitor.record_run(run_event("progress", 2, 2))  # overtaken: it changes nothing and is not shown
    for upt, accepted in (("upt-3273-1", 300), ("upt-3273-2", 200), ("upt-1101-1", 200)):
        await monitor.record_run_line(line_event(upt, accepted))
    assert [(e.kind, e.payload["state"]) for e in store.log if e.kind == "run"] == [
        ("run", "started"),
        ("run", "finished"),
    ]
    day = {"day": DAY.isoformat()}
    await login(client, "kanwil-32", "pw-jabar")
    assert [r["state"] for r in (await client.get("/api/runs", params=day)).json()["runs"]] == ["finished"]
    report = (await client.get("/api/runs/run-1")).json()
    assert [line["upt_id"] for line in report["lines"]] == ["upt-3273-1", "upt-3273-2"]
    assert (report["totals"]["accepted"], report["totals"]["upts"], report["summary"]) == (500, 2, None)
    csv_lines = (await client.get("/runs/run-1.csv")).text.splitlines()
    assert csv_lines[0].startswith("upt_id,name,kanwil_id")
    assert [line.split(",")[0] for line in csv_lines[1:]] == ["upt-3273-1", "upt-3273-2"]
    assert (await client.get("/api/runs/run-unknown")).status_code == 403
    counted = report["breakdowns"]  # the lists behind the Kanwil's two lines, counted
    assert counted["overstaying_by_register"] == [{"key": "A II", "label": "A II", "count": 2}]
    assert counted["without_ektp_by_reason"] == [
        {"key": "nik_not_in_population", "label": "nik_not_in_population", "count": 4},
        {"key": "no_nik", "label": "no_nik", "count": 2},
    ]
    assert counted["without_ektp_by_nik_kabkota"] == [
        {"key": "3273", "label": "Kota Bandung", "count": 4}, {"key": "-", "label": "-", "count": 2},
    ]  # fmt: skip
    assert counted["without_ektp_by_upt_kabkota"] == [{"key": "3273", "label": "Kota Bandung", "count": 6}]
    assert "something_else" not in counted
    rows = (await client.get("/runs/run-1/breakdowns.csv")).text.splitlines()
    assert rows[0] == "breakdown,key,label,count"
    assert "overstaying_by_register,A II,A II,2" in rows
    assert "without_ektp_by_upt_kabkota,3273,Kota Bandung,6" in rows
    assert (await client.get("/runs/run-unknown/breakdowns.csv")).status_code == 403
    # the printable page: the same lines and counts, who ran it and who printed it, its style allowed by hash
    printed = await client.get("/runs/run-1/print")
    assert printed.headers["content-type"] == "text/html; charset=utf-8"
    assert printed.headers["content-security-policy"].startswith("default-src 'none'; style-src 'sha256-")
    assert printed.headers["x-content-type-options"] == "nosniff"
    text = printed.text
    assert "<h1>Laporan Konsolidasi Harian SDP</h1>" in text
    assert "<dd>run-1</dd>" in text
    assert "<dt>Dijalankan oleh</dt><dd>operator</dd>" in text
    assert "<dt>Dicetak oleh</dt><dd>kanwil-32</dd>" in text
    assert "(upt-3273-1)" in text
    assert "(upt-3273-2)" in text
    assert "upt-1101-1" not in text
    assert "<td>NIK tidak ada di data kependudukan</td><td class=n>4</td>" in text
    assert "<td>Kota Bandung (3273)</td><td class=n>6</td>" in text
    assert "<script" not in text
    assert "http" not in text.split("<body>")[1]
    assert (await client.get("/runs/run-unknown/print")).status_code == 403
    await client.post("/logout", headers=ORIGIN)
    await login(client, "pusat", "pw-pusat")
    assert "(upt-1101-1)" in (await client.get("/runs/run-1/print")).text
    report = (await client.get("/api/runs/run-1")).json()
    assert (report["totals"]["accepted"], report["summary"]) == (700, {"accepted": 700})
    assert report["breakdowns"]["overstaying_by_register"][0]["count"] == 3


async def test_the_run_trend_shows_each_days_last_finished_run_within_the_scope(
    client: httpx.AsyncClient, store: FakeMonitorStore
) -> None:
    monitor = Monitor(store.unit_of_work(), lambda: NOW)
    for n, (run_id, day, state) in enumerate(
        [("old", DAY - timedelta(days=40), "finished"), ("d1", DAY - timedelta(days=1), "finished"),
         ("d1-again", DAY - timedelta(days=1), "finished"), ("d0", DAY, "finished"), ("d0-late", DAY, "failed")]
    ):  # fmt: skip
        event = run_event(state, 5 if state == "finished" else 2, 10 + n)
        await monitor.record_run(
            event.model_copy(update={"run_id": run_id, "day": day, "message_id": run_id})
        )
        for upt, accepted in (("upt-3273-1", 100 + n), ("upt-1101-1", 1_000)):
            line = line_event(upt, accepted)
            await monitor.record_run_line(
                line.model_copy(update={"run_id": run_id, "message_id": f"{run_id}-{upt}"})
            )
    await login(client, "kanwil-32", "pw-jabar")
    days = (await client.get("/api/runs/trend")).json()["days"]
    assert [(d["day"], d["run_id"], d["inmates"], d["upts_sent"]) for d in days] == [
        ((DAY - timedelta(days=1)).isoformat(), "d1-again", 102, 1),  # the later of the day's two runs
        (DAY.isoformat(), "d0", 103, 1),  # the failed run of the day is no figure
    ]
    assert len((await client.get("/api/runs/trend", params={"days": "60"})).json()["days"]) == 3
    for bad in ("0", "367", "-1", "abc", "9" * 50):
        assert (await client.get("/api/runs/trend", params={"days": bad})).status_code == 400


def test_queues_and_services_are_judged_from_two_samples() -> None:
    def sample(name: str, messages: int, consumers: int) -> operations.QueueSample:
        return operations.QueueSample(name, messages, consumers, NOW)

    assert operations.decide_queue(
        sample("dedup.sdp", 5, 0), sample("dedup.sdp", 2, 0), "dedup.sdp", 100
    ).state == ("growing_without_consumer")
    assert operations.decide_queue(
        sample("dedup.sdp", 2, 0), sample("dedup.sdp", 2, 0), "dedup.sdp", 100
    ).state == ("no_consumer")
    assert operations.decide_queue(sample("dedup.sdp", 500, 1), None, "dedup.sdp", 100).state == "backlog"
    assert operations.decide_queue(sample("dead.letters", 9, 0), None, "dead.letters", 100).state == "ok"
    assert operations.decide_queue(None, None, "registry.sdp", 100).state == "missing"
    queues = [
        operations.decide_queue(sample("registry.sdp", 40, 1), None, "registry.sdp", 100),
        operations.decide_queue(sample("dedup.sdp", 0, 1), None, "dedup.sdp", 100),
        operations.decide_queue(sample("consolidator.sdp", 0, 0), None, "consolidator.sdp", 100),
    ]
    seen = {"registry": NOW - timedelta(minutes=30), "dedup": NOW - timedelta(hours=5)}
    states = {s.name: s for s in operations.decide_services(queues, seen, NOW, timedelta(minutes=10))}
    assert states["registry"].quiet  # 40 messages wait and it said nothing for half an hour
    assert not states["dedup"].quiet  # idle: nothing waits for it
    assert states["consolidator"].quiet  # no consumer


async def test_the_operations_view_is_the_centres_with_queues_services_and_dead_letters(
    client: httpx.AsyncClient, store: FakeMonitorStore, probe: QueueProbe
) -> None:
    probe.current = {"registry.sdp": operations.QueueSample("registry.sdp", 3, 0, NOW)}
    probe.previous = {"registry.sdp": operations.QueueSample("registry.sdp", 1, 0, NOW)}
    monitor = Monitor(store.unit_of_work(), lambda: NOW)
    letter = DeadLetterSeen(
        "m1", "MESSAGE_NOT_JSON", None, "registry", "registry.sdp", "sdp.upt-1.submission", "upt-1"
    )
    await monitor.record_dead_letter(letter)
    await monitor.heard_from("registry")
    await login(client, "kanwil-32", "pw-jabar")
    assert (await client.get("/api/operations")).status_code == 403
    await client.post("/logout", headers=ORIGIN)
    await login(client, "pusat", "pw-pusat")
    ops = (await client.get("/api/operations")).json()
    queue = next(q for q in ops["queues"] if q["name"] == "registry.sdp")
    assert (queue["state"], queue["growth"]) == ("growing_without_consumer", 2)
    assert next(q for q in ops["queues"] if q["name"] == "dedup.sdp")["state"] == "missing"
    registry = next(s for s in ops["services"] if s["name"] == "registry")
    assert (registry["quiet"], registry["last_message_at"]) == (True, NOW.isoformat())
    assert [(d["reason"], d["routing_key"]) for d in ops["dead_letters"]] == [
        ("MESSAGE_NOT_JSON", "sdp.upt-1.submission")
    ]


def test_alerts_open_for_each_condition_and_keep_their_key() -> None:
    at_15 = datetime(2026, 11, 20, 8, tzinfo=UTC)  # 15:00 WIB: past the 14:00 deadline
    quiet = operations.ServiceState("dedup", consuming=False, waiting=3, last_message_at=None, quiet=True)
    unconsumed = operations.QueueState("dedup.sdp", "dedup", 30, 0, "growing_without_consumer", 5)
    watched = alerts.Watched(
        now=at_15,
        units=[
            alerts.UnitDay("upt-3273-1", "kanwil-32", "Lapas Bandung", sent=False),
            alerts.UnitDay("upt-1101-1", "kanwil-11", "Lapas Aceh", sent=True, overstaying=2),
        ],
        stuck_by_office={"dukcapil-3273": 11, "dukcapil-1101": 3},
        newly_stuck_by_office={"dukcapil-3273": 6, "dukcapil-1101": 3},
        dead_letters_recent=21,
        services=[quiet],
        queues=[unconsumed],
    )
    found = {a.kind: a for a in alerts.decide_alerts(watched, alerts.AlertPolicy())}
    assert set(found) == {
        "upt_silent", "overstaying", "stuck_captures", "stuck_spike", "dead_letters", "service_quiet",
        "queue_unconsumed",
    }  # fmt: skip
    assert (found["stuck_spike"].key, found["stuck_spike"].severity) == (
        "stuck_spike:dukcapil-3273",
        "critical",
    )
    assert (found["upt_silent"].key, found["upt_silent"].kanwil_id) == (
        "upt_silent:upt-3273-1:2026-11-20",
        "kanwil-32",
    )
    assert found["stuck_captures"].unit_id == "dukcapil-3273"  # 3 stuck in Aceh is under the threshold
    assert found["dead_letters"].centre_only
    assert found["queue_unconsumed"].centre_only
    before_deadline = alerts.Watched(now=datetime(2026, 11, 20, 6, tzinfo=UTC), units=watched.units)
    assert [a.kind for a in alerts.decide_alerts(before_deadline, alerts.AlertPolicy())] == ["overstaying"]
    opening, closing = alerts.decide_changes(
        {"upt_silent:upt-3273-1:2026-11-20", "gone"}, list(found.values())
    )
    assert closing == ["gone"]
    assert "upt_silent" not in {a.kind for a in opening}


async def test_an_alert_opens_once_reaches_its_scope_and_closes_when_its_condition_passes(
    client: httpx.AsyncClient, store: FakeMonitorStore
) -> None:
    monitor = Monitor(store.unit_of_work(), lambda: NOW)
    silent = alerts.UnitDay("upt-3273-1", "kanwil-32", "Lapas Bandung", sent=False)
    late = datetime(2026, 11, 20, 8, tzinfo=UTC)
    assert await monitor.watch(alerts.Watched(now=late, units=[silent]), alerts.AlertPolicy()) == (1, 0)
    assert await monitor.watch(alerts.Watched(now=late, units=[silent]), alerts.AlertPolicy()) == (0, 0)
    assert [m.routing_key for m in store.sent] == ["status.alert.upt_silent"]
    await login(client, "kanwil-32", "pw-jabar")
    assert [a["kind"] for a in (await client.get("/api/alerts")).json()["alerts"]] == ["upt_silent"]
    await client.post("/logout", headers=ORIGIN)
    await login(client, "upt-3273-1", "pw-upt")
    assert len((await client.get("/api/alerts")).json()["alerts"]) == 1
    sent = dataclasses.replace(silent, sent=True)
    assert await monitor.watch(alerts.Watched(now=late, units=[sent]), alerts.AlertPolicy()) == (0, 1)
    assert (await client.get("/api/alerts")).json()["alerts"] == []
    assert [e.payload["state"] for e in store.log if e.kind == "alert"] == ["opened", "closed"]


async def test_the_days_parts_per_hour_are_counted_within_the_scope(
    client: httpx.AsyncClient, store: FakeMonitorStore
) -> None:
    monitor = Monitor(store.unit_of_work(), lambda: NOW)
    await monitor.record_submission(
        status_event("upt-1101-1", 7, 1)
    )  # Aceh's: not for the Kanwil of Jawa Barat
    await login(client, "kanwil-32", "pw-jabar")
    hours = (await client.get("/api/timeline", params={"day": DAY.isoformat()})).json()
    noon = NOW.astimezone(WIB).hour  # the fixture's part arrived at NOW (12:00 WIB)
    assert hours["on_time"][noon] == 1
    assert hours["accepted"][noon] == 480
    assert sum(hours["on_time"]) + sum(hours["after_10"]) + sum(hours["after_14"]) == 1


def opened_case(packet: str = "p-grey", **extra: Any) -> AdjudicationCaseChanged:
    candidate = CaseCandidate(
        person_id=7, nik_masked="3273********0007", llr=4.2, modalities=1, iris_hd=[None, None],
        face_cosine=0.71, finger_cosines=[None] * 10,
    )  # fmt: skip
    return AdjudicationCaseChanged(
        message_id=f"case-{packet}-{extra.get('state', 'opened')}", produced_at=NOW, kabkota="3273", packet_id=packet,
        nik_masked="3273********0001", full_name="Siti Aminah", sex="F", candidates=[candidate],
        **({"state": "opened"} | extra),
    )  # fmt: skip


def code_of(found: cases.DecisionRequest | cases.Refusal) -> str:
    assert isinstance(found, cases.Refusal)
    return found.code


def test_a_decision_needs_a_known_open_case_a_choice_and_a_reason() -> None:
    open_ = cases.CaseState(known=True, decided=False)
    ok = cases.decide_request(open_, "3273", "p", "unique", " faces differ ", "andi")
    assert ok == cases.DecisionRequest("3273", "p", "unique", "andi", "faces differ")
    assert cases.decide_request(
        cases.CaseState(False, False), "3273", "p", "unique", "reason", "a"
    ) == cases.Refusal("unknown_case", 404)
    decided = cases.CaseState(True, True)
    assert code_of(cases.decide_request(decided, "3273", "p", "unique", "reason", "a")) == "already_decided"
    requested = cases.CaseState(True, False, requested="duplicate")
    assert (
        code_of(cases.decide_request(requested, "3273", "p", "unique", "reason", "a")) == "already_requested"
    )
    assert code_of(cases.decide_request(open_, "3273", "p", "maybe", "reason", "a")) == "bad_decision"
    assert code_of(cases.decide_request(open_, "3273", "p", "unique", "  ", "a")) == "reason_required"


async def test_the_desk_sends_the_operators_decision_and_shows_the_outcome_dedup_applied(
    client: httpx.AsyncClient, store: FakeMonitorStore
) -> None:
    monitor = Monitor(store.unit_of_work(), lambda: NOW)
    await monitor.record_case(opened_case())
    path = "/api/adjudications/3273/p-grey"
    await login(client, "kanwil-32", "pw-jabar")
    assert (await client.get("/api/adjudications")).status_code == 403
    assert (
        await client.post(path + "/decision", json={"decision": "unique"}, headers=ORIGIN)
    ).status_code == 403
    await client.post("/logout", headers=ORIGIN)
    await login(client, "pusat", "pw-pusat")
    assert [c["packet_id"] for c in (await client.get("/api/adjudications")).json()["cases"]] == ["p-grey"]
    case = (await client.get(path)).json()
    assert case["detail"]["candidates"][0]["face_cosine"] == 0.71
    assert store.case_reads == [("pusat", "3273", "p-grey")]  # opening a case is a recorded read
    refused = await client.post(path + "/decision", json={"decision": "unique", "reason": ""}, headers=ORIGIN)
    assert (refused.status_code, refused.json()) == (422, {"error": "reason_required"})
    asked = await client.post(
        path + "/decision", json={"decision": "duplicate", "reason": "same face, one finger"}, headers=ORIGIN
    )
    assert (asked.status_code, asked.json()) == (202, {"requested": "duplicate"})
    (command,) = [m for m in store.sent if m.routing_key == "command.adjudication.decide"]
    assert isinstance(command.message, AdjudicationDecision)
    assert (command.exchange, command.message.operator, command.message.decision) == (
        "commands",
        "pusat",
        "duplicate",
    )
    again = await client.post(
        path + "/decision", json={"decision": "unique", "reason": "other view"}, headers=ORIGIN
    )
    assert again.status_code == 409
    await monitor.record_case(
        opened_case(state="decided", decision="duplicate", operator="pusat", reason="same face")
    )
    shown = (await client.get("/api/adjudications")).json()["cases"][0]
    assert (shown["requested"], shown["decision"], shown["operator"]) == ("duplicate", "duplicate", "pusat")
    assert [e.payload["state"] for e in store.log if e.kind == "case"] == ["opened", "decided"]
    story = (await client.get(path)).json()["history"]  # (the reads are at the real time, the rest at NOW)
    assert [(h["step"], h["who"]) for h in story] == [
        ("opened", "dedup"),
        ("requested", "pusat"),
        ("decided", "pusat"),
        ("read", "pusat"),
        ("read", "pusat"),
    ]
    assert [h.get("reason") for h in story if h["step"] == "decided"] == ["same face"]
    assert [h["at"] for h in story] == sorted(h["at"] for h in story)


async def test_the_operations_view_carries_the_figures_for_the_centre_only(
    client: httpx.AsyncClient, scraper: MetricsScraper
) -> None:
    from tests.unit.test_monitor_metrics import exposition

    scraper.figures, scraper.scraped_at = [metrics_domain.summarise("dedup", exposition())], NOW
    await login(client, "pusat", "pw-pusat")
    ops = (await client.get("/api/operations")).json()
    assert ops["metrics"][0]["service"] == "dedup"
    assert ops["metrics"][0]["gallery_size"] == 1_000_000
    assert ops["metrics_at"] == NOW.isoformat()
    await client.post("/logout", headers=ORIGIN)
    await login(client, "kanwil-32", "pw-jabar")
    assert (await client.get("/api/operations")).status_code == 403


def test_the_overview_lists_upts_worst_first_with_their_refusal_rate() -> None:
    def row(
        upt: str, parts: int | None, received_parts: int, lateness: str | None, received: int, rejected: int
    ) -> dict[str, Any]:
        return views.unit_row(
            {"upt_id": upt, "name": upt, "kanwil_id": "kanwil-32", "kanwil_name": "Jabar", "parts": parts,
             "parts_received": received_parts, "lateness": lateness, "received": received, "rejected": rejected}
        )  # fmt: skip

    rows = [
        row("on-time", 2, 2, "on_time", 100, 1),
        row("on-time-worse", 2, 2, "on_time", 100, 9),
        row("after-10", 1, 1, "after_10", 100, 0),
        row("after-14", 1, 1, "after_14", 100, 0),
        row("half", 2, 1, "on_time", 50, 0),
        row("silent", None, 0, None, 0, 0),
    ]
    assert [r["upt_id"] for r in views.worst_first(rows)] == [
        "silent", "half", "after-14", "after-10", "on-time-worse", "on-time",
    ]  # fmt: skip
    assert rows[1]["refusal_rate"] == 0.09
    assert rows[5]["refusal_rate"] == 0.0


def test_each_services_readiness_is_asked_beside_its_metrics() -> None:
    assert metrics_domain.ready_url("http://127.0.0.1:8081/metrics") == "http://127.0.0.1:8081/health/ready"
    assert metrics_domain.ready_url("http://registry:8081/") == "http://registry:8081/health/ready"


async def test_a_decision_carries_the_personal_name_of_the_centre_operator_who_made_it(
    client: httpx.AsyncClient, store: FakeMonitorStore
) -> None:
    await store.upsert_accounts([Account("andi.saputra", accounts.hash_password("pw-andi"), "pusat")])
    await Monitor(store.unit_of_work(), lambda: NOW).record_case(opened_case())
    await login(client, "andi.saputra", "pw-andi")
    asked = await client.post(
        "/api/adjudications/3273/p-grey/decision", json={"decision": "unique", "reason": "faces differ"},
        headers=ORIGIN,
    )  # fmt: skip
    assert asked.status_code == 202
    (command,) = [m.message for m in store.sent if m.routing_key == "command.adjudication.decide"]
    assert isinstance(command, AdjudicationDecision)
    assert command.operator == "andi.saputra"  # the person, not the shared centre login


async def test_a_upts_own_page_shows_its_parts_days_and_runs_and_refuses_other_logins(
    client: httpx.AsyncClient, store: FakeMonitorStore
) -> None:
    monitor = Monitor(store.unit_of_work(), lambda: NOW)
    newer = status_event("upt-3273-1", 470, n=1).model_copy(update={"message_id": "st-new", "snapshot": 2})
    await monitor.record_submission(newer)  # a newer snapshot: the first one's part is superseded
    earlier = status_event("upt-3273-1", 400, n=2).model_copy(
        update={"message_id": "st-old", "as_of": DAY - timedelta(days=3)}
    )
    await monitor.record_submission(earlier)
    await monitor.record_run(run_event("finished", 5, 3, summary={"accepted": 470}))
    await monitor.record_run_line(line_event("upt-3273-1", 470))
    await monitor.record_run_line(line_event("upt-3273-2", 200))
    assert (await client.get("/units/upt-3273-1")).headers["location"] == "/login"
    assert (await client.get("/api/units/upt-3273-1/detail")).status_code == 401

    await login(client, "kanwil-32", "pw-jabar")
    page = await client.get("/units/upt-3273-1")
    assert (page.status_code, '<script src="/static/unit.js">' in page.text) == (200, True)
    detail = (await client.get("/api/units/upt-3273-1/detail", params={"day": DAY.isoformat()})).json()
    assert detail["day"] == DAY.isoformat()
    assert (detail["unit"]["upt_id"], detail["unit"]["state"]) == ("upt-3273-1", "partial")
    assert [(p["snapshot"], p["part"], p["accepted"], p["superseded"]) for p in detail["parts"]] == [
        (1, 1, 480, True),
        (2, 1, 470, False),
    ]
    assert len(detail["history"]) == 13  # the 13 days before the chosen one, newest first
    assert detail["history"][0]["day"] == (DAY - timedelta(days=1)).isoformat()
    three_back = next(h for h in detail["history"] if h["day"] == (DAY - timedelta(days=3)).isoformat())
    assert (three_back["accepted"], three_back["state"]) == (400, "partial")
    assert [(r["run_id"], r["inmates"], r["overstaying"]) for r in detail["runs"]] == [("run-1", 470, 1)]
    assert isinstance(detail["live_id"], int)

    for other in ("upt-1101-1", "upt-no-such"):  # another Kanwil's UPT, or none: the same refusal
        refused = await client.get(f"/units/{other}")
        assert refused.status_code == 403
        assert 'id="forbidden"' in refused.text
        assert refused.headers["content-security-policy"].startswith("default-src 'self'")
        assert (await client.get(f"/api/units/{other}/detail")).status_code == 403

    await client.post("/logout", headers=ORIGIN)
    await login(client, "upt-3273-1", "pw-upt")
    assert (await client.get("/units/upt-3273-1")).status_code == 200
    assert (await client.get("/units/upt-3273-2")).status_code == 403
    assert (await client.get("/api/units/upt-3273-2/detail")).status_code == 403
    mine = (await client.get("/api/units/upt-3273-1/detail", params={"day": DAY.isoformat()})).json()
    assert [r["inmates"] for r in mine["runs"]] == [470]


def test_the_management_apis_answer_becomes_samples_of_the_topologys_queues_alone() -> None:
    rows = [
        {"name": "registry.sdp", "messages_ready": 5, "messages_unacknowledged": 8, "consumers": 2},
        {"name": "dedup.sdp"},  # a queue the broker has just created: no totals yet
        {"name": "someone.elses", "messages_ready": 1},
        "not a queue",
    ]
    found = samples_from_api(rows, {"registry.sdp", "dedup.sdp"}, NOW)
    assert found == {
        "registry.sdp": operations.QueueSample("registry.sdp", 5, 2, NOW, unacked=8),
        "dedup.sdp": operations.QueueSample("dedup.sdp", 0, 0, NOW, unacked=0),
    }
    with pytest.raises(ValueError, match="list of queues"):
        samples_from_api({"error": "not_authorised"}, {"registry.sdp"}, NOW)

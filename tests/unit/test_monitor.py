"""Monitor: scopes, live fan-out, and the web endpoints (with an in-memory store)."""

import asyncio
from datetime import UTC, date, datetime
from typing import Any

import httpx
import pytest

from services.monitor import accounts, domain, web
from services.monitor.app import build_app
from services.monitor.config import Settings
from services.monitor.hub import Hub
from services.monitor.store import Account
from shared import messaging
from shared.contracts import ReceiptStatus, SubmissionProcessed
from shared.settings import PROJECT_ROOT
from shared.units import load_units
from tests.fakes import FakeMonitorStore
from tests.unit.harness import in_memory

SETTINGS = Settings(amqp_url="amqp://svc-monitor:secret@localhost:5672/simpul", health_port=0, web_port=0)
UNITS = load_units(PROJECT_ROOT / "deploy" / "units")
DAY = date(2026, 11, 20)
NOW = datetime(2026, 11, 20, 5, tzinfo=UTC)


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
    kanwil = hub.subscribe(lambda upt, kw: kw == "kanwil-32")
    everyone = hub.subscribe(lambda upt, kw: True)
    hub.publish({"type": "unit", "n": 1}, unit_id="upt-1101-1", kanwil_id="kanwil-11")
    hub.publish({"type": "dead_letters"})
    assert kanwil.queue.qsize() == 1
    assert everyone.queue.qsize() == 2
    for _ in range(1_001):
        hub.publish({"type": "flood"})
    assert kanwil.dropped
    assert hub.clients == 0


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
    )


async def test_a_status_event_updates_the_view_and_reaches_the_clients_that_see_the_unit() -> None:
    store, hub = FakeMonitorStore(), Hub()
    jabar = hub.subscribe(lambda upt, kw: kw == "kanwil-32")
    aceh = hub.subscribe(lambda upt, kw: kw == "kanwil-11")
    async with in_memory(build_app(SETTINGS, store=store, hub=hub)) as (broker, _spies):
        event = status_event("upt-3273-1", 480)
        await broker.publish(
            event.model_dump_json().encode(),
            exchange=messaging.EVENTS,
            routing_key=event.ROUTING_KEY,
            message_id=event.message_id,
            user_id="svc-registry",
            content_type="application/json",
        )
    pushed = jabar.queue.get_nowait()
    assert pushed["row"]["upt_id"] == "upt-3273-1"
    assert pushed["row"]["accepted"] == 480
    assert pushed["row"]["state"] == "partial"
    assert aceh.queue.empty()


async def test_dead_letters_are_counted_from_their_headers_without_parsing_the_body() -> None:
    store = FakeMonitorStore()
    async with in_memory(build_app(SETTINGS, store=store)) as (broker, _spies):
        await broker.publish(
            b"\x00not json",
            exchange=messaging.DEAD,
            routing_key="sdp.upt-3273-1.submission",
            message_id="d1",
            headers={"x-dead-reason": "MESSAGE_NOT_JSON", "x-original-message-id": "orig-1"},
            content_type="application/json",
        )
    assert [(d.message_id, d.reason) for d in store.dead.values()] == [("orig-1", "MESSAGE_NOT_JSON")]


@pytest.fixture
async def client():  # type: ignore[no-untyped-def]
    store = FakeMonitorStore()
    await store.load_units(UNITS)
    await store.upsert_accounts(
        [
            Account("pusat", accounts.hash_password("pw-pusat"), "pusat"),
            Account("kanwil-32", accounts.hash_password("pw-jabar"), "kanwil-32"),
        ]
    )
    await store.submission_processed(status_event("upt-3273-1", 480), DAY)
    app = web.build_web(store, Hub(), SETTINGS, clock=lambda: NOW, checks={}, stopping=asyncio.Event())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://monitor") as c:
        yield c


async def login(client: httpx.AsyncClient, user: str, password: str) -> httpx.Response:
    return await client.post("/login", data={"username": user, "password": password})


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
    await client.post("/logout")
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
    bandung = hub.subscribe(domain.scope_of_login("dukcapil-3273").sees)
    kanwil = hub.subscribe(domain.scope_of_login("kanwil-32").sees)
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
    async with in_memory(build_app(SETTINGS, store=store, hub=hub)) as (broker, _):
        for event in events:
            await broker.publish(
                event.model_dump_json().encode(),
                exchange=messaging.EVENTS,
                routing_key=event.ROUTING_KEY,
                message_id=event.message_id,
                user_id="svc-registry",
                content_type="application/json",
            )
    last = None
    while not bandung.queue.empty():
        last = bandung.queue.get_nowait()
    assert last is not None
    assert last["type"] == "ektp"
    row = last["row"]
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

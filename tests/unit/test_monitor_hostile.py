"""The monitor's web answers to hostile requests: bursts of passwords, NUL bytes, errors, ended sessions."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest

from services.monitor import domain, web
from services.monitor import live as live_stream
from services.monitor.domain import cases
from services.monitor.domain.live import LiveEvent, visible
from services.monitor.hub import Hub
from services.monitor.probe import QueueProbe
from services.monitor.usecases import Monitor
from shared import passwords
from tests.fakes import FakeMonitorStore
from tests.unit.test_monitor import NOW, ORIGIN, SETTINGS, login, with_logins

HEADERS = ("content-security-policy", "x-content-type-options", "referrer-policy", "cache-control")


@pytest.fixture
async def store() -> FakeMonitorStore:
    return await with_logins()


@pytest.fixture
async def client(store: FakeMonitorStore) -> AsyncIterator[httpx.AsyncClient]:
    app = web.build_web(
        store, Hub(), store, QueueProbe("amqp://unused", lambda: NOW), Monitor(store.unit_of_work(), lambda: NOW),
        SETTINGS, clock=lambda: NOW, checks={}, stopping=asyncio.Event(),
    )  # fmt: skip
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://monitor") as c:
        yield c


async def test_a_burst_of_wrong_passwords_is_counted_one_by_one_and_the_right_one_then_waits(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    checked = 0
    verify = passwords.verify_password

    def counting(password: str, stored: str) -> bool:
        nonlocal checked
        checked += 1
        return verify(password, stored)

    monkeypatch.setattr(passwords, "verify_password", counting)
    answers = await asyncio.gather(
        *(login(client, "kanwil-32", f"guess-{n}") for n in range(30)), login(client, "kanwil-32", "pw-jabar")
    )
    assert checked == 5  # the lockout's five; the rest were refused before any password was looked at
    assert answers[-1].headers["location"].startswith("/login?locked=")
    assert (await client.get("/api/units")).status_code == 401


async def test_every_answer_carries_the_security_headers(
    client: httpx.AsyncClient, store: FakeMonitorStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    answers = {
        "static file": await client.get("/static/app.js"),
        "browser library": await client.get("/static/vendor/missing.js"),
        "not found": await client.get("/nowhere"),
        "redirect": await client.get("/"),
        "health": await client.get("/health/live"),
        "cross-origin refusal": await client.post("/logout", headers={"Origin": "http://evil.example"}),
        "nul in path": await client.get("/api/units/upt%00"),
    }

    async def broken(*_: object) -> None:
        raise RuntimeError("the store failed")

    await login(client, "pusat", "pw-pusat")
    monkeypatch.setattr(store, "session_user", broken)
    answers["server error"] = await client.get("/api/units")
    assert {k: r.status_code for k, r in answers.items()} == {
        "static file": 200, "browser library": 404, "not found": 404, "redirect": 303, "health": 200,
        "cross-origin refusal": 403, "nul in path": 400, "server error": 500,
    }  # fmt: skip
    for name, answer in answers.items():
        assert all(h in answer.headers for h in HEADERS), name
    assert "the store failed" not in answers["server error"].text


async def test_nul_bytes_in_forms_paths_and_parameters_are_refused_not_a_500(
    client: httpx.AsyncClient,
) -> None:
    nul_login = await client.post("/login", data={"username": "pu\x00sat", "password": "x"}, headers=ORIGIN)
    assert nul_login.headers["location"] == "/login?failed=1"
    await login(client, "pusat", "pw-pusat")
    for url in (
        "/api/units/%00",
        "/units.csv?upt=%00",
        "/api/runs/a%00b",
        "/runs/%00.csv",
        "/runs/%00/print",
        "/api/units?day=%00",
    ):
        assert (await client.get(url)).status_code == 400, url
    decision = await client.post(
        "/api/adjudications/3273/p%00/decision",
        json={"decision": "unique", "reason": "faces"},
        headers=ORIGIN,
    )
    assert decision.status_code == 400


def test_a_reason_with_control_characters_is_refused() -> None:
    open_ = cases.CaseState(known=True, decided=False)
    refused = cases.decide_request(open_, "3273", "p", "unique", "faces\x00differ", "andi")
    assert refused == cases.Refusal("reason_invalid", 422)
    kept = cases.decide_request(open_, "3273", "p", "unique", "faces differ\nfingers too", "andi")
    assert isinstance(kept, cases.DecisionRequest)


async def test_a_live_stream_ends_with_a_logout_event_once_its_session_has_ended() -> None:
    store, hub, allowed = FakeMonitorStore(), Hub(), [True]

    async def still() -> bool:
        return allowed[0]

    frames = live_stream.stream(
        store, hub, domain.scope_of_login("pusat"), None, heartbeat=0.05, stopping=asyncio.Event(),
        still_allowed=still,
    )  # fmt: skip
    assert await anext(frames) == "retry: 2000\n\n"
    assert await asyncio.wait_for(anext(frames), 1) == ": heartbeat\n\n"  # still logged in
    allowed[0] = False
    assert (await asyncio.wait_for(anext(frames), 1)).split("\n")[1] == "event: logout"
    assert [f async for f in frames] == []
    assert hub.clients == 0


def test_a_runs_progress_reaches_the_prisons_logins_not_a_dukcapil_office() -> None:
    run = LiveEvent("run", {"run_id": "r1", "requested_by": "andi"})
    seen = {
        u: visible(run, domain.scope_of_login(u))
        for u in ("pusat", "kanwil-32", "upt-3273-1", "dukcapil-3273")
    }
    assert seen == {"pusat": True, "kanwil-32": True, "upt-3273-1": True, "dukcapil-3273": False}


async def test_the_session_cookie_is_httponly_strict_and_secure_over_https(store: FakeMonitorStore) -> None:
    app = web.build_web(
        store, Hub(), store, QueueProbe("amqp://unused", lambda: NOW), Monitor(store.unit_of_work(), lambda: NOW),
        SETTINGS, clock=lambda: NOW, checks={}, stopping=asyncio.Event(),
    )  # fmt: skip
    for base, secure in (("http://monitor", False), ("https://monitor", True)):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=base) as c:
            answer = await c.post(
                "/login", data={"username": "pusat", "password": "pw-pusat"}, headers={"Origin": base}
            )
        cookie = answer.headers["set-cookie"].lower()
        assert "httponly" in cookie
        assert "samesite=strict" in cookie
        assert ("; secure" in cookie) is secure, base


async def test_forged_and_expired_sessions_are_refused(
    client: httpx.AsyncClient, store: FakeMonitorStore
) -> None:
    client.cookies.set("simpul_session", "forged-" + "x" * 40)
    assert (await client.get("/api/units")).status_code == 401
    assert (await client.get("/events")).status_code == 401
    client.cookies.clear()
    await login(client, "pusat", "pw-pusat")
    assert (await client.get("/api/units")).status_code == 200
    for token, (username, _) in list(store.sessions.items()):  # the session's time runs out
        store.sessions[token] = (username, NOW - timedelta(seconds=1))
    assert (await client.get("/api/units")).status_code == 401
    assert (await client.get("/")).headers["location"] == "/login"


async def test_huge_and_malformed_query_strings_get_an_answer_not_a_500(client: httpx.AsyncClient) -> None:
    await login(client, "pusat", "pw-pusat")
    for url in (
        "/api/units?day=" + "9" * 20_000,
        "/api/units?day=2026-13-45",
        "/api/units?day=%ff%fe&day=x",
        "/units.csv?upt=" + "a" * 10_000,
        "/api/runs/trend?days=-1",
        "/api/runs/trend?days=" + "1" * 500,
        "/api/units?" + "&".join(f"k{n}=v" for n in range(5_000)),
    ):
        answer = await client.get(url)
        assert answer.status_code < 500, url[:60]
        assert all(h in answer.headers for h in HEADERS), url[:60]

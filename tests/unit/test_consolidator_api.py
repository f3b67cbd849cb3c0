"""Consolidator lookup API without a database: logins and their cache, login roles, audit, OpenAPI."""

from __future__ import annotations

import asyncio
import base64
import threading
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any, cast

import asyncpg
import httpx
import pytest
from starlette.routing import Route

from services.consolidator.api import build_api
from services.consolidator.api_users import Authenticator, api_role, basic_credentials, plan_users
from services.consolidator.auditing import AuditWriter
from services.consolidator.domain.report import RunReport
from services.consolidator.lookup import ApiUser, AuditEntry
from shared.passwords import hash_password, verify_password

NOW = datetime(2026, 12, 2, 9, 30, tzinfo=UTC)
PUSAT = ApiUser("pusat", "pusat", "scrypt$hash-1", False)


def basic(username: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()}


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


class Checks:
    """A password check that counts its calls: `secret` is the only right password for any stored hash."""

    def __init__(self) -> None:
        self.calls: list[str | None] = []
        self.lock = threading.Lock()

    def __call__(self, password: str, stored: str | None) -> bool:
        with self.lock:
            self.calls.append(stored)
        return stored is not None and password == "secret"


def authenticator(users: dict[str, ApiUser], checks: Checks, clock: Clock) -> Authenticator:
    async def fetch(username: str) -> ApiUser | None:
        return users.get(username)

    return Authenticator(fetch, ttl=timedelta(seconds=60), clock=clock, check=checks)


def test_basic_credentials_are_read_only_from_a_well_formed_header() -> None:
    assert basic_credentials(basic("pusat", "a:b")["Authorization"]) == ("pusat", "a:b")
    assert basic_credentials("basic " + base64.b64encode(b"u:p").decode()) == ("u", "p")
    assert basic_credentials("Bearer abc") is None
    assert basic_credentials("Basic not-base64!") is None
    assert basic_credentials("Basic " + base64.b64encode(b"no-colon").decode()) is None
    assert basic_credentials("Basic " + base64.b64encode(b":password").decode()) is None
    assert basic_credentials("") is None


async def test_a_verified_login_skips_scrypt_until_the_cache_expires() -> None:
    checks, clock = Checks(), Clock()
    auth = authenticator({"pusat": PUSAT}, checks, clock)
    assert await auth.verify("pusat", "secret") == PUSAT
    assert await auth.verify("pusat", "secret") == PUSAT
    assert len(checks.calls) == 1
    clock.now += timedelta(seconds=61)
    assert await auth.verify("pusat", "secret") == PUSAT
    assert len(checks.calls) == 2


async def test_a_wrong_password_is_never_cached_and_never_lets_in() -> None:
    checks = Checks()
    auth = authenticator({"pusat": PUSAT}, checks, Clock())
    assert await auth.verify("pusat", "secret") == PUSAT
    assert await auth.verify("pusat", "wrong") is None
    assert await auth.verify("pusat", "wrong") is None
    assert len(checks.calls) == 3


async def test_a_reset_or_disabled_login_takes_effect_despite_the_cache() -> None:
    checks = Checks()
    users = {"pusat": PUSAT}
    auth = authenticator(users, checks, Clock())
    assert await auth.verify("pusat", "secret") == PUSAT
    users["pusat"] = ApiUser("pusat", "pusat", "scrypt$hash-2", False)  # password reset: a new hash
    assert await auth.verify("pusat", "secret") is not None
    assert checks.calls == ["scrypt$hash-1", "scrypt$hash-2"]
    users["pusat"] = ApiUser("pusat", "pusat", "scrypt$hash-2", True)
    assert await auth.verify("pusat", "secret") is None


async def test_unknown_disabled_and_oversized_logins_cost_one_check_like_a_wrong_password() -> None:
    checks = Checks()
    auth = authenticator({"off": ApiUser("off", "pusat", "scrypt$h", True)}, checks, Clock())
    assert await auth.verify("nobody", "secret") is None
    assert await auth.verify("off", "secret") is None
    assert await auth.verify("x" * 101, "secret") is None
    assert await auth.verify("nul\x00name", "secret") is None
    assert checks.calls == [None, None, None, None]


async def test_concurrent_first_requests_share_one_check() -> None:
    checks = Checks()
    auth = authenticator({"pusat": PUSAT}, checks, Clock())
    answers = await asyncio.gather(*(auth.verify("pusat", "secret") for _ in range(20)))
    assert answers == [PUSAT] * 20
    assert len(checks.calls) == 1


def test_the_real_check_is_scrypt_in_constant_time() -> None:
    stored = hash_password("rahasia-panjang")
    assert stored.startswith("scrypt$")
    assert verify_password("rahasia-panjang", stored)
    assert not verify_password("rahasia-salah", stored)
    assert not verify_password("rahasia-panjang", "md5$abc")


@dataclass(frozen=True)
class Cred:
    role: str
    unit_id: str
    username: str
    password: str = "pw"


def test_imported_logins_get_their_role_from_their_unit_and_people_win_a_shared_name() -> None:
    assert api_role(Cred("monitor", "pusat", "pusat")) == "pusat"
    assert api_role(Cred("pusat", "pusat", "ns-pusat")) == "pusat"
    assert api_role(Cred("monitor", "kanwil-32", "kanwil-32")) == "kanwil"
    assert api_role(Cred("dukcapil", "dukcapil-3273", "dukcapil-3273")) == "dukcapil"
    assert api_role(Cred("upt", "upt-3273-1", "upt-3273-1")) == "upt"
    assert api_role(Cred("service", "consolidator", "svc-consolidator")) is None
    assert api_role(Cred("database", "consolidator", "db_consolidator")) is None
    broker = Cred("pusat", "pusat", "pusat", "broker-password")
    person = Cred("monitor", "pusat", "pusat", "monitor-password")
    planned = plan_users([broker, person, Cred("service", "registry", "svc-registry")])
    assert [(c.username, c.password, role) for c, role in planned] == [("pusat", "monitor-password", "pusat")]


class FakePool:
    """The three calls the lookup store makes, answered from a dict of users and one person, C7; audit rows
    are kept, or refused when `audit_fails`."""

    def __init__(self, users: dict[str, ApiUser]) -> None:
        self.users = users
        self.audit: list[tuple[Any, ...]] = []
        self.audit_fails = False

    async def fetchrow(self, sql: str, key: Any) -> dict[str, Any] | None:
        if "FROM api_users" in sql:
            user = self.users.get(key)
            return None if user is None else vars(user)
        if key == 7:
            return {"asked": 7, "person_id": 7, "document": '{"central_id": "C7", "redirected_from": null}'}
        return None

    async def execute(self, sql: str, *args: Any) -> str:
        assert sql.startswith("INSERT INTO lookup_audit")
        if self.audit_fails:
            raise OSError("connection lost")
        self.audit.extend(zip(*args, strict=True))  # one array per column
        return f"INSERT 0 {len(args[0])}"

    async def fetchval(self, sql: str) -> int:
        return 1


class NoReports:
    async def load_report(self, run_id: str) -> RunReport | None:
        return None

    async def runs_of_day(self, day: date) -> list[dict[str, Any]]:
        return []


@pytest.fixture
def fake_api() -> tuple[httpx.AsyncClient, FakePool]:
    kanwil = ApiUser("kanwil-32", "kanwil", hash_password("kanwil-pw"), False)
    pusat = ApiUser("pusat", "pusat", hash_password("pusat-pw"), False)
    pool = FakePool({"kanwil-32": kanwil, "pusat": pusat})
    app = build_api(
        lambda: cast(asyncpg.Pool, pool),
        NoReports(),
        clock=Clock(),
        csv_files=lambda report: {},
        html_page=lambda report, *, generated_at: "",
    )
    # The app's own answer to an error is what is checked, not the exception it re-raises to the server.
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://api"), pool


async def test_refusals_are_json_with_a_challenge_and_each_writes_one_audit_row(
    fake_api: tuple[httpx.AsyncClient, FakePool],
) -> None:
    client, pool = fake_api
    async with client:
        anonymous = await client.get("/persons/by-nik/3273010101900001?purpose=checking")
        kanwil = await client.get("/persons/C7?purpose=checking", headers=basic("kanwil-32", "kanwil-pw"))
        wrong = await client.get("/runs?day=2026-12-01", headers=basic("kanwil-32", "nope"))
    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"] == 'Basic realm="simpul-consolidator"'
    assert anonymous.json()["error"] == "NOT_AUTHENTICATED"
    assert kanwil.status_code == 403
    assert kanwil.json() == {"error": "FORBIDDEN", "detail": "only the centre (pusat) may read this"}
    assert wrong.status_code == 401
    assert pool.audit == [
        ("anonymous", "none", "checking", "nik", "3273010101900001", None, "unauthenticated", 401),
        ("kanwil-32", "kanwil", "checking", "central_id", "C7", None, "refused", 403),
        ("kanwil-32", "none", None, "report", "2026-12-01", None, "unauthenticated", 401),
    ]


async def test_the_openapi_document_describes_every_route_and_is_not_audited(
    fake_api: tuple[httpx.AsyncClient, FakePool],
) -> None:
    client, pool = fake_api
    async with client:
        document = (await client.get("/openapi.json")).json()
        health = await client.get("/health")
        unknown = await client.get("/nowhere")
    app = cast(Any, client._transport).app
    routes = {r.path for r in app.routes if isinstance(r, Route)}
    assert set(document["paths"]) == routes
    assert document["components"]["securitySchemes"]["basic"] == {"type": "http", "scheme": "basic"}
    for path in ("/persons/by-nik/{nik}", "/persons/{central_id}", "/runs/{run_id}/{name}.csv"):
        operation = document["paths"][path]["get"]
        assert set(operation["responses"]) == {"200", "400", "401", "403", "404"}
        assert operation["security"] == [{"basic": []}]
        assert {p["name"] for p in operation["parameters"]} >= {"purpose"}
    nik = document["paths"]["/persons/by-nik/{nik}"]["get"]
    assert nik["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith("/PersonRecord")
    schemas = document["components"]["schemas"]
    assert "episodes" in schemas["PersonRecord"]["properties"]
    assert schemas["ErrorBody"]["properties"]["error"]["$ref"].endswith("/ErrorCode")
    assert {"PERSON_NOT_FOUND", "NIK_MALFORMED", "FORBIDDEN"} <= set(schemas["ErrorCode"]["enum"])
    assert document["paths"]["/health"]["get"]["security"] == []
    assert health.json() == {"status": "ok"}
    assert unknown.status_code == 404
    assert unknown.json()["error"] == "NOT_FOUND"
    assert pool.audit == []


async def test_a_record_is_answered_only_once_its_read_is_audited(
    fake_api: tuple[httpx.AsyncClient, FakePool],
) -> None:
    client, pool = fake_api
    async with client:
        found = await client.get("/persons/C7?purpose=checking", headers=basic("pusat", "pusat-pw"))
        pool.audit_fails = True
        unaudited = await client.get("/persons/C7?purpose=checking", headers=basic("pusat", "pusat-pw"))
    assert found.status_code == 200
    assert found.json()["central_id"] == "C7"
    assert pool.audit == [("pusat", "pusat", "checking", "central_id", "C7", 7, "found", 200)]
    assert unaudited.status_code == 500
    assert unaudited.json()["error"] == "INTERNAL"
    assert "C7" not in unaudited.text


async def test_concurrent_audit_entries_are_committed_together_and_fail_together() -> None:
    batches: list[list[AuditEntry]] = []
    failing = False

    async def append(entries: Sequence[AuditEntry]) -> None:
        await asyncio.sleep(0.01)  # a commit
        if failing:
            raise OSError("connection lost")
        batches.append(list(entries))

    writer = AuditWriter(append, max_batch=3)
    entry = AuditEntry("pusat", "pusat", "checking", "nik", "x", None, "not_found", 404)
    await writer.write(entry)  # alone: its own commit
    await asyncio.gather(*(writer.write(replace(entry, query=str(n))) for n in range(5)))
    assert [len(b) for b in batches] == [1, 3, 2]  # what arrived meanwhile went together, at most 3 at once
    assert sorted(e.query for b in batches[1:] for e in b) == ["0", "1", "2", "3", "4"]
    failing = True
    results = await asyncio.gather(*(writer.write(entry) for _ in range(2)), return_exceptions=True)
    assert [type(r) for r in results] == [OSError, OSError]  # nobody is answered as if audited

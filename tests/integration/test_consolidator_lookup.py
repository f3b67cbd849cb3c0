"""The consolidator lookup API on the real database as its own role: refusals, records, reports, audit."""

from __future__ import annotations

import base64
import secrets
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import asyncpg
import httpx
import pytest

from deploy.credentials import Credential
from services.consolidator.api import build_api
from services.consolidator.api_users import create_user, disable_user, import_users, reset_user
from services.consolidator.domain.report import COUNTS, RunReport, UptLine
from shared import db
from shared.passwords import hash_password
from shared.runtime import Database
from tests.conftest import Installation

pytestmark = pytest.mark.integration
DAY = date(2026, 12, 2)
RUN_ID = "2026-12-02-command-0123abcd"
GENERATED = datetime(2026, 12, 2, 9, 30, tzinfo=UTC)


def basic(username: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()}


def new_nik() -> str:
    return "3273" + "".join(secrets.choice("0123456789") for _ in range(8)) + "0001"


REPORT = RunReport(
    run_id=RUN_ID,
    day=DAY,
    trigger="command",
    requested_by="Sri Wahyuni",
    reason="Rekap harian",
    started_at=datetime(2026, 12, 2, 8, 15, tzinfo=UTC),
    finished_at=datetime(2026, 12, 2, 8, 20, tzinfo=UTC),
    lines=[
        UptLine(
            "upt-3273-1", "Lapas Bandung", "kanwil-32", "Kanwil Jawa Barat", True, True, "on_time", 1, "applied",
            **dict.fromkeys(COUNTS, 3),
        )
    ],
    items=[],
)  # fmt: skip


class Reports:
    """Stands in for the consolidator's run store: one run on DAY."""

    async def load_report(self, run_id: str) -> RunReport | None:
        return REPORT if run_id == RUN_ID else None

    async def runs_of_day(self, day: date) -> list[dict[str, Any]]:
        return [{"run_id": RUN_ID, "state": "done", "started_at": REPORT.started_at}] if day == DAY else []


@dataclass
class World:
    admin: asyncpg.Pool
    client: httpx.AsyncClient
    centre: dict[str, str]  # Authorization headers
    kanwil: dict[str, str]
    disabled: dict[str, str]
    wrong: dict[str, str]
    centre_user: str
    nik: str
    person_id: int
    merged_id: int

    async def audit_since(self, start: int) -> list[asyncpg.Record]:
        return await self.admin.fetch(
            "SELECT who, role, purpose, query_kind, query, person_id, outcome, status FROM lookup_audit "
            "WHERE id > $1 ORDER BY id",
            start,
        )

    async def last_audit_id(self) -> int:
        return int(await self.admin.fetchval("SELECT coalesce(max(id), 0) FROM lookup_audit"))


async def add_person(admin: asyncpg.Pool, nik: str | None, name: str, merged_into: int | None = None) -> int:
    return int(
        await admin.fetchval(
            "INSERT INTO persons (nik, full_name, sex, birth_date, merged_into) VALUES ($1, $2, 'L', $3, $4) "
            "RETURNING person_id",
            nik,
            name,
            date(1990, 1, 1),
            merged_into,
        )
    )


@pytest.fixture
async def world(installation: Installation) -> AsyncIterator[World]:
    admin = Database.of_service(installation.database_url, "consolidator")
    await admin.open()  # the consolidator's migrations, as provisioning applies them
    service = await db.create_pool(installation.database_url_for("consolidator"), schema="consolidator")
    tag = uuid.uuid4().hex[:8]
    users = {f"pusat-{tag}": "pusat", f"kanwil-{tag}": "kanwil", f"off-{tag}": "pusat"}
    await admin.pool.executemany(
        "INSERT INTO api_users (username, role, password_hash, disabled) VALUES ($1, $2, $3, $4)",
        [(u, role, hash_password(f"pw-{u}"), u.startswith("off-")) for u, role in users.items()],
    )
    nik = new_nik()
    person_id = await add_person(admin.pool, nik, "Andi Wijaya")
    await admin.pool.execute(
        "INSERT INTO episodes (upt_id, inmate_id, person_id, register, register_number, entry_date, "
        "custody_status, first_seen, last_seen, first_snapshot, last_snapshot) "
        "VALUES ('upt-3273-1', $1, $2, 'A II', '12/2026', $3, 'tahanan', $3, $3, '2026-12-01/1', '2026-12-01/1')",
        f"W-{tag}",
        person_id,
        date(2026, 11, 1),
    )
    merged_id = await add_person(admin.pool, None, "Andi W.", merged_into=person_id)
    await admin.pool.execute(
        "INSERT INTO merges (merged, into_id, reason, cause) VALUES ($1, $2, 'same_nik', 'test')",
        merged_id,
        person_id,
    )
    app = build_api(lambda: service, Reports(), clock=lambda: GENERATED)
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api")
    try:
        yield World(
            admin=admin.pool,
            client=client,
            centre=basic(f"pusat-{tag}", f"pw-pusat-{tag}"),
            kanwil=basic(f"kanwil-{tag}", f"pw-kanwil-{tag}"),
            disabled=basic(f"off-{tag}", f"pw-off-{tag}"),
            wrong=basic(f"pusat-{tag}", "not-the-password"),
            centre_user=f"pusat-{tag}",
            nik=nik,
            person_id=person_id,
            merged_id=merged_id,
        )
    finally:
        await client.aclose()
        await service.close()
        await admin.close()


async def test_refused_callers_are_answered_and_audited_once_each(world: World) -> None:
    start = await world.last_audit_id()
    url = f"/persons/by-nik/{world.nik}?purpose=penyidikan"
    anonymous = await world.client.get(url)
    wrong = await world.client.get(url, headers=world.wrong)
    disabled = await world.client.get(url, headers=world.disabled)
    kanwil = await world.client.get(url, headers=world.kanwil)
    for answer in (anonymous, wrong, disabled):
        assert answer.status_code == 401
        assert answer.headers["WWW-Authenticate"] == 'Basic realm="simpul-consolidator"'
        assert answer.json()["error"] == "NOT_AUTHENTICATED"
        assert world.nik not in answer.text
    assert kanwil.status_code == 403
    assert kanwil.json()["error"] == "FORBIDDEN"
    assert world.nik not in kanwil.text
    audit = [dict(r) for r in await world.audit_since(start)]
    assert [(a["who"], a["role"], a["outcome"], a["status"]) for a in audit] == [
        ("anonymous", "none", "unauthenticated", 401),
        (world.centre_user, "none", "unauthenticated", 401),
        (world.centre_user.replace("pusat-", "off-"), "none", "unauthenticated", 401),
        (world.centre_user.replace("pusat-", "kanwil-"), "kanwil", "refused", 403),
    ]
    assert {(a["query_kind"], a["query"], a["purpose"], a["person_id"]) for a in audit} == {
        ("nik", world.nik, "penyidikan", None)
    }


async def test_malformed_requests_and_unknown_people_are_refused_and_audited(world: World) -> None:
    start = await world.last_audit_id()
    asks = {
        f"/persons/by-nik/{world.nik}": (400, "PURPOSE_REQUIRED"),
        f"/persons/by-nik/{world.nik}?purpose=ab": (400, "PURPOSE_REQUIRED"),
        "/persons/by-nik/32730101?purpose=penyidikan": (400, "NIK_MALFORMED"),
        "/persons/X12?purpose=penyidikan": (400, "CENTRAL_ID_MALFORMED"),
        f"/persons/by-nik/{new_nik()[:-4]}9999?purpose=penyidikan": (404, "PERSON_NOT_FOUND"),
        "/persons/C999999999999?purpose=penyidikan": (404, "PERSON_NOT_FOUND"),
    }
    for url, (status, code) in asks.items():
        answer = await world.client.get(url, headers=world.centre)
        assert (answer.status_code, answer.json()["error"]) == (status, code), url
        assert set(answer.json()) == {"error", "detail"}
    audit = await world.audit_since(start)
    assert [(a["outcome"], a["status"]) for a in audit] == [
        ("invalid", 400),
        ("invalid", 400),
        ("invalid", 400),
        ("invalid", 400),
        ("not_found", 404),
        ("not_found", 404),
    ]
    assert [a["query"] for a in audit][2:4] == ["32730101", "X12"]
    assert all(a["who"] == world.centre_user and a["role"] == "pusat" for a in audit)
    assert all(a["person_id"] is None for a in audit)


async def test_the_centre_reads_a_record_by_nik_and_by_central_id(world: World) -> None:
    start = await world.last_audit_id()
    by_nik = await world.client.get(f"/persons/by-nik/{world.nik}?purpose=penyidikan", headers=world.centre)
    by_id = await world.client.get(f"/persons/C{world.person_id}?purpose=pemeriksaan", headers=world.centre)
    assert by_nik.status_code == by_id.status_code == 200
    assert by_nik.json() == by_id.json()
    record = by_nik.json()
    assert record["central_id"] == f"C{world.person_id}"
    assert record["nik"] == world.nik
    assert record["redirected_from"] is None
    assert record["identity"]["full_name"] == "Andi Wijaya"
    assert [(e["upt_id"], e["register"], e["state"]) for e in record["episodes"]] == [
        ("upt-3273-1", "A II", "active")
    ]
    assert [m["central_id"] for m in record["merged"]] == [f"C{world.merged_id}"]
    assert by_nik.headers["Cache-Control"] == "no-store"
    audit = await world.audit_since(start)
    assert [(a["query_kind"], a["query"], a["purpose"], a["person_id"], a["outcome"]) for a in audit] == [
        ("nik", world.nik, "penyidikan", world.person_id, "found"),
        ("central_id", f"C{world.person_id}", "pemeriksaan", world.person_id, "found"),
    ]


async def test_a_record_merged_away_answers_with_the_surviving_one_and_says_so(world: World) -> None:
    start = await world.last_audit_id()
    answer = await world.client.get(f"/persons/C{world.merged_id}?purpose=penyidikan", headers=world.centre)
    assert answer.status_code == 200
    assert answer.json()["central_id"] == f"C{world.person_id}"
    assert answer.json()["redirected_from"] == f"C{world.merged_id}"
    assert answer.headers["Content-Location"] == f"/persons/C{world.person_id}"
    [row] = await world.audit_since(start)
    assert (row["query"], row["person_id"], row["outcome"]) == (
        f"C{world.merged_id}",
        world.person_id,
        "found",
    )


async def test_reports_are_listed_and_downloaded_by_the_centre_only(world: World) -> None:
    start = await world.last_audit_id()
    runs = await world.client.get("/runs?day=2026-12-02", headers=world.centre)
    page = await world.client.get(f"/runs/{RUN_ID}/report.html", headers=world.centre)
    upt = await world.client.get(f"/runs/{RUN_ID}/upt.csv?purpose=rekap", headers=world.centre)
    unknown_run = await world.client.get("/runs/2026-12-01-command-x/report.html", headers=world.centre)
    unknown_file = await world.client.get(f"/runs/{RUN_ID}/secrets.csv", headers=world.centre)
    bad_day = await world.client.get("/runs?day=02-12-2026", headers=world.centre)
    kanwil = await world.client.get(f"/runs/{RUN_ID}/upt.csv", headers=world.kanwil)
    assert runs.json() == {"day": "2026-12-02", "runs": [{"run_id": RUN_ID, "state": "done",
                                                        "started_at": "2026-12-02T08:15:00+00:00"}]}  # fmt: skip
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "Lapas Bandung" in page.text
    assert upt.status_code == 200
    assert upt.headers["content-type"].startswith("text/csv")
    assert "upt-3273-1" in upt.text
    assert (unknown_run.status_code, unknown_run.json()["error"]) == (404, "RUN_NOT_FOUND")
    assert (unknown_file.status_code, unknown_file.json()["error"]) == (404, "REPORT_FILE_NOT_FOUND")
    assert "upt.csv" in unknown_file.json()["detail"]
    assert (bad_day.status_code, bad_day.json()["error"]) == (400, "DAY_MALFORMED")
    assert kanwil.status_code == 403
    audit = await world.audit_since(start)
    assert {a["query_kind"] for a in audit} == {"report"}
    assert [(a["query"], a["purpose"], a["outcome"], a["status"]) for a in audit] == [
        ("2026-12-02", None, "found", 200),
        (RUN_ID, None, "found", 200),
        (RUN_ID, "rekap", "found", 200),
        ("2026-12-01-command-x", None, "not_found", 404),
        (RUN_ID, None, "not_found", 404),
        ("02-12-2026", None, "invalid", 400),
        (RUN_ID, None, "refused", 403),
    ]


async def test_openapi_and_health_need_no_login_and_leave_no_audit(world: World) -> None:
    start = await world.last_audit_id()
    document = (await world.client.get("/openapi.json")).json()
    health = await world.client.get("/health")
    assert set(document["paths"]) == {
        "/persons/by-nik/{nik}",
        "/persons/{central_id}",
        "/runs",
        "/runs/{run_id}/report.html",
        "/runs/{run_id}/{name}.csv",
        "/health",
        "/openapi.json",
    }
    assert health.json() == {"status": "ok"}
    assert await world.audit_since(start) == []


async def test_imported_and_operator_managed_logins(installation: Installation, world: World) -> None:
    tag = uuid.uuid4().hex[:8]
    logins = [
        Credential("monitor", "pusat", f"centre-{tag}", "monitor-password"),
        Credential("pusat", "pusat", f"centre-{tag}", "broker-password"),
        Credential("monitor", "kanwil-32", f"kanwil-32-{tag}", "kanwil-password"),
        Credential("upt", "upt-3273-1", f"upt-3273-1-{tag}", "upt-password"),
        Credential("service", "registry", f"svc-registry-{tag}", "service-password"),
    ]
    assert await import_users(installation.database_url, logins) == 3
    assert await import_users(installation.database_url, logins, refresh=set()) == 0
    roles = await world.admin.fetch(
        "SELECT username, role FROM api_users WHERE username LIKE $1 ORDER BY username", f"%-{tag}"
    )
    assert [(r["username"], r["role"]) for r in roles] == [
        (f"centre-{tag}", "pusat"),
        (f"kanwil-32-{tag}", "kanwil"),
        (f"upt-3273-1-{tag}", "upt"),
    ]
    url = f"/persons/C{world.person_id}?purpose=penyidikan"
    assert (
        await world.client.get(url, headers=basic(f"centre-{tag}", "monitor-password"))
    ).status_code == 200
    assert (await world.client.get(url, headers=basic(f"centre-{tag}", "broker-password"))).status_code == 401
    assert (
        await world.client.get(url, headers=basic(f"upt-3273-1-{tag}", "upt-password"))
    ).status_code == 403

    operator = f"operator-{tag}"
    assert await create_user(installation.database_url, operator, "pusat", "first-password-1")
    assert not await create_user(installation.database_url, operator, "pusat", "other-password")
    assert (await world.client.get(url, headers=basic(operator, "first-password-1"))).status_code == 200
    assert await disable_user(installation.database_url, operator)
    assert (await world.client.get(url, headers=basic(operator, "first-password-1"))).status_code == 401
    assert await reset_user(installation.database_url, operator, "second-password-2")
    assert (await world.client.get(url, headers=basic(operator, "first-password-1"))).status_code == 401
    assert (await world.client.get(url, headers=basic(operator, "second-password-2"))).status_code == 200
    assert not await disable_user(installation.database_url, f"nobody-{tag}")

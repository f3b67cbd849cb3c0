"""Each service's own database role: its schema only, its audit tables append-only, no DDL at start (the
consolidator's in detail, then every service's)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from importlib import resources
from urllib.parse import urlsplit

import asyncpg
import pytest

from deploy import credentials as creds
from deploy import dbroles
from shared import db
from shared.runtime import Database
from shared.settings import ServiceSettings
from tests.conftest import Installation

pytestmark = pytest.mark.integration
Refused = asyncpg.exceptions.InsufficientPrivilegeError


@pytest.fixture
async def as_consolidator(installation: Installation) -> AsyncIterator[asyncpg.Connection]:
    """The consolidator's connection, in a transaction rolled back at the end: the shared audit stays as it was."""
    conn = await asyncpg.connect(installation.database_url_for("consolidator"))
    outer = conn.transaction()
    await outer.start()
    try:
        yield conn
    finally:
        await outer.rollback()
        await conn.close()


async def refused(conn: asyncpg.Connection, statement: str) -> None:
    with pytest.raises(Refused):
        async with conn.transaction():  # a savepoint: the refusal must not end the test's transaction
            await conn.execute(statement)


SERVICES = ("registry", "dedup", "consolidator", "monitor")
AUDITS = {  # the append-only table of a service, and a column of it
    "dedup": ("adjudication_audit", "message_id"),
    "monitor": ("case_reads", "username"),
    "consolidator": ("lookup_audit", "who"),
}


@pytest.mark.parametrize("service", SERVICES)
def test_every_service_is_given_its_own_role(installation: Installation, service: str) -> None:
    role = creds.find(installation.credentials, "database", service).username
    assert role == dbroles.role_name(dbroles.database_name(installation.database_url), service)
    for url in (
        installation.service_env(service)["DATABASE_URL"],
        installation.settings(service, ServiceSettings).database_url,
    ):
        assert urlsplit(url).username == role
        assert urlsplit(url).path == urlsplit(installation.database_url).path


@pytest.mark.parametrize("service", SERVICES)
async def test_a_service_reads_no_other_schema_and_rewrites_no_audit(
    installation: Installation, service: str
) -> None:
    admin = await asyncpg.connect(installation.database_url)
    try:
        tables = await admin.fetch(
            "SELECT schemaname, tablename FROM pg_tables WHERE schemaname = ANY($1::text[])", list(SERVICES)
        )
    finally:
        await admin.close()
    assert {t["schemaname"] for t in tables} == set(SERVICES)  # provisioning migrated every schema
    conn = await asyncpg.connect(installation.database_url_for(service))
    outer = conn.transaction()
    await outer.start()
    try:
        for t in tables:
            statement = f'SELECT * FROM {t["schemaname"]}."{t["tablename"]}" LIMIT 1'
            if t["schemaname"] == service:
                await conn.execute(statement)  # its own: read
            else:
                await refused(conn, statement)
        if service in AUDITS:
            table, column = AUDITS[service]
            await refused(conn, f"UPDATE {service}.{table} SET {column} = {column}")
            await refused(conn, f"DELETE FROM {service}.{table}")
            await refused(conn, f"TRUNCATE {service}.{table}")
        await refused(conn, f"CREATE TABLE {service}.intruder (id int)")
    finally:
        await outer.rollback()
        await conn.close()


async def test_the_role_is_no_superuser_and_may_create_nothing(as_consolidator: asyncpg.Connection) -> None:
    attributes = await as_consolidator.fetchrow(
        "SELECT rolsuper, rolcreatedb, rolcreaterole, rolinherit, rolbypassrls, rolcanlogin "
        "FROM pg_roles WHERE rolname = current_user"
    )
    assert attributes is not None
    assert dict(attributes) == {
        "rolsuper": False,
        "rolcreatedb": False,
        "rolcreaterole": False,
        "rolinherit": False,
        "rolbypassrls": False,
        "rolcanlogin": True,
    }
    await refused(as_consolidator, "CREATE TABLE public.intruder (id int)")
    await refused(as_consolidator, "CREATE TABLE consolidator.intruder (id int)")
    await refused(as_consolidator, "CREATE SCHEMA intruder")
    await refused(as_consolidator, "DROP TABLE consolidator.lookup_audit")
    await refused(
        as_consolidator, "INSERT INTO consolidator.schema_migrations (version, checksum) VALUES ('x', 'x')"
    )


async def test_the_lookup_audit_takes_inserts_and_reads_but_never_a_rewrite(
    as_consolidator: asyncpg.Connection,
) -> None:
    who = f"test-{uuid.uuid4().hex[:8]}"
    row_id = await as_consolidator.fetchval(
        "INSERT INTO consolidator.lookup_audit (who, role, query_kind, query, outcome, status) "
        "VALUES ($1, 'pusat', 'central_id', 'C1', 'not_found', 404) RETURNING id",
        who,
    )
    assert (
        await as_consolidator.fetchval("SELECT who FROM consolidator.lookup_audit WHERE id = $1", row_id)
        == who
    )
    await refused(
        as_consolidator, f"UPDATE consolidator.lookup_audit SET outcome = 'found' WHERE id = {row_id}"
    )
    await refused(as_consolidator, f"DELETE FROM consolidator.lookup_audit WHERE id = {row_id}")
    await refused(as_consolidator, "TRUNCATE consolidator.lookup_audit")
    assert await as_consolidator.fetchval(
        "SELECT outcome FROM consolidator.lookup_audit WHERE id = $1", row_id
    ) == ("not_found")
    # Its other tables it may rewrite: the refusals above are the audit's, not a read-only role's.
    await as_consolidator.execute("UPDATE consolidator.api_users SET disabled = disabled")
    await as_consolidator.execute("DELETE FROM consolidator.api_users WHERE username = $1", who)


async def test_no_other_service_schema_can_be_read(
    installation: Installation, as_consolidator: asyncpg.Connection
) -> None:
    for service in ("registry", "dedup"):  # as each service's start does, so their tables surely exist
        database = Database.of_service(installation.database_url, service)
        await database.open()
        await database.close()
    admin = await asyncpg.connect(installation.database_url)
    try:
        tables = await admin.fetch(
            "SELECT schemaname, tablename FROM pg_tables WHERE schemaname = ANY($1::text[])",
            ["registry", "dedup", "monitor"],
        )
    finally:
        await admin.close()
    assert {t["schemaname"] for t in tables} == {"registry", "dedup", "monitor"}
    for t in tables:
        await refused(as_consolidator, f'SELECT * FROM {t["schemaname"]}."{t["tablename"]}" LIMIT 1')
    assert await as_consolidator.fetchval("SELECT count(*) FROM consolidator.schema_migrations") > 0


def consolidator_migrations() -> list[db.Migration]:
    return db.read_migrations(resources.files("services.consolidator") / "migrations")


async def test_the_role_starts_on_an_applied_schema_without_ddl_and_is_told_to_provision_a_missing_one(
    installation: Installation,
) -> None:
    pool = await db.create_pool(installation.database_url_for("consolidator"), schema="consolidator")
    try:
        # The old start created the schema and its migrations table first, which this role may not.
        assert await db.apply_migrations(pool, "consolidator", consolidator_migrations()) == []
        extra = db.Migration("9999_extra", "CREATE TABLE extra (id int)")
        with pytest.raises(db.MigrationsPending, match="make provision"):
            await db.apply_migrations(pool, "consolidator", [*consolidator_migrations(), extra])
        assert await pool.fetchval("SELECT to_regclass('consolidator.extra')") is None
    finally:
        await pool.close()


async def test_provisioning_a_role_again_changes_nothing_and_removing_it_leaves_no_role(
    installation: Installation,
) -> None:
    url = db.with_database(installation.database_url, f"simpul_roles_{uuid.uuid4().hex[:8]}")
    role = dbroles.role_name(dbroles.database_name(url), "consolidator")
    await db.ensure_database(url)
    try:
        for _ in range(2):
            await dbroles.provision_service_role(url, "consolidator", role, "first'pass\"word")
        await dbroles.provision_service_role(url, "consolidator", role, "second")
        admin = await asyncpg.connect(url)
        try:
            grants = await admin.fetch(
                "SELECT table_name, privilege_type FROM information_schema.role_table_grants "
                "WHERE grantee = $1 AND table_name IN ('lookup_audit', 'schema_migrations', 'persons')",
                role,
            )
        finally:
            await admin.close()
        assert {(g["table_name"], g["privilege_type"]) for g in grants} == {
            ("lookup_audit", "SELECT"),
            ("lookup_audit", "INSERT"),
            ("schema_migrations", "SELECT"),
            *(("persons", p) for p in ("SELECT", "INSERT", "UPDATE", "DELETE")),
        }
    finally:
        await db.drop_database(url)
        await dbroles.drop_roles(url, [role])
    admin = await asyncpg.connect(installation.database_url)
    try:
        assert await admin.fetchval("SELECT count(*) FROM pg_roles WHERE rolname = $1", role) == 0
    finally:
        await admin.close()

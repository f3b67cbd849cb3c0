"""PostgreSQL roles of the services that connect as themselves: created, granted their own schema, dropped."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from urllib.parse import urlsplit

import asyncpg

from shared import db
from shared.runtime import Database

# Tables a service may only append to and read: the grants keep its own role from rewriting them.
APPEND_ONLY: dict[str, tuple[str, ...]] = {
    "consolidator": ("lookup_audit",),  # every read of a person's record
    "dedup": ("adjudication_audit",),  # every decision asked of the centre's desk, in the operator's name
    "monitor": ("case_reads",),  # every opening of a grey-zone case at the desk
}
_MAX_NAME = 63  # PostgreSQL's identifier length


def role_name(database: str, service: str) -> str:
    """`<database>_<service>`: sandboxes share one server, and each has its own database name."""
    name = f"{database}_{service}"
    if len(name) <= _MAX_NAME:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{database[: _MAX_NAME - len(service) - 10]}_{digest}_{service}"


def database_name(dsn: str) -> str:
    return urlsplit(dsn).path.lstrip("/") or "postgres"


async def _run(conn: asyncpg.Connection, template: str, *values: str) -> None:
    """DDL takes no bind parameters: the server quotes identifiers (%I) and literals (%L) through format()."""
    arguments = "".join(f", ${i + 2}::text" for i in range(len(values)))
    statement = await conn.fetchval(f"SELECT format($1{arguments})", template, *values)
    await conn.execute(statement)


async def ensure_role(conn: asyncpg.Connection, role: str, password: str) -> None:
    attributes = "LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT NOREPLICATION NOBYPASSRLS PASSWORD %L"
    if await conn.fetchval("SELECT true FROM pg_catalog.pg_roles WHERE rolname = $1", role):
        await _run(conn, f"ALTER ROLE %I WITH {attributes}", role, password)
        return
    try:
        async with conn.transaction():  # a savepoint: another provisioning may create it at the same moment
            await _run(conn, f"CREATE ROLE %I WITH {attributes}", role, password)
    except asyncpg.exceptions.DuplicateObjectError:
        await _run(conn, f"ALTER ROLE %I WITH {attributes}", role, password)


async def _grant(conn: asyncpg.Connection, service: str, role: str) -> None:
    database = await conn.fetchval("SELECT current_database()")
    schema = service
    # From scratch each time, so a rerun leaves exactly these grants whatever an earlier one gave.
    for kind in ("TABLES", "SEQUENCES", "ROUTINES"):
        await _run(conn, f"REVOKE ALL ON ALL {kind} IN SCHEMA %I FROM %I", schema, role)
    # PostgreSQL before 15 let every role create in public; the services keep nothing there.
    await conn.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
    await _run(conn, "REVOKE CREATE ON SCHEMA public FROM %I", role)
    await _run(conn, "REVOKE CREATE ON DATABASE %I FROM %I", database, role)
    await _run(conn, "GRANT CONNECT ON DATABASE %I TO %I", database, role)
    await _run(conn, "GRANT USAGE ON SCHEMA %I TO %I", schema, role)
    await _run(conn, "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA %I TO %I", schema, role)
    # Migrations are provisioning's to record: the service only checks that they are all there.
    await _run(conn, "REVOKE INSERT, UPDATE, DELETE ON TABLE %I.schema_migrations FROM %I", schema, role)
    await _run(conn, "GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA %I TO %I", schema, role)
    await _run(conn, "GRANT EXECUTE ON ALL ROUTINES IN SCHEMA %I TO %I", schema, role)
    for table in APPEND_ONLY.get(service, ()):
        await _run(conn, "REVOKE UPDATE, DELETE, TRUNCATE ON TABLE %I.%I FROM %I", schema, table, role)


async def provision_service_role(admin_dsn: str, service: str, role: str, password: str) -> None:
    """As the administrator: apply the service's migrations (its tables stay the administrator's), create or
    update its LOGIN role, and grant it its own schema only. Safe to run again."""
    database = Database.of_service(admin_dsn, service)
    try:
        await database.open()  # applies the migrations
    finally:
        await database.close()
    conn = await asyncpg.connect(admin_dsn)
    try:
        async with conn.transaction():  # all or nothing: a running service never sees half the grants
            await ensure_role(conn, role, password)
            await _grant(conn, service, role)
    finally:
        await conn.close()


async def drop_roles(admin_dsn: str, roles: Sequence[str]) -> None:
    """Drop an installation's roles once its database is dropped (grants there went with it)."""
    conn = await asyncpg.connect(db.with_database(admin_dsn, "postgres"))
    try:
        for role in dict.fromkeys(roles):
            if not await conn.fetchval("SELECT true FROM pg_catalog.pg_roles WHERE rolname = $1", role):
                continue
            await _run(conn, "DROP OWNED BY %I", role)  # whatever it holds in this maintenance database
            await _run(conn, "DROP ROLE IF EXISTS %I", role)
    finally:
        await conn.close()

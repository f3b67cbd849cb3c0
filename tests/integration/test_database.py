"""Migrations, the outbox relay and dedup's NIK locking on the real PostgreSQL and RabbitMQ."""

from __future__ import annotations

import asyncio
import contextvars
import gc
import uuid
import weakref
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from importlib import resources

import pytest

from services.dedup.domain import Claim
from services.dedup.store import PostgresClaimStore
from services.registry.config import Settings
from shared import db, messaging
from shared.contracts import ReceiptStatus, SubmissionReceipt
from shared.runtime import Database, outbox_publisher
from tests.conftest import Installation
from tests.integration.helpers import body, purge, take

pytestmark = pytest.mark.integration
ME = "upt-3273-1"


@pytest.fixture
async def scratch_database(installation: Installation) -> AsyncIterator[str]:
    url = db.with_database(installation.database_url, f"simpul_scratch_{uuid.uuid4().hex[:8]}")
    await db.ensure_database(url)
    yield url
    await db.drop_database(url)


async def test_migrations_apply_once_and_a_changed_migration_fails_loudly(scratch_database: str) -> None:
    pool = await db.create_pool(scratch_database, schema="registry")
    try:
        migrations = db.read_migrations(resources.files("services.registry") / "migrations")
        assert await db.apply_migrations(pool, "registry", migrations) == [m.version for m in migrations]
        assert await db.apply_migrations(pool, "registry", migrations) == []
        changed = [*migrations[:-1], db.Migration(migrations[-1].version, migrations[-1].sql + "\n-- edited")]
        with pytest.raises(RuntimeError, match="changed after it was applied"):
            await db.apply_migrations(pool, "registry", changed)
    finally:
        await pool.close()


def receipt(n: int) -> SubmissionReceipt:
    return SubmissionReceipt(
        message_id=f"r-{uuid.uuid4()}",
        produced_at=datetime.now(UTC),
        in_reply_to=f"s-{n}",
        sender=ME,
        status=ReceiptStatus.ACCEPTED,
        received=1,
        accepted=1,
    )


async def test_the_relay_publishes_with_confirms_and_keeps_what_it_could_not_route(
    installation: Installation, scratch_database: str
) -> None:
    await purge(installation.admin_url, f"receipts.{ME}")
    database = Database.of_service(scratch_database, "registry")
    await database.open()
    broker, _ = messaging.build_broker("registry", installation.settings("registry", Settings))
    await broker.connect()
    try:
        routed, unroutable = receipt(1), receipt(2)
        async with database.pool.acquire() as conn, conn.transaction():
            await db.enqueue(
                conn,
                "registry",
                [db.Outgoing("receipts", ME, routed), db.Outgoing("receipts", "upt-nowhere", unroutable)],
            )
        relay = db.OutboxRelay(
            database.pool,
            "registry",
            outbox_publisher(broker, messaging.broker_user(installation.url_for("service", "registry"))),
        )
        assert await relay.relay_once() == 1
        rows = {r["message_id"]: r for r in await database.pool.fetch("SELECT * FROM outbox")}
        assert rows[routed.message_id]["published_at"] is not None
        stuck = rows[unroutable.message_id]
        assert stuck["published_at"] is None
        assert stuck["attempts"] == 1
        assert "NO_ROUTE" in stuck["last_error"] or "312" in stuck["last_error"]
        assert await relay.relay_once() == 0  # the failed row waits for its back-off, nothing is resent
        (message,) = await take(installation.admin_url, f"receipts.{ME}", count=1)
        assert body(message)["message_id"] == routed.message_id == message.message_id
        assert message.delivery_mode == 2  # persistent
    finally:
        await broker.stop()
        await database.close()


async def test_a_connection_given_back_keeps_nothing_of_the_message_it_served(scratch_database: str) -> None:
    """A handler prepares statements on its connection, gives it back, and may make the pool open a new one, all
    inside its message's context (FastStream keeps the decoded message in a context variable); nothing done then
    may keep that context alive: not a statement's expiry timer, not an idle connection's timer, not a new
    connection's socket callbacks (together they kept the last part of each of ten connections: a tenth of the
    consolidator's memory at rest). Three handlers on a pool of one connection at first: two connections are
    made inside their messages."""
    pool = await db.create_pool(scratch_database, schema="public", max_size=3)
    message: contextvars.ContextVar[object] = contextvars.ContextVar("message")

    class Part:
        pass

    parts: list[weakref.ref[Part]] = []

    async def handle() -> None:
        part = Part()
        parts.append(weakref.ref(part))
        message.set(part)
        async with pool.acquire() as conn:
            await conn.fetchval("SELECT 1")

    try:
        await asyncio.gather(*(asyncio.create_task(handle()) for _ in range(3)))
        await asyncio.sleep(0)
        gc.collect()
        assert [p() for p in parts] == [None, None, None]
    finally:
        await pool.close()


async def test_concurrent_claims_on_one_nik_always_see_each_other(scratch_database: str) -> None:
    database = Database.of_service(scratch_database, "dedup")
    await database.open()
    store = PostgresClaimStore(database)
    nik = "3273011503850007"
    seen: dict[str, list[str]] = {}

    def decide_for(name: str):  # type: ignore[no-untyped-def]
        def decide(existing: Sequence[Claim], seq: int) -> list[db.Outgoing]:
            seen[name] = [c.upt_id for c in existing]
            return []

        return decide

    async def claim(upt: str, person: str) -> None:
        await store.record_claims(f"m-{upt}", upt, ["1"], [Claim(upt, "1", nik, person)], decide_for(upt))

    try:
        for _ in range(5):
            await database.pool.execute("TRUNCATE nik_claims, inbox")
            seen.clear()
            await asyncio.gather(claim("upt-a", "BUDI|1985-03-15"), claim("upt-b", "SITI|1990-01-01"))
            # Whichever committed second must have read the first one's claim.
            assert sorted(len(v) for v in seen.values()) == [0, 1]
    finally:
        await database.close()


async def test_large_values_are_compressed_with_lz4_where_the_server_has_it(scratch_database: str) -> None:
    pool = await db.create_pool(scratch_database, schema="public", max_size=2)
    try:
        has_lz4 = await pool.fetchval(
            "SELECT 'lz4' = ANY(enumvals) FROM pg_settings WHERE name = 'default_toast_compression'"
        )
        await pool.execute("CREATE TABLE big (body bytea)")
        for _ in range(3):  # every connection of the pool, not only the first
            async with pool.acquire() as conn:
                await conn.execute(
                    "INSERT INTO big VALUES ($1)", b'{"records": [' + b'{"a": 1},' * 20_000 + b"]}"
                )
        methods = {r["m"] for r in await pool.fetch("SELECT pg_column_compression(body) AS m FROM big")}
        assert methods == ({"lz4"} if has_lz4 else {"pglz"})
    finally:
        await pool.close()

"""PostgreSQL: pools, versioned migrations per service schema, the inbox and the transactional outbox."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import hashlib
import json
import logging
import re
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from importlib.resources.abc import Traversable
from typing import TYPE_CHECKING, Any, TypeAlias, TypeVar
from urllib.parse import urlsplit, urlunsplit

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from shared import metrics
from shared.contracts import Message

log = logging.getLogger("simpul.db")
# A connection of our own or one borrowed from a pool; both run the same queries.
if TYPE_CHECKING:
    Conn: TypeAlias = asyncpg.Connection[asyncpg.Record] | PoolConnectionProxy[asyncpg.Record]
else:
    Conn = asyncpg.Connection
T = TypeVar("T")
_IDENT = re.compile(r"^[a-z_][a-z0-9_]*$")

# Failures a retry can cure: the server restarting, a dropped connection, a lost serialisation race.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    asyncio.TimeoutError,
    asyncpg.exceptions.PostgresConnectionError,
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.TooManyConnectionsError,
    asyncpg.exceptions.SerializationError,
    asyncpg.exceptions.DeadlockDetectedError,
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.ConnectionDoesNotExistError,
    asyncpg.exceptions.InterfaceError,
    # A connection whose server went away in the middle of an operation ("cannot switch to state ..; another
    # operation is in progress"), seen while the database refused connections: another connection succeeds.
    asyncpg.exceptions.InternalClientError,
)

MESSAGING_SQL = """
CREATE TABLE IF NOT EXISTS inbox (
    consumer    text        NOT NULL,
    message_id  text        NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, message_id)
);
CREATE INDEX IF NOT EXISTS inbox_received_at ON inbox (received_at);
CREATE TABLE IF NOT EXISTS outbox (
    id              bigserial   PRIMARY KEY,
    message_id      text        NOT NULL UNIQUE,
    exchange        text        NOT NULL,
    routing_key     text        NOT NULL,
    body            bytea       NOT NULL,
    headers         jsonb       NOT NULL DEFAULT '{}',
    created_at      timestamptz NOT NULL DEFAULT now(),
    attempts        integer     NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_error      text,
    published_at    timestamptz
);
CREATE INDEX IF NOT EXISTS outbox_pending ON outbox (next_attempt_at, id) WHERE published_at IS NULL;
"""
# The relay takes the oldest unpublished rows (ORDER BY id LIMIT n): in id order, so that a backlog of a run's
# feed (hundreds of thousands of rows) is not sorted again for every batch it takes. It replaces the index by
# next attempt, which no query reads in its order (each insert kept both up to date).
OUTBOX_ORDER_SQL = """
CREATE INDEX IF NOT EXISTS outbox_unpublished ON outbox (id) WHERE published_at IS NULL;
DROP INDEX IF EXISTS outbox_pending;
"""


def _ident(name: str) -> str:
    if not _IDENT.match(name):
        raise ValueError(f"not a safe SQL identifier: {name!r}")
    return name


def _encode_json(value: Any) -> str:
    # Text is taken as JSON already serialised (by pydantic, say); nothing here stores a bare JSON string.
    return value if isinstance(value, str) else json.dumps(value)


def _encode_jsonb(value: Any) -> bytes:
    return b"\x01" + _encode_json(value).encode()  # jsonb's binary format: a version byte, then the text


def _decode_jsonb(data: bytes) -> Any:
    return json.loads(data[1:])


async def _init_connection(conn: asyncpg.Connection) -> None:
    # Binary, so that COPY can carry jsonb columns too.
    await conn.set_type_codec(
        "jsonb", encoder=_encode_jsonb, decoder=_decode_jsonb, schema="pg_catalog", format="binary"
    )
    # Large values (a part's records in the outbox, staged snapshots) are compressed with LZ4 where the server
    # has it: several times cheaper than the default pglz, which cost the national day seconds of CPU.
    with contextlib.suppress(asyncpg.exceptions.InvalidParameterValueError):
        await conn.execute("SET default_toast_compression = lz4")


async def _keep_session(conn: asyncpg.Connection) -> None:
    """Released connections are not reset (a round trip per use): the services hold no session state (only
    transaction-scoped advisory locks; listeners are removed before release)."""


async def _connect_outside_any_message(*args: Any, **kwargs: Any) -> asyncpg.Connection:
    """A new connection made in an empty context: its socket's callbacks keep the context they were made in for
    the connection's whole life, and the pool makes connections when a handler asks for one, inside the
    handler's message's context (where FastStream holds the decoded message)."""
    return await asyncio.create_task(asyncpg.connect(*args, **kwargs), context=contextvars.Context())


async def create_pool(dsn: str, *, schema: str, min_size: int = 1, max_size: int = 10) -> asyncpg.Pool:
    """A pool whose connections see the service's own schema first.

    Nothing of the pool's keeps a message alive after its handler: whatever asyncpg schedules or registers
    keeps the context it was made in, and handlers use connections inside their message's context. Found by the
    soak (the consolidator held the decoded parts of about ten messages at rest, a tenth of its memory, more or
    less each day): new connections are made in an empty context, and asyncpg's timers are off (each prepared
    statement's expiry and each released connection's idle timeout, five minutes each). Statements stay cached
    (at most asyncpg's 100 per connection), connections stay open (at most `max_size`)."""
    pool = await asyncpg.create_pool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        connect=_connect_outside_any_message,
        init=_init_connection,
        reset=_keep_session,
        max_inactive_connection_lifetime=0,
        max_cached_statement_lifetime=0,
        server_settings={"search_path": f"{_ident(schema)},public", "application_name": f"simpul-{schema}"},
    )
    assert pool is not None
    return pool


def with_database(dsn: str, database: str) -> str:
    parts = urlsplit(dsn)
    return urlunsplit(parts._replace(path="/" + database))


async def ensure_database(dsn: str) -> bool:
    """Create the database named in the DSN if it is missing; True if it was created."""
    name = _ident(urlsplit(dsn).path.lstrip("/") or "postgres")
    admin = await asyncpg.connect(with_database(dsn, "postgres"))
    try:
        if await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            return False
        try:
            await admin.execute(f'CREATE DATABASE "{name}"')
        except asyncpg.exceptions.DuplicateDatabaseError:
            return False
        return True
    finally:
        await admin.close()


async def drop_database(dsn: str) -> None:
    name = _ident(urlsplit(dsn).path.lstrip("/"))
    admin = await asyncpg.connect(with_database(dsn, "postgres"))
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@dataclass(frozen=True)
class Migration:
    version: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def read_migrations(directory: Traversable) -> list[Migration]:
    """`NNNN_name.sql` files in version order; the inbox/outbox tables come first as `0000_messaging`."""
    files = sorted((f for f in directory.iterdir() if f.name.endswith(".sql")), key=lambda f: f.name)
    return [
        Migration("0000_messaging", MESSAGING_SQL),
        Migration("0000_messaging_order", OUTBOX_ORDER_SQL),
    ] + [Migration(f.name.removesuffix(".sql"), f.read_text(encoding="utf-8")) for f in files]


class MigrationsPending(RuntimeError):
    """Migrations are missing and this connection's role may not apply them: provisioning must."""


async def _applied_migrations(conn: Conn, schema: str) -> dict[str, str] | None:
    """Version -> checksum of what was applied, or None before the first migration (no DDL either way)."""
    exists = await conn.fetchval(
        "SELECT true FROM pg_catalog.pg_tables WHERE schemaname = $1 AND tablename = 'schema_migrations'",
        schema,
    )
    if not exists:
        return None
    try:
        rows = await conn.fetch(f"SELECT version, checksum FROM {schema}.schema_migrations")
    except asyncpg.exceptions.InsufficientPrivilegeError as exc:
        raise MigrationsPending(
            f"this database role may not read {schema}.schema_migrations: run the provisioning "
            "(`make provision`), which grants the service's role its schema"
        ) from exc
    return {r["version"]: r["checksum"] for r in rows}


async def _may_create(conn: Conn, schema: str) -> bool:
    """Whether this role could create the schema's objects (a superuser or its owner always can)."""
    return bool(
        await conn.fetchval(
            "SELECT CASE WHEN n.oid IS NULL THEN has_database_privilege(current_database(), 'CREATE') "
            "ELSE has_schema_privilege(n.oid, 'CREATE') END "
            "FROM (SELECT 1) AS one LEFT JOIN pg_catalog.pg_namespace n ON n.nspname = $1",
            schema,
        )
    )


async def apply_migrations(pool: asyncpg.Pool, schema: str, migrations: Sequence[Migration]) -> list[str]:
    """Apply what is missing, each in its own transaction, under a lock so parallel starts take turns.

    A migration is immutable once applied: a changed file fails loudly instead of drifting silently. When
    everything is applied nothing is created, so a service's own role without CREATE privilege can start;
    when something is missing and the role may not create, it fails telling the operator to provision.
    """
    schema = _ident(schema)
    applied: list[str] = []
    async with pool.acquire() as conn:
        await conn.execute("SELECT pg_advisory_lock(hashtext($1))", f"simpul-migrate-{schema}")
        try:
            done = await _applied_migrations(conn, schema)
            for m in migrations:
                if done and m.version in done and done[m.version] != m.checksum:
                    raise RuntimeError(f"migration {schema}/{m.version} changed after it was applied")
            missing = [m for m in migrations if done is None or m.version not in done]
            if done is not None and not missing:
                return []
            if not await _may_create(conn, schema):
                first = missing[0].version if missing else "schema_migrations"
                raise MigrationsPending(
                    f"schema {schema} is not migrated ({len(missing)} missing, {first} first) and this "
                    "database role may not migrate it: run the provisioning (`make provision`)"
                )
            if done is None:
                await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
                await conn.execute(
                    f"CREATE TABLE IF NOT EXISTS {schema}.schema_migrations (version text PRIMARY KEY,"
                    " checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
                )
            for m in missing:
                async with conn.transaction():
                    await conn.execute(f"SET LOCAL search_path = {schema}, public")
                    try:
                        await conn.execute(m.sql)
                    except asyncpg.exceptions.InsufficientPrivilegeError as exc:
                        raise MigrationsPending(
                            f"migration {schema}/{m.version} needs privileges this database role lacks: "
                            "run the provisioning (`make provision`)"
                        ) from exc
                    await conn.execute(
                        f"INSERT INTO {schema}.schema_migrations (version, checksum) VALUES ($1, $2)",
                        m.version,
                        m.checksum,
                    )
                applied.append(m.version)
        finally:
            await conn.execute("SELECT pg_advisory_unlock(hashtext($1))", f"simpul-migrate-{schema}")
    if applied:
        log.info("migrations applied", extra={"schema": schema, "versions": applied})
    return applied


async def retrying(
    operation: Callable[[], Awaitable[T]],
    *,
    attempts: int = 6,
    first_delay: float = 0.5,
    what: str = "",
) -> T:
    """Run an operation, retrying transient database failures with exponential backoff."""
    delay = first_delay
    for attempt in range(1, attempts + 1):
        try:
            return await operation()
        except TRANSIENT_ERRORS as exc:
            if attempt == attempts:
                raise
            log.warning(
                "transient database failure, retrying",
                extra={"what": what, "attempt": attempt, "error": repr(exc)},
            )
        # The wait is outside the handler: an exception kept through it (with its traceback, the frames and
        # whatever they hold) outlives the young collections, and dies later in the collector's oldest generation.
        # Its frames are left alone (the memory pass collects what they hold): the same exception object can reach
        # several tasks (the members of one transaction), and clearing a frame of one still suspended closes it.
        await asyncio.sleep(delay)
        delay = min(delay * 2, 10.0)
    raise AssertionError("unreachable")


# --- inbox and outbox -----------------------------------------------------------------------------------


async def claim(conn: Conn, consumer: str, message_id: str) -> bool:
    """Record a message as consumed inside the caller's transaction; False if it was consumed before.

    Two concurrent copies of one message serialise on the primary key: the second waits, then gets False.
    """
    return bool(
        await conn.fetchval(
            "INSERT INTO inbox (consumer, message_id) VALUES ($1, $2) ON CONFLICT DO NOTHING RETURNING true",
            consumer,
            message_id,
        )
    )


@dataclass(frozen=True)
class Outgoing:
    """A message to publish once the transaction that produced it commits."""

    exchange: str
    routing_key: str
    message: Message
    body: bytes | None = None  # the message already serialised, when the caller has it

    def row(self) -> tuple[str, str, str, bytes, dict[str, Any]]:
        return (
            self.message.message_id,
            self.exchange,
            self.routing_key,
            self.body if self.body is not None else self.message.model_dump_json().encode(),
            {"schema_version": self.message.schema_version},
        )


async def enqueue(conn: Conn, schema: str, messages: Iterable[Outgoing]) -> int:
    """Write messages to the outbox in the caller's transaction and wake the relay at commit."""
    rows = [m.row() for m in messages]
    if not rows:
        return 0
    ids, exchanges, keys, bodies, headers = zip(*rows, strict=True)
    # One round trip: the rows and the wake-up (delivered at commit).
    await conn.execute(
        "WITH written AS (INSERT INTO outbox (message_id, exchange, routing_key, body, headers) "
        "SELECT m, e, k, b, h::jsonb FROM unnest($1::text[], $2::text[], $3::text[], $4::bytea[], $5::text[]) "
        "AS t(m, e, k, b, h) ON CONFLICT (message_id) DO NOTHING) SELECT pg_notify($6, '')",
        list(ids),
        list(exchanges),
        list(keys),
        list(bodies),
        [json.dumps(h) for h in headers],
        f"{_ident(schema)}_outbox",
    )
    return len(rows)


@dataclass(frozen=True)
class OutboxRow:
    id: int
    message_id: str
    exchange: str
    routing_key: str
    body: bytes
    headers: dict[str, Any]
    created_at: datetime


Publisher = Callable[[OutboxRow], Awaitable[None]]


class OutboxRelay:
    """Publishes outbox rows with confirms and marks them sent; a crash in between republishes (same ids)."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        schema: str,
        publish: Publisher,
        *,
        batch_size: int = 500,
        concurrency: int = 64,
        poll_interval: float = 1.0,
        retention_days: int = 7,
    ) -> None:
        self.pool = pool
        self.schema = _ident(schema)
        self.publish = publish
        self.batch_size = batch_size
        self.concurrency = concurrency
        self.poll_interval = poll_interval
        self.retention_days = retention_days
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self.published = 0

    async def relay_once(self) -> int:
        """Publish one batch of due rows; returns how many were published."""
        async with self.pool.acquire() as conn, conn.transaction():
            # Planned for the outbox as it is now, never from a cached generic plan: once, with a run's feed of
            # 270,000 rows in the outbox, every batch of this query spilled a sort of the whole table (300 rows
            # a second), where the same query planned afresh walked the unpublished index (15 ms).
            await conn.execute("SET LOCAL plan_cache_mode = force_custom_plan")
            rows = await conn.fetch(
                "SELECT id, message_id, exchange, routing_key, body, headers, created_at FROM outbox "
                "WHERE published_at IS NULL AND next_attempt_at <= now() "
                "ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED",
                self.batch_size,
            )
            if not rows:
                return 0
            gate = asyncio.Semaphore(self.concurrency)

            async def send(row: asyncpg.Record) -> str | None:
                async with gate:
                    try:
                        await self.publish(OutboxRow(**dict(row)))
                        return None
                    except Exception as exc:
                        return repr(exc)[:500]

            errors = await asyncio.gather(*(send(r) for r in rows))
            sent = [r["id"] for r, e in zip(rows, errors, strict=True) if e is None]
            failed = [(r["id"], e) for r, e in zip(rows, errors, strict=True) if e is not None]
            if sent:
                await conn.execute(
                    "UPDATE outbox SET published_at = now() WHERE id = ANY($1::bigint[])", sent
                )
            for row_id, error in failed:
                await conn.execute(
                    "UPDATE outbox SET attempts = attempts + 1, last_error = $2, "
                    "next_attempt_at = now() + least(interval '1 second' * power(2, attempts), "
                    "interval '5 minutes') WHERE id = $1",
                    row_id,
                    error,
                )
            if failed:
                log.warning(
                    "outbox rows not published, will retry",
                    extra={"schema": self.schema, "failed": len(failed), "error": failed[0][1]},
                )
            self.published += len(sent)
            metrics.OUTBOX_PUBLISHED.labels(self.schema).inc(len(sent))
            return len(sent)

    async def pending(self) -> int:
        return int(await self.pool.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL"))

    async def prune(self) -> None:
        async with self.pool.acquire() as conn:
            await conn.execute(
                "DELETE FROM outbox WHERE published_at < now() - make_interval(days => $1)",
                self.retention_days,
            )
            await conn.execute(
                "DELETE FROM inbox WHERE received_at < now() - make_interval(days => $1)",
                2 * self.retention_days,
            )

    def _on_notify(self, *_: object) -> None:
        self._wake.set()

    async def _listen(self) -> PoolConnectionProxy[asyncpg.Record]:
        conn = await self.pool.acquire()
        await conn.add_listener(f"{self.schema}_outbox", self._on_notify)
        return conn

    async def _run(self) -> None:
        listener: PoolConnectionProxy[asyncpg.Record] | None = None
        last_prune = 0.0
        loop = asyncio.get_running_loop()
        while not self._stopping:
            try:
                if listener is None or listener.is_closed():
                    listener = await self._listen()
                while await self.relay_once() and not self._stopping:
                    pass
                if loop.time() - last_prune > 600:
                    await self.prune()
                    last_prune = loop.time()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("outbox relay pass failed", extra={"schema": self.schema})
                await self._release(listener)
                listener = None
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.poll_interval)
        await self._release(listener)

    async def _release(self, conn: PoolConnectionProxy[asyncpg.Record] | None) -> None:
        if conn is not None:
            try:
                await conn.remove_listener(f"{self.schema}_outbox", self._on_notify)
                await self.pool.release(conn)
            except Exception:  # a broken connection is discarded by the pool anyway
                log.debug("listener release failed", exc_info=True)
        return None

    def start(self) -> None:
        self._stopping = False
        self._task = asyncio.create_task(self._run(), name=f"outbox-relay-{self.schema}")

    def wake(self) -> None:
        self._wake.set()

    async def stop(self) -> None:
        """Finish the batch in flight, then stop."""
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            try:
                await asyncio.wait_for(self._task, timeout=30)
            except TimeoutError:
                self._task.cancel()
            self._task = None

"""What every service process does around its handlers: database, outbox relay, health, graceful stop."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from importlib import resources
from importlib.resources.abc import Traversable
from typing import Any

import asyncpg
from faststream import FastStream
from faststream.rabbit import RabbitBroker, RabbitExchange
from faststream.specification import AsyncAPI

from shared import db, messaging
from shared.health import HealthServer
from shared.settings import ServiceSettings

log = logging.getLogger("simpul.runtime")
Clock = Callable[[], datetime]


def utcnow() -> datetime:
    """The clock handlers use unless a test gives them another."""
    return datetime.now(UTC)


class Database:
    """A service's own schema: pool, migrations at start, and the relay that empties its outbox."""

    def __init__(self, dsn: str, schema: str, migrations: Traversable, *, max_size: int = 10) -> None:
        self.dsn = dsn
        self.schema = schema
        self.migrations = migrations
        self.max_size = max_size
        self._pool: asyncpg.Pool | None = None

    @property
    def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise RuntimeError(f"database for schema {self.schema} is not open")
        return self._pool

    @classmethod
    def of_service(cls, dsn: str, service: str) -> Database:
        """The schema named after the service, with the migrations in services/<service>/migrations."""
        return cls(dsn, service, resources.files(f"services.{service}") / "migrations")

    async def open(self) -> None:
        self._pool = await db.retrying(
            lambda: db.create_pool(self.dsn, schema=self.schema, max_size=self.max_size),
            attempts=10,
            what=f"connect {self.schema}",
        )
        await db.apply_migrations(self.pool, self.schema, db.read_migrations(self.migrations))

    async def close(self, timeout: float = 10.0) -> None:
        """Close the pool once its connections are back; after `timeout`, close them anyway (a connection still
        held by work that did not stop must not keep the service from exiting)."""
        pool, self._pool = self._pool, None
        if pool is None:
            return
        try:
            await asyncio.wait_for(pool.close(), timeout)
        except TimeoutError:
            log.warning("database connections still in use at shutdown; closed", extra={"seconds": timeout})
            pool.terminate()

    async def ping(self) -> bool:
        return bool(await self.pool.fetchval("SELECT 1"))


def outbox_publisher(broker: RabbitBroker, user_id: str) -> db.Publisher:
    exchanges: dict[str, RabbitExchange] = {}

    async def publish(row: db.OutboxRow) -> None:
        target = exchanges.setdefault(row.exchange, messaging.exchange(row.exchange))  # type: ignore[arg-type]
        await messaging.publish_raw(
            broker,
            row.body,
            exchange=target,
            routing_key=row.routing_key,
            message_id=row.message_id,
            user_id=user_id,
            headers=row.headers,
            timestamp=row.created_at,
        )

    return publish


def build_service_app(
    *,
    service: str,
    settings: ServiceSettings,
    broker: RabbitBroker,
    database: Database | None,
    description: str,
    extra_checks: Mapping[str, Callable[[], Awaitable[bool]]] | None = None,
    on_opened: Callable[[], Awaitable[None]] | None = None,
    on_started: Callable[[], Awaitable[None]] | None = None,
    on_stopping: Callable[[], Awaitable[None]] | None = None,
    details: Callable[[], Mapping[str, Any]] | None = None,
    route_outbox: Callable[[db.Publisher], db.Publisher] | None = None,
    on_closing: Callable[[], Awaitable[None]] | None = None,
) -> FastStream:
    """The FastStream app of one service with start-up and graceful shutdown in the right order.

    Start: database and migrations, relay, then the broker consumes. Stop: consumers finish what they hold
    (the rest is requeued unacked), the relay publishes what those handlers committed, then connections close.
    `route_outbox` wraps the relay's AMQP publisher (to send some rows another way); `on_closing` runs after
    the relay's last batch, before the database closes.
    """
    relay: db.OutboxRelay | None = None
    health: HealthServer | None = None

    async def broker_ready() -> bool:
        return bool(await broker.ping(timeout=2))

    checks: dict[str, Callable[[], Awaitable[bool]]] = {"broker": broker_ready}
    if database is not None:
        checks["database"] = database.ping
    checks |= dict(extra_checks or {})

    @asynccontextmanager
    async def lifespan() -> AsyncIterator[None]:
        nonlocal relay, health
        if database is not None:
            await database.open()
            publisher = outbox_publisher(broker, messaging.broker_user(settings.amqp_url))
            relay = db.OutboxRelay(
                database.pool,
                database.schema,
                route_outbox(publisher) if route_outbox is not None else publisher,
                # A whole batch in flight: a stream (central.records) confirms only once a chunk is on disk,
                # so 64 at a time capped the central feed at about 200 messages a second.
                concurrency=500,
            )
        if settings.health_port:
            health = HealthServer(settings.health_host, settings.health_port, checks, details)
            await health.start()
        if on_opened is not None:  # after the database, before anything is consumed (e.g. loading state)
            await on_opened()
        try:
            yield
        finally:
            if health is not None:
                await health.stop()
            if on_closing is not None:
                await on_closing()
            if database is not None:
                await database.close()
            log.info("stopped", extra={"service": service})

    async def after_startup() -> None:
        if relay is not None:
            relay.start()
        if on_started is not None:
            await on_started()
        log.info("ready", extra={"service": service, "broker": messaging.broker_user(settings.amqp_url)})

    async def on_shutdown() -> None:
        log.info("stopping: finishing in-flight messages", extra={"service": service})
        for subscriber in broker.subscribers:
            await subscriber.stop()
        if on_stopping is not None:
            await on_stopping()
        if relay is not None:
            await relay.stop()
            await relay.relay_once()

    return FastStream(
        broker,
        lifespan=lifespan,
        after_startup=[after_startup],
        on_shutdown=[on_shutdown],
        logger=logging.getLogger(f"simpul.{service}"),
        specification=AsyncAPI(title=f"simpul {service}", version="1.0.0", description=description),
    )


def tune_garbage_collector() -> None:
    """Fewer, cheaper collections: the services parse parts of hundreds of records into short-lived objects,
    and with the default thresholds the collector rescans every long-lived object (modules, models, region
    tables) over and over; measured at a quarter of the registry's record checks. Everything loaded at start
    is moved out of the collector's sight; the young generation may grow to 50,000 objects."""
    import gc

    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)


M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter (malloc.h)
MMAP_THRESHOLD = 128 * 1024
COLLECT_EVERY_SECONDS = 60.0


def memory_returner() -> Callable[[], object]:
    """What hands the heap's free pages back to the system: jemalloc's purge of every arena where the service
    runs on it (shared.allocator), else glibc's `malloc_trim` (elsewhere nothing), with glibc's threshold for
    blocks mapped on their own fixed at 128 KiB: after a large block (a part's body) is freed, glibc otherwise
    raises that threshold, and later parts are carved from the shared heap, leaving holes in it that stay
    resident."""
    import ctypes
    import ctypes.util

    from shared.allocator import jemalloc_purger

    purge = jemalloc_purger()
    if purge is not None:  # the services' allocator (shared.allocator): its unused pages, all arenas
        return purge
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt, malloc_trim = libc.mallopt, libc.malloc_trim
    except (OSError, AttributeError):
        return lambda: None  # not glibc (musl, macOS): nothing to tune
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    malloc_trim.argtypes, malloc_trim.restype = [ctypes.c_size_t], ctypes.c_int
    mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)
    return lambda: malloc_trim(0)


async def keep_memory_returned(every: float = COLLECT_EVERY_SECONDS) -> None:
    """Every `every` seconds, a full garbage collection, then the freed pages back to the system: a service's
    resident size follows what it holds (bench.soak measures it day after day).

    Why a full collection by hand: with `tune_garbage_collector`'s thresholds the collector's oldest generation
    is examined only after about a hundred million allocations, weeks of a service's life. What dies there in
    the meantime stays: an exception caught during a fault is kept (with its traceback, frames and the part
    they held) while its handler waits to retry, long enough to be promoted, and becomes garbage only later."""
    import gc

    from shared.allocator import jemalloc_allocated_mb

    give_back = memory_returner()
    while True:
        await asyncio.sleep(every)
        began = time.monotonic()
        found = gc.collect()
        give_back()
        log.info(
            "memory returned",
            extra={
                "collected": found,
                # the live heap: jemalloc's allocated MB, or CPython's allocated blocks where it allocates
                "heap_mb": jemalloc_allocated_mb(),
                "blocks": sys.getallocatedblocks() or None,
                "rss_mb": resident_mb(),
                "seconds": round(time.monotonic() - began, 3),
                # only when started with PYTHONTRACEMALLOC=<frames> (slow: for finding what a service holds)
                "held_by": held_by(),
                # only with MEMORY_CENSUS=1 (about a second a pass: for finding what a service holds at scale)
                "census": census() if os.environ.get("MEMORY_CENSUS") == "1" else None,
                "held_through": held_through(kind)
                if (kind := os.environ.get("MEMORY_HELD_THROUGH"))
                else None,
            },
        )


def held_by(lines: int = 10) -> list[str] | None:
    """Where the memory held now was allocated, the largest `lines` places first ("place KiB"), when Python
    traces its allocations (PYTHONTRACEMALLOC=<frames>); else None. With one frame a place is the allocating
    source line; with more, the project's own line nearest the allocation, then the allocating line (what a
    library allocated on the project's behalf is told by the project line that asked for it)."""
    import tracemalloc
    from collections import Counter
    from pathlib import Path

    if not tracemalloc.is_tracing():
        return None
    ours = str(Path(__file__).resolve().parents[1])
    sizes: Counter[str] = Counter()
    for trace in tracemalloc.take_snapshot().traces:
        frames = list(reversed(trace.traceback))  # the allocating frame first
        allocated = f"{frames[0].filename}:{frames[0].lineno}"
        own = next(
            (f for f in frames if f.filename.startswith(ours) and "site-packages" not in f.filename), None
        )
        place = (
            allocated if own is None or own is frames[0] else f"{own.filename}:{own.lineno} <- {allocated}"
        )
        sizes[place] += trace.size
    return [f"{place} {size // 1024}" for place, size in sizes.most_common(lines)]


def _kind(thing: object) -> str:
    return f"{type(thing).__module__}.{type(thing).__qualname__}"


def census(lines: int = 10) -> list[str]:
    """The kinds of object the garbage collector tracks (containers: a str or bytes is counted in what holds
    it), the most numerous first: "kind count MB" (MB: their own sizes, not what they refer to)."""
    import gc
    from collections import Counter

    counts: Counter[str] = Counter()
    sizes: Counter[str] = Counter()
    for thing in gc.get_objects():
        kind = _kind(thing)
        counts[kind] += 1
        sizes[kind] += sys.getsizeof(thing)
    return [f"{kind} {n} {sizes[kind] / 1e6:.1f}" for kind, n in counts.most_common(lines)]


def held_through(kind: str, depth: int = 15) -> list[str] | None:
    """What keeps one object of `kind` ("module.QualName") alive: its referrers upwards, one per level (the
    first that is not this function's own), as their kinds ("dict[key]" names the key holding the one below);
    None when no such object is alive. Slow (a scan of every object per level): for finding what a service
    keeps (MEMORY_HELD_THROUGH=<kind>)."""
    import gc
    import types

    target = None
    for thing in gc.get_objects():  # plain loops: a comprehension's closure cells would show as referrers
        if _kind(thing) == kind:
            target = thing
            break
    if target is None:
        return None
    own = {id(target)}
    chain: list[str] = []
    current = target
    for _ in range(depth):
        referrers = gc.get_referrers(current)
        own.add(id(referrers))
        parent = None
        for referrer in referrers:
            if id(referrer) not in own and not isinstance(referrer, types.FrameType):
                parent = referrer
                break
        if parent is None:
            chain.append("(only frames)")
            break
        own.add(id(parent))
        label = _kind(parent)
        if isinstance(parent, dict):
            for key, value in parent.items():
                if value is current:
                    label += f"[{key!r}]"
                    break
        chain.append(label)
        if isinstance(parent, types.ModuleType | type) or (isinstance(parent, dict) and "__spec__" in parent):
            break  # a module, its globals, or a class
        current = parent
    return chain


def resident_mb() -> int | None:
    """This process's resident memory in MB (Linux), None elsewhere."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 2**20
    except (OSError, ValueError, IndexError):
        return None


async def serve(app: FastStream) -> None:
    """The app until it stops, with its memory kept returned."""
    keeper = asyncio.create_task(keep_memory_returned(), name="keep-memory-returned")
    try:
        await app.run()
    finally:
        keeper.cancel()


def run_service(
    service: str,
    settings_type: type[ServiceSettings],
    build_app: Callable[[Any], FastStream],
) -> None:
    """`python -m services.<name>`: read the environment once, log, run until SIGINT/SIGTERM."""
    import asyncio
    import sys

    from shared import allocator
    from shared.logging import configure_logging
    from shared.settings import redact_url

    settings = settings_type()
    configure_logging(service, level=settings.log_level, json=settings.log_json)
    log.info(
        "starting",
        extra={
            "service": service,
            "allocator": allocator.in_use(),
            "amqp_url": redact_url(settings.amqp_url),
            "database_url": redact_url(settings.database_url),
        },
    )
    app = build_app(settings)
    tune_garbage_collector()
    try:
        asyncio.run(serve(app))
    except KeyboardInterrupt:
        pass
    except Exception as exc:  # a clear last line instead of a bare traceback for operators
        log.critical("could not run", exc_info=exc, extra={"service": service})
        sys.exit(1)

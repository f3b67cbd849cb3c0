"""Where status events land: one unit of work per message, and the log of live events every instance follows."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import date, datetime
from typing import Any, Protocol

from shared import db
from shared.contracts import AdjudicationCaseChanged, CentralInmatesUpdated
from shared.runtime import Database

from .domain.alerts import Alert
from .domain.cases import CaseState, DecisionRequest
from .domain.live import LiveEvent
from .domain.runs import LineSeen, RunSeen
from .domain.status import CaptureSeen, PartSeen, RefusalSeen
from .store import DeadLetterSeen, office_rows, unit_rows

CONSUMER = "monitor.status"
LIVE_CHANNEL = "monitor_live"
_LIVE_LOCK = "monitor.live_events"


class Stores(Protocol):
    """What a use case may load and save inside one transaction."""

    async def claim(self, message_id: str) -> bool:
        """Record the message as consumed; False if it was consumed before (then change nothing)."""

    def live(self, *events: LiveEvent) -> None:
        """Events to log (and show) once the transaction commits."""

    async def take_live_turn(self) -> None:
        """From here to its commit, no other transaction logs live events; what is read after this sees every
        change whose events were logged before. Read a view for an event only after this: two transactions
        changing one UPT would otherwise each log a row without the other's change, the later one last."""

    async def save_part(self, part: PartSeen) -> None: ...
    async def count_refusal(self, refusal: RefusalSeen) -> None: ...
    async def save_central(self, totals: CentralInmatesUpdated) -> None:
        """Keep the newest announcement per UPT (by version): they can overtake each other."""

    async def save_capture(self, capture: CaptureSeen) -> None: ...
    async def count_ektp_refusal(self, refusal: RefusalSeen) -> None: ...
    async def save_dead_letter(self, letter: DeadLetterSeen) -> bool:
        """False if this dead letter was seen before."""

    async def dead_letters_since(self, since: datetime) -> int: ...
    async def save_run(self, run: RunSeen) -> dict[str, Any] | None:
        """Keep the run as this event says unless an event further on was kept; the run as kept, or None when
        this event changed nothing."""

    async def save_run_line(self, line: LineSeen) -> None: ...
    async def save_service_seen(self, service: str, at: datetime) -> None:
        """The service's latest message (the newer time wins)."""

    def send(self, *messages: db.Outgoing) -> None:
        """Messages to publish once the transaction commits (the outbox)."""

    async def open_alert_keys(self) -> set[str]: ...
    async def save_case(self, case: AdjudicationCaseChanged) -> bool:
        """An opened case kept (again, if dedup reopened it); a decided one closes it. False if nothing changed."""

    async def load_case(self, kabkota: str, packet_id: str) -> CaseState: ...
    async def save_request(self, request: DecisionRequest, at: datetime) -> None: ...
    async def open_alert(self, alert: Alert, at: datetime) -> bool:
        """False if it is open already (another instance opened it)."""

    async def close_alert(self, key: str, at: datetime) -> Alert | None:
        """The alert closed now, or None if it was not open."""

    async def unit_row(self, upt_id: str, day: date) -> dict[str, Any] | None:
        """The UPT's day as every page shows it, read inside the transaction (for its live event)."""

    async def office_row(
        self, kabkota: str, day: date
    ) -> tuple[dict[str, Any], dict[str, int], int] | None: ...
    async def kanwil_of(self, upt_id: str) -> str | None: ...


UnitOfWork = Callable[[], AbstractAsyncContextManager[Stores]]


class LiveLog(Protocol):
    async def bounds(self) -> tuple[int | None, int]:
        """(oldest id kept or None when empty, newest id given: 0 before the first)."""

    async def since(self, after: int, limit: int) -> list[LiveEvent]:
        """Events after `after`, in order, at most `limit`."""

    async def prune(self, keep_hours: float) -> int: ...

    def listening(self, on_change: Callable[[], None]) -> AbstractAsyncContextManager[Follower]:
        """While inside, `on_change` is called whenever events may have been logged; the follower reads them on
        a connection of its own (the handlers' transactions may hold every pooled one)."""


class Follower(Protocol):
    async def since(self, after: int, limit: int) -> list[LiveEvent]: ...


class PostgresStores:
    def __init__(self, conn: db.Conn, *, live_turn_taken: bool = False) -> None:
        self.conn = conn
        self.live_turn_taken = live_turn_taken
        self.events: list[LiveEvent] = []
        self.outgoing: list[db.Outgoing] = []

    def send(self, *messages: db.Outgoing) -> None:
        self.outgoing.extend(messages)

    async def save_case(self, c: AdjudicationCaseChanged) -> bool:
        if c.state == "opened":
            detail = c.model_dump(
                mode="json", exclude={"message_id", "produced_at", "decision", "operator", "reason"}
            )
            status = await self.conn.execute(
                "INSERT INTO cases AS x (kabkota, packet_id, opened_at, detail) VALUES ($1, $2, $3, $4) "
                "ON CONFLICT (kabkota, packet_id) DO UPDATE SET opened_at = EXCLUDED.opened_at, "
                "detail = EXCLUDED.detail, requested = NULL, requested_by = NULL, requested_at = NULL, "
                "decision = NULL, operator = NULL, reason = NULL, decided_at = NULL "
                "WHERE x.decided_at IS NOT NULL AND x.decided_at < EXCLUDED.opened_at",
                c.kabkota, c.packet_id, c.produced_at, detail,
            )  # fmt: skip
        else:
            status = await self.conn.execute(
                "UPDATE cases SET decision = $3, operator = $4, reason = $5, decided_at = $6 "
                "WHERE kabkota = $1 AND packet_id = $2 AND decision IS NULL",
                c.kabkota, c.packet_id, c.decision, c.operator, c.reason, c.produced_at,
            )  # fmt: skip
        return not status.endswith(" 0")

    async def load_case(self, kabkota: str, packet_id: str) -> CaseState:
        row = await self.conn.fetchrow(
            "SELECT decision, requested FROM cases WHERE kabkota = $1 AND packet_id = $2 FOR UPDATE",
            kabkota,
            packet_id,
        )
        if row is None:
            return CaseState(known=False, decided=False)
        return CaseState(known=True, decided=row["decision"] is not None, requested=row["requested"])

    async def save_request(self, r: DecisionRequest, at: datetime) -> None:
        await self.conn.execute(
            "UPDATE cases SET requested = $3, requested_by = $4, requested_at = $5 "
            "WHERE kabkota = $1 AND packet_id = $2",
            r.kabkota, r.packet_id, r.decision, r.operator, at,
        )  # fmt: skip

    async def open_alert_keys(self) -> set[str]:
        return {r["key"] for r in await self.conn.fetch("SELECT key FROM alerts WHERE closed_at IS NULL")}

    async def open_alert(self, a: Alert, at: datetime) -> bool:
        row = await self.conn.fetchval(
            "INSERT INTO alerts AS x (key, kind, severity, text_id, text_en, unit_id, kanwil_id, centre_only, "
            "opened_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (key) DO UPDATE SET "
            "closed_at = NULL, opened_at = EXCLUDED.opened_at, text_id = EXCLUDED.text_id, text_en = EXCLUDED.text_en "
            "WHERE x.closed_at IS NOT NULL RETURNING key",
            a.key, a.kind, a.severity, a.text_id, a.text_en, a.unit_id, a.kanwil_id, a.centre_only, at,
        )  # fmt: skip
        return row is not None

    async def close_alert(self, key: str, at: datetime) -> Alert | None:
        row = await self.conn.fetchrow(
            "UPDATE alerts SET closed_at = $2 WHERE key = $1 AND closed_at IS NULL "
            "RETURNING key, kind, severity, text_id, text_en, unit_id, kanwil_id, centre_only",
            key,
            at,
        )
        return None if row is None else Alert(**dict(row))

    async def claim(self, message_id: str) -> bool:
        return await db.claim(self.conn, CONSUMER, message_id)

    def live(self, *events: LiveEvent) -> None:
        self.events.extend(events)

    async def take_live_turn(self) -> None:
        if not self.live_turn_taken:
            await self.conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", _LIVE_LOCK)
            self.live_turn_taken = True

    async def save_part(self, p: PartSeen) -> None:
        await self.conn.execute(
            "INSERT INTO submission_parts (upt_id, day, snapshot, part, parts, status, received, accepted, "
            "rejected, warnings, received_at, lateness) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, "
            "$12) ON CONFLICT (upt_id, day, snapshot, part) DO UPDATE SET parts = EXCLUDED.parts, "
            "status = EXCLUDED.status, received = EXCLUDED.received, accepted = EXCLUDED.accepted, "
            "rejected = EXCLUDED.rejected, warnings = EXCLUDED.warnings, received_at = EXCLUDED.received_at, "
            "lateness = EXCLUDED.lateness",
            p.upt_id, p.day, p.snapshot, p.part, p.parts, p.status, p.received, p.accepted, p.rejected,
            p.warnings, p.received_at, p.lateness,
        )  # fmt: skip

    async def count_refusal(self, refusal: RefusalSeen) -> None:
        await self.conn.execute(
            "INSERT INTO refusals (upt_id, day, count) VALUES ($1, $2, 1) "
            "ON CONFLICT (upt_id, day) DO UPDATE SET count = refusals.count + 1",
            refusal.unit_id,
            refusal.day,
        )

    async def save_central(self, t: CentralInmatesUpdated) -> None:
        await self.conn.execute(
            "INSERT INTO central_totals AS c (upt_id, central_total, flagged_total, as_of, version) "
            "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (upt_id) DO UPDATE SET "
            "central_total = EXCLUDED.central_total, flagged_total = EXCLUDED.flagged_total, "
            "as_of = EXCLUDED.as_of, version = EXCLUDED.version WHERE c.version < EXCLUDED.version",
            t.upt_id, t.central_total, t.flagged_total, t.as_of, t.version,
        )  # fmt: skip

    async def save_capture(self, c: CaptureSeen) -> None:
        await self.conn.execute(
            "INSERT INTO ektp_captures AS c (kabkota, packet_id, status, changed_at, sent_at, received_at, "
            "verdict_at, code, nik_masked) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) "
            "ON CONFLICT (kabkota, packet_id) DO UPDATE SET "
            # the latest move wins the status; each milestone keeps the first time it was reached
            "status = CASE WHEN c.changed_at <= EXCLUDED.changed_at THEN EXCLUDED.status ELSE c.status END, "
            "code = CASE WHEN c.changed_at <= EXCLUDED.changed_at THEN EXCLUDED.code ELSE c.code END, "
            "changed_at = greatest(c.changed_at, EXCLUDED.changed_at), "
            "sent_at = least(c.sent_at, EXCLUDED.sent_at), received_at = least(c.received_at, EXCLUDED.received_at), "
            "verdict_at = least(c.verdict_at, EXCLUDED.verdict_at), "
            "nik_masked = coalesce(EXCLUDED.nik_masked, c.nik_masked)",
            c.kabkota, c.packet_id, c.status, c.changed_at, c.sent_at, c.received_at, c.verdict_at, c.code,
            c.nik_masked,
        )  # fmt: skip

    async def count_ektp_refusal(self, refusal: RefusalSeen) -> None:
        await self.conn.execute(
            "INSERT INTO ektp_refusals (kabkota, day, count) VALUES ($1, $2, 1) "
            "ON CONFLICT (kabkota, day) DO UPDATE SET count = ektp_refusals.count + 1",
            refusal.unit_id,
            refusal.day,
        )

    async def save_dead_letter(self, d: DeadLetterSeen) -> bool:
        status = await self.conn.execute(
            "INSERT INTO dead_letters (message_id, reason, detail, service, queue, routing_key, sender) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (message_id) DO NOTHING",
            d.message_id, d.reason, d.detail, d.service, d.queue, d.routing_key, d.sender,
        )  # fmt: skip
        return bool(status.endswith(" 1"))

    async def dead_letters_since(self, since: datetime) -> int:
        return int(await self.conn.fetchval("SELECT count(*) FROM dead_letters WHERE dead_at >= $1", since))

    async def save_run(self, r: RunSeen) -> dict[str, Any] | None:
        rank = "CASE WHEN {t}.state IN ('finished', 'failed') THEN 1000 ELSE {t}.steps_done END"
        row = await self.conn.fetchrow(
            "INSERT INTO runs AS r (run_id, day, state, trigger, requested_by, step, steps_done, steps_total, code, "
            "reason, summary, started_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12) "
            "ON CONFLICT (run_id) DO UPDATE SET state = EXCLUDED.state, step = EXCLUDED.step, "
            "steps_done = EXCLUDED.steps_done, steps_total = EXCLUDED.steps_total, code = EXCLUDED.code, "
            "reason = EXCLUDED.reason, summary = COALESCE(EXCLUDED.summary, r.summary), "
            "started_at = least(r.started_at, EXCLUDED.started_at), updated_at = EXCLUDED.updated_at "
            f"WHERE {rank.format(t='r')} < {rank.format(t='EXCLUDED')} RETURNING *",
            r.run_id, r.day, r.state, r.trigger, r.requested_by, r.step, r.steps_done, r.steps_total, r.code,
            r.reason, r.summary, r.at,
        )  # fmt: skip
        return None if row is None else dict(row)

    async def save_service_seen(self, service: str, at: datetime) -> None:
        await self.conn.execute(
            "INSERT INTO services_seen AS s (service, last_message_at) VALUES ($1, $2) ON CONFLICT (service) "
            "DO UPDATE SET last_message_at = greatest(s.last_message_at, EXCLUDED.last_message_at)",
            service,
            at,
        )

    async def save_run_line(self, line: LineSeen) -> None:
        await self.conn.execute(
            "INSERT INTO run_lines (run_id, upt_id, sent, complete, lateness, snapshot, applied, figures, breakdowns) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (run_id, upt_id) DO NOTHING",
            line.run_id, line.upt_id, line.sent, line.complete, line.lateness, line.snapshot, line.applied,
            line.figures, line.breakdowns,
        )  # fmt: skip

    async def unit_row(self, upt_id: str, day: date) -> dict[str, Any] | None:
        rows = await unit_rows(self.conn, day, None, upt_id)
        return rows[0] if rows else None

    async def office_row(self, kabkota: str, day: date) -> tuple[dict[str, Any], dict[str, int], int] | None:
        rows = await office_rows(self.conn, day, kabkota=kabkota)
        return rows[0] if rows else None

    async def kanwil_of(self, upt_id: str) -> str | None:
        value = await self.conn.fetchval("SELECT kanwil_id FROM units WHERE upt_id = $1", upt_id)
        return None if value is None else str(value)

    async def append_live(self) -> None:
        """Log the events at the end of the transaction, under a lock held to its commit: ids commit in order,
        so a follower reading `id > last` never skips one that was still uncommitted."""
        if not self.events:
            return
        await self.take_live_turn()  # (a lock already held is taken again at no cost)
        await self.conn.executemany(
            "INSERT INTO live_events (kind, unit_id, kanwil_id, centre_only, payload) VALUES ($1, $2, $3, $4, $5)",
            [(e.kind, e.unit_id, e.kanwil_id, e.centre_only, e.payload) for e in self.events],
        )
        await self.conn.execute("SELECT pg_notify($1, '')", LIVE_CHANNEL)


def postgres_unit_of_work(database: Database) -> UnitOfWork:
    """Units of work committed together (GroupCommit); their live events are logged in the same transaction."""
    return GroupCommit(database)


class _Batch:
    """One transaction that units of work join, each in a savepoint of its own."""

    def __init__(self, pool: Any, conn: Any, tx: Any, opened: float) -> None:
        self.pool, self.conn, self.tx, self.opened = pool, conn, tx, opened
        self.members = 0
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def close(self) -> None:
        """Commit (or, when it broke, roll back) and tell every member how it ended."""
        try:
            await self.tx.commit()
        except BaseException as exc:
            with contextlib.suppress(Exception):
                await self.tx.rollback()
            if not self.done.done():
                self.done.set_exception(exc if isinstance(exc, Exception) else RuntimeError("stopped"))
                self.done.exception()  # (retrieved: a batch without waiting members is not an error)
            raise
        finally:
            await self.pool.release(self.conn)
        if not self.done.done():
            self.done.set_result(None)


class GroupCommit:
    """Units of work that arrive while one transaction is open join it, each in a savepoint of its own (a unit
    that fails is undone alone); the transaction commits when no unit waits to join, when `most` have joined or
    after `window` seconds, and each unit returns only once it has committed. Under the national day's load the
    status events came hundreds a second and each paid a commit and a turn at the live log's lock: a page's
    update waited up to a second behind the others' commits (bench/monitor_fanout.py). The transaction takes
    the live log's lock first, so two instances' transactions never deadlock on each other's rows."""

    def __init__(self, database: Database, *, most: int = 200, window: float = 0.05) -> None:
        self.database, self.most, self.window = database, most, window
        self._lock = asyncio.Lock()
        self._waiting = 0
        self._batch: _Batch | None = None

    async def _open(self) -> _Batch:
        pool = self.database.pool
        conn = await pool.acquire()
        tx = conn.transaction()
        try:
            await tx.start()
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", _LIVE_LOCK)
        except BaseException:
            with contextlib.suppress(Exception):
                await tx.rollback()
            await pool.release(conn)
            raise
        return _Batch(pool, conn, tx, asyncio.get_running_loop().time())

    def _due(self, batch: _Batch) -> bool:
        aged = asyncio.get_running_loop().time() - batch.opened >= self.window
        return self._waiting == 0 or batch.members >= self.most or aged

    async def _flush(self, batch: _Batch) -> None:
        """Commit `batch` if it is still open (a unit that would have joined it gave up waiting)."""
        async with self._lock:
            if self._batch is batch:
                self._batch = None
                with contextlib.suppress(Exception):
                    await batch.close()

    @asynccontextmanager
    async def __call__(self) -> AsyncIterator[Stores]:
        self._waiting += 1
        try:
            await self._lock.acquire()
        finally:
            self._waiting -= 1
        batch: _Batch | None = None
        try:
            batch = self._batch = self._batch or await self._open()
            savepoint = batch.conn.transaction()
            await savepoint.start()
            stores = PostgresStores(batch.conn, live_turn_taken=True)
            try:
                yield stores
                await db.enqueue(batch.conn, self.database.schema, stores.outgoing)
                await stores.append_live()
            except BaseException:
                await savepoint.rollback()
                raise
            await savepoint.commit()
            batch.members += 1
        finally:  # (a unit whose connection broke leaves the batch to fail at its commit: every unit retries)
            try:
                if batch is not None and self._batch is batch and self._due(batch):
                    self._batch = None
                    await batch.close()
            finally:
                self._lock.release()
        while not batch.done.done():  # the last unit to join commits; should it vanish, this one does
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(batch.done), timeout=max(self.window, 0.5))
            if not batch.done.done():
                await self._flush(batch)
        batch.done.result()


class PostgresLiveLog:
    def __init__(self, database: Database) -> None:
        self.database = database

    async def bounds(self) -> tuple[int | None, int]:
        # Committed events only (not the sequence, which an uncommitted append may have moved): their ids are a
        # prefix of the log, since appends commit in id order.
        row = await self.database.pool.fetchrow(
            "SELECT min(id) AS oldest, max(id) AS newest FROM live_events"
        )
        assert row is not None
        return row["oldest"], int(row["newest"] or 0)

    async def since(self, after: int, limit: int) -> list[LiveEvent]:
        rows = await self.database.pool.fetch(SINCE, after, limit)
        return [_event(r) for r in rows]

    @asynccontextmanager
    async def listening(self, on_change: Callable[[], None]) -> AsyncIterator[Follower]:
        """The listening connection is the follower's too: under load the handlers' transactions (up to the
        prefetch, each waiting its turn to log) hold the pool, and a follower queueing behind them held every
        page's update back by seconds (bench/monitor_fanout.py during the national day)."""

        def notified(*_: object) -> None:
            on_change()

        async with self.database.pool.acquire() as conn:
            await conn.add_listener(LIVE_CHANNEL, notified)
            try:
                yield _ConnectionFollower(conn)
            finally:
                if not conn.is_closed():
                    await conn.remove_listener(LIVE_CHANNEL, notified)

    async def prune(self, keep_hours: float) -> int:
        done = await self.database.pool.execute(
            "DELETE FROM live_events WHERE at < now() - make_interval(secs => $1)", keep_hours * 3600
        )
        return int(done.split()[-1])


class _ConnectionFollower:
    def __init__(self, conn: Any) -> None:
        self.conn = conn

    async def since(self, after: int, limit: int) -> list[LiveEvent]:
        rows = await self.conn.fetch(SINCE, after, limit)
        return [_event(r) for r in rows]


SINCE = "SELECT id, kind, unit_id, kanwil_id, centre_only, payload FROM live_events WHERE id > $1 ORDER BY id LIMIT $2"


def _event(row: Any) -> LiveEvent:
    payload = row["payload"]
    return LiveEvent(
        kind=row["kind"],
        payload=json.loads(payload) if isinstance(payload, str) else dict(payload),
        unit_id=row["unit_id"],
        kanwil_id=row["kanwil_id"],
        centre_only=row["centre_only"],
        id=row["id"],
    )

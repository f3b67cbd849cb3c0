"""Where consolidation runs live: requests, run state, the set-based steps of steps.sql, and the report."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import date
from importlib import resources
from typing import Any, Protocol

import asyncpg

from shared import db
from shared.runtime import Database
from shared.units import Units

from .domain.detention import DetentionRule, rule_rows
from .domain.report import Item, RunReport, UptLine
from .domain.runs import STEPS, RunPolicy, RunRequest
from .store import FEED_ROWS

log = logging.getLogger(__name__)

STEP_ATTEMPTS = 3
RUN_WORK_MEM = "256MB"  # per sort or hash of a run's statements (the server's default is 4 MB)
LINES = (
    "SELECT ru.*, u.name AS upt_name, u.kanwil_id, u.kanwil_name FROM run_upts ru "
    "JOIN upts u USING (upt_id) WHERE ru.run_id = $1 ORDER BY ru.upt_id"
)
# The work list's entries as listed items, each person as the central record knows them.
WORKLIST = """
SELECT 'without_ektp' AS kind, w.upt_id, x.inmate_id, jsonb_build_object(
    'central_id', 'C' || p.person_id, 'full_name', p.full_name, 'birth_date', p.birth_date,
    'kabkota_upt', u.kabkota, 'kabkota_nik', left(p.nik, 4),
    'nik_masked', CASE WHEN p.nik IS NULL THEN NULL ELSE left(p.nik, 4) || '********' || right(p.nik, 4) END,
    'reason', x.reason) AS detail
FROM run_worklists w JOIN upts u USING (upt_id)
CROSS JOIN LATERAL unnest(w.inmate_ids, w.person_ids, w.reasons) WITH ORDINALITY AS x(inmate_id, person_id, reason, n)
JOIN persons p ON p.person_id = x.person_id
WHERE w.run_id = $1 ORDER BY w.upt_id, x.n
"""
# A run's lists counted per UPT: overstayers and expiry notices by register, the work list by reason and by
# the kab/kota of the NIK (its first four digits: a region code, no person), which the report step wrote beside
# the list (`nik_regions`; a run reported before that column reads its persons' NIKs instead).
BREAKDOWNS = """
SELECT upt_id, kind || '_by_register' AS breakdown, detail->>'register' AS key, count(*)::int AS n
FROM run_items WHERE run_id = $1 AND kind IN ('overstaying', 'notice_10', 'notice_3') GROUP BY 1, 2, 3
UNION ALL
SELECT w.upt_id, 'without_ektp_by_reason', x.reason, count(*)::int
FROM run_worklists w CROSS JOIN LATERAL unnest(w.reasons) AS x(reason) WHERE w.run_id = $1 GROUP BY 1, 2, 3
UNION ALL
SELECT w.upt_id, 'without_ektp_by_nik_kabkota', coalesce(x.region, '-'), count(*)::int
FROM run_worklists w CROSS JOIN LATERAL unnest(w.nik_regions) AS x(region)
WHERE w.run_id = $1 AND w.nik_regions IS NOT NULL GROUP BY 1, 2, 3
UNION ALL
SELECT w.upt_id, 'without_ektp_by_nik_kabkota', coalesce(left(p.nik, 4), '-'), count(*)::int
FROM run_worklists w CROSS JOIN LATERAL unnest(w.person_ids) AS x(person_id)
JOIN persons p ON p.person_id = x.person_id WHERE w.run_id = $1 AND w.nik_regions IS NULL GROUP BY 1, 2, 3
"""
_PARAM = re.compile(r"\$(\d+)")
# The steps' parameters, typed where they are used (a bare `$2` in a UNION has no type to infer).
_TYPES = {1: "text", 2: "date", 3: "float8", 4: "int", 5: "text[]"}


@dataclass(frozen=True)
class StepSql:
    """A step's statements: `sides`, groups that each run in a transaction of their own, side by side on
    connections of their own (each begins by removing what an interrupted attempt of it wrote), then `main`, in
    the transaction that commits the step."""

    main: list[str]
    sides: dict[str, list[str]]


def _split(body: str) -> list[str]:
    # Whole-line comments go; a statement ends with `;` at the end of a line (no comment after it).
    body = "\n".join(line for line in body.splitlines() if not line.lstrip().startswith("--"))
    statements = (s.strip().removesuffix(";").rstrip() for s in f"{body}\n".split(";\n"))
    return [s for s in statements if s]


def _statements(sql: str) -> dict[str, StepSql]:
    """steps.sql split into its named sections (`-- name: <step>`), each into its side groups (`-- side:
    <group>`, up to the next `-- main`) and its main statements."""
    steps: dict[str, StepSql] = {}
    sections = re.split(r"^-- name: (\w+)$", sql, flags=re.M)[1:]
    for name, section in zip(sections[::2], sections[1::2], strict=True):
        before, _, main = section.rpartition("\n-- main\n") if "\n-- main\n" in section else ("", "", section)
        groups = re.split(r"^-- side: (\w+)$", before, flags=re.M)[1:]
        sides = {g: _split(body) for g, body in zip(groups[::2], groups[1::2], strict=True)}
        steps[name] = StepSql(_split(main), sides)
    return steps


STEP_SQL = _statements((resources.files(__package__) / "steps.sql").read_text(encoding="utf-8"))


async def _all_or_none(work: Sequence[Coroutine[Any, Any, None]]) -> None:
    """Every one side by side; when one fails, the others are cancelled (their transactions roll back) and
    waited for before the failure goes on: none may still be writing when the step is tried again."""
    tasks = [asyncio.ensure_future(w) for w in work]
    try:
        await asyncio.gather(*tasks)
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


def _bind(statement: str, params: Sequence[Any]) -> tuple[str, list[Any]]:
    """Only the parameters a statement uses, renumbered (asyncpg takes one statement and exact arguments)."""
    used = sorted({int(n) for n in _PARAM.findall(statement)})
    number = {old: new for new, old in enumerate(used, start=1)}
    typed = _PARAM.sub(lambda m: f"${number[int(m.group(1))]}::{_TYPES[int(m.group(1))]}", statement)
    return typed, [params[n - 1] for n in used]


async def _whole_table_settings(conn: db.Conn) -> None:
    """For the transaction's whole-table joins and sorts: memory for them rather than spills; no JIT for
    statements planned before the tables' statistics catch up with a day's load (its compile time outweighs
    them)."""
    await conn.execute(f"SET LOCAL work_mem = '{RUN_WORK_MEM}'; SET LOCAL jit = off")


def _lines(rows: Sequence[Any]) -> list[UptLine]:
    keep = set(UptLine.__dataclass_fields__)
    return [UptLine(**{k: v for k, v in dict(r).items() if k in keep}) for r in rows]


@dataclass(frozen=True)
class RunRow:
    run_id: str
    day: date
    trigger: str
    requested_by: str
    state: str
    step: int


Announce = Callable[[RunRow, str, int], Sequence[db.Outgoing]]


class ConsolidationStore(Protocol):
    async def load_reference(self, units: Units, rules: Sequence[DetentionRule]) -> None: ...
    async def record_request(
        self, message_id: str, publisher: str, fields: dict[str, Any], outgoing: Sequence[db.Outgoing]
    ) -> bool: ...
    async def open_run(self, request: RunRequest, outgoing: Sequence[db.Outgoing]) -> RunRow: ...
    async def run(self, run_id: str) -> RunRow | None: ...
    async def unfinished(self) -> list[str]: ...
    async def ran(self, day: date, trigger: str) -> bool: ...
    async def execute_step(self, run: RunRow, index: int, policy: RunPolicy, announce: Announce) -> None: ...
    async def fail(self, run_id: str, error: str, outgoing: Sequence[db.Outgoing]) -> None: ...
    async def refresh_statistics(self) -> None: ...
    async def feed_pending(self, batch: int = 5_000) -> int: ...
    async def prune(self, keep_days: int) -> int: ...
    async def load_report(self, run_id: str) -> RunReport | None: ...
    async def load_lines(self, run_id: str) -> list[UptLine]: ...
    async def central_totals(self, run_id: str) -> list[tuple[str, int, int]]: ...
    async def line_breakdowns(self, run_id: str) -> dict[str, dict[str, dict[str, int]]]: ...
    def exclusive(self, run_id: str) -> Any: ...


class PostgresConsolidationStore:
    def __init__(self, database: Database) -> None:
        self.database = database

    async def load_reference(self, units: Units, rules: Sequence[DetentionRule]) -> None:
        """The UPTs and the detention limits the runs read, refreshed from the files at every start."""
        kanwil = {k.kanwil_id: k.name for k in units.kanwil}
        async with self.database.pool.acquire() as conn, conn.transaction():
            await conn.execute("DELETE FROM upts")
            await conn.executemany(
                "INSERT INTO upts (upt_id, name, kanwil_id, kanwil_name, kabkota) VALUES ($1, $2, $3, $4, $5)",
                [(u.upt_id, u.name, u.kanwil_id, kanwil.get(u.kanwil_id, u.kanwil_id), u.kabkota_code)
                 for u in units.upts],
            )  # fmt: skip
            await conn.execute("DELETE FROM detention_rules")
            await conn.executemany(
                "INSERT INTO detention_rules (law, version, register, valid_from, valid_until, initial_days, "
                "extension_days, exceptional_days, citation) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                rule_rows(rules),
            )

    async def record_request(
        self, message_id: str, publisher: str, fields: dict[str, Any], outgoing: Sequence[db.Outgoing]
    ) -> bool:
        async with self.database.pool.acquire() as conn, conn.transaction():
            done = await conn.fetchval(
                "INSERT INTO run_requests (message_id, publisher, day, requested_by, reason, run_id, refused) "
                "VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING RETURNING true",
                message_id, publisher, fields.get("day"), fields.get("requested_by"), fields.get("reason"),
                fields.get("run_id"), fields.get("refused"),
            )  # fmt: skip
            if done:
                await db.enqueue(conn, self.database.schema, outgoing)
            return bool(done)

    async def open_run(self, request: RunRequest, outgoing: Sequence[db.Outgoing]) -> RunRow:
        async with self.database.pool.acquire() as conn, conn.transaction():
            created = await conn.fetchval(
                "INSERT INTO runs (run_id, day, trigger, requested_by, reason, accept) "
                "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING RETURNING true",
                request.run_id, request.day, request.trigger, request.requested_by, request.reason,
                list(request.accept),
            )  # fmt: skip
            if created:
                await db.enqueue(conn, self.database.schema, outgoing)
            row = await self._run(conn, request.run_id)
            assert row is not None
            return row

    @staticmethod
    async def _run(conn: db.Conn, run_id: str) -> RunRow | None:
        r = await conn.fetchrow(
            "SELECT run_id, day, trigger, requested_by, state, step FROM runs WHERE run_id = $1", run_id
        )
        return None if r is None else RunRow(**dict(r))

    async def run(self, run_id: str) -> RunRow | None:
        async with self.database.pool.acquire() as conn:
            return await self._run(conn, run_id)

    async def unfinished(self) -> list[str]:
        rows = await self.database.pool.fetch(
            "SELECT run_id FROM runs WHERE state = 'running' ORDER BY started_at"
        )
        return [r["run_id"] for r in rows]

    async def ran(self, day: date, trigger: str) -> bool:
        return bool(
            await self.database.pool.fetchval(
                "SELECT true FROM runs WHERE day = $1 AND trigger = $2 LIMIT 1", day, trigger
            )
        )

    @asynccontextmanager
    async def exclusive(self, run_id: str) -> AsyncIterator[bool]:
        """True while this process alone executes runs of that day (a session lock, gone with the process)."""
        async with self.database.pool.acquire() as conn:
            day = await conn.fetchval("SELECT day FROM runs WHERE run_id = $1", run_id)
            key = f"simpul-consolidation-{day}"
            got = bool(await conn.fetchval("SELECT pg_try_advisory_lock(hashtext($1))", key))
            try:
                yield got
            finally:
                if got:
                    await conn.execute("SELECT pg_advisory_unlock(hashtext($1))", key)

    async def execute_step(self, run: RunRow, index: int, policy: RunPolicy, announce: Announce) -> None:
        """One step in one transaction, committed with the step number and its progress event. A step chosen
        as a deadlock's victim was rolled back whole and runs again (a few times) before the run fails."""
        for attempt in range(1, STEP_ATTEMPTS + 1):
            try:
                await self._step(run, index, policy, announce)
                return
            except asyncpg.exceptions.DeadlockDetectedError:
                if attempt == STEP_ATTEMPTS:
                    raise
                log.warning(
                    "consolidation step lost a deadlock; running it again",
                    extra={"run_id": run.run_id, "step": STEPS[index], "attempt": attempt},
                )
                await asyncio.sleep(0.1 * attempt)

    async def _step(self, run: RunRow, index: int, policy: RunPolicy, announce: Announce) -> None:
        name = STEPS[index]
        step = STEP_SQL.get(name, StepSql([], {}))
        if step.sides:
            async with self.database.pool.acquire() as conn:
                row = await conn.fetchrow("SELECT step, accept FROM runs WHERE run_id = $1", run.run_id)
            if row is None or row["step"] != index:
                return
            params = self._params(run, policy, row)
            await _all_or_none([self._side(statements, params) for statements in step.sides.values()])
        async with self.database.pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                "SELECT step, accept FROM runs WHERE run_id = $1 FOR UPDATE", run.run_id
            )
            if row is None or row["step"] != index:  # done already (another executor, or a replayed command)
                return
            params = self._params(run, policy, row)
            await _whole_table_settings(conn)
            for statement in step.main:
                sql, args = _bind(statement, params)
                await conn.execute(sql, *args)
            state = "finished" if index == len(STEPS) - 1 else "running"
            await conn.execute(
                "UPDATE runs SET step = $2, state = $3, finished_at = CASE WHEN $3 = 'finished' THEN now() END "
                "WHERE run_id = $1",
                run.run_id,
                index + 1,
                state,
            )
            await db.enqueue(conn, self.database.schema, announce(run, name, index + 1))
            await conn.execute("SELECT pg_notify($1, '')", f"{self.database.schema}_outbox")

    @staticmethod
    def _params(run: RunRow, policy: RunPolicy, row: asyncpg.Record) -> tuple[Any, ...]:
        return (run.run_id, run.day, policy.max_loss, policy.transfer_window_days, list(row["accept"]))

    async def _side(self, statements: list[str], params: tuple[Any, ...]) -> None:
        """One side group of a step in its own transaction; the step that follows commits only once every
        group has (a group interrupted before is written again: it begins by removing its rows)."""
        async with self.database.pool.acquire() as conn, conn.transaction():
            await _whole_table_settings(conn)
            for statement in statements:
                sql, args = _bind(statement, params)
                await conn.execute(sql, *args)

    async def feed_pending(self, batch: int = 5_000) -> int:
        """Write the next persons whose latest version is not on the central feed yet; how many."""
        async with self.database.pool.acquire() as conn, conn.transaction():
            # The lock its update below takes, taken before the rows are: a run's step locks the table against
            # writers (to create persons), and would otherwise wait for these rows while this waits for it.
            await conn.execute("LOCK TABLE persons IN ROW EXCLUSIVE MODE")
            ids = [
                r["person_id"]
                for r in await conn.fetch(
                    "SELECT person_id FROM persons WHERE version > fed_version ORDER BY person_id "
                    "LIMIT $1 FOR UPDATE SKIP LOCKED",
                    batch,
                )
            ]
            if not ids:
                return 0
            await conn.execute(FEED_ROWS.format(where="p.person_id = ANY($1::bigint[])"), ids)
            await conn.execute(
                "UPDATE persons SET fed_version = version WHERE person_id = ANY($1::bigint[])", ids
            )
            await conn.execute("SELECT pg_notify($1, '')", f"{self.database.schema}_outbox")
            return len(ids)

    async def prune(self, keep_days: int) -> int:
        """Staged snapshots older than a run may consolidate; the central records keep what was applied."""
        async with self.database.pool.acquire() as conn, conn.transaction():
            done = await conn.execute("DELETE FROM sdp_rows WHERE as_of < current_date - $1::int", keep_days)
            await conn.execute("DELETE FROM sdp_parts WHERE as_of < current_date - $1::int", keep_days)
        return int(done.split()[-1])

    async def fail(self, run_id: str, error: str, outgoing: Sequence[db.Outgoing]) -> None:
        async with self.database.pool.acquire() as conn, conn.transaction():
            await conn.execute("UPDATE runs SET error = $2 WHERE run_id = $1", run_id, error[:1000])
            await db.enqueue(conn, self.database.schema, outgoing)

    async def refresh_statistics(self) -> None:
        """The planner's statistics of the tables a run rewrites (migration 0008: as the tables' owner)."""
        await self.database.pool.execute("SELECT refresh_statistics()")

    async def central_totals(self, run_id: str) -> list[tuple[str, int, int]]:
        """(upt_id, inmates in custody, of them flagged by dedup) of every UPT the run applied (none in custody
        included: its total is 0 now). The custody count is the report's; only the few flagged are counted here."""
        rows = await self.database.pool.fetch(
            "SELECT ru.upt_id, ru.inmates AS total, COALESCE(f.flagged, 0) AS flagged FROM run_upts ru "
            "LEFT JOIN (SELECT f.upt_id, count(*) AS flagged FROM inmate_flags f "
            "           JOIN episodes e USING (upt_id, inmate_id) "
            "           WHERE f.flags <> '[]' AND e.state = 'active' GROUP BY f.upt_id) f USING (upt_id) "
            "WHERE ru.run_id = $1 AND ru.applied = 'applied' ORDER BY ru.upt_id",
            run_id,
        )
        return [(r["upt_id"], r["total"], r["flagged"]) for r in rows]

    async def load_report(self, run_id: str) -> RunReport | None:
        async with self.database.pool.acquire() as conn, conn.transaction(readonly=True):
            run = await conn.fetchrow("SELECT * FROM runs WHERE run_id = $1", run_id)
            if run is None:
                return None
            await _whole_table_settings(conn)
            lines = await conn.fetch(LINES, run_id)
            items = await conn.fetch(
                "SELECT kind, upt_id, inmate_id, detail FROM run_items WHERE run_id = $1 "
                "ORDER BY kind, upt_id, inmate_id",
                run_id,
            )
            worklist = await conn.fetch(WORKLIST, run_id)  # its kind sorts after every other
        return RunReport(
            run_id=run["run_id"],
            day=run["day"],
            trigger=run["trigger"],
            requested_by=run["requested_by"],
            reason=run["reason"],
            started_at=run["started_at"],
            finished_at=run["finished_at"],
            lines=_lines(lines),
            items=[Item(r["kind"], r["upt_id"], r["inmate_id"], r["detail"]) for r in [*items, *worklist]],
        )

    async def line_breakdowns(self, run_id: str) -> dict[str, dict[str, dict[str, int]]]:
        """Per UPT, the report's lists counted by what a supervisor sorts them by: upt_id -> breakdown -> key
        -> count (BREAKDOWNS)."""
        out: dict[str, dict[str, dict[str, int]]] = {}
        async with self.database.pool.acquire() as conn, conn.transaction(readonly=True):
            await _whole_table_settings(conn)  # the work list can hold every inmate in custody
            rows = await conn.fetch(BREAKDOWNS, run_id)
        for r in rows:
            out.setdefault(r["upt_id"], {}).setdefault(r["breakdown"], {})[r["key"]] = r["n"]
        return out

    async def load_lines(self, run_id: str) -> list[UptLine]:
        """A run's lines alone (its summary and totals), without the lists behind them."""
        return _lines(await self.database.pool.fetch(LINES, run_id))

    async def runs_of_day(self, day: date) -> list[dict[str, Any]]:
        rows = await self.database.pool.fetch(
            "SELECT run_id, day, trigger, requested_by, reason, state, step, started_at, finished_at "
            "FROM runs WHERE day = $1 ORDER BY started_at",
            day,
        )
        return [dict(r) for r in rows]

"""What the monitor's pages read (each login's scope applied), its logins and their sessions."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Protocol

from shared import db
from shared.runtime import Database
from shared.units import Units

from .domain import Scope
from .domain.alerts import Alert
from .domain.pipeline import OPEN_STATUSES, CaptureTimes


@dataclass(frozen=True)
class DeadLetterSeen:
    message_id: str
    reason: str
    detail: str | None
    service: str | None
    queue: str | None
    routing_key: str | None
    sender: str | None


@dataclass(frozen=True)
class Account:
    username: str
    password_hash: str
    unit_id: str
    disabled: bool = False


class MonitorStore(Protocol):
    """What the pages read, and the logins with their sessions."""

    async def load_units(self, units: Units) -> None: ...
    async def office_rows(
        self, scope: Scope, day: date, unit_id: str | None = None
    ) -> list[tuple[dict[str, Any], dict[str, int], int]]:
        """(office, count per status, messages refused that day) for every office the scope sees."""

    async def unit_rows(self, scope: Scope, day: date, upt_id: str | None = None) -> list[dict[str, Any]]: ...
    async def unit_history(self, upt_id: str, first: date, last: date) -> list[tuple[date, dict[str, Any]]]:
        """The UPT's row (as `unit_rows` gives it) of every day from `last` back to `first`, in one read (the
        caller has checked the login may see the UPT)."""

    async def unit_parts(self, upt_id: str, day: date) -> list[dict[str, Any]]:
        """Every part of every snapshot the UPT sent for the day, as the registry answered it, in order (the
        caller has checked the login may see the UPT)."""

    async def dead_letter_count(self, since: datetime) -> int: ...
    async def runs_of_day(self, day: date) -> list[dict[str, Any]]:
        """The runs of a day, the latest first."""

    async def services_seen(self) -> dict[str, datetime]: ...
    async def cases(self, limit: int) -> list[dict[str, Any]]:
        """The desk's queue: open cases the oldest first, then the latest decided."""

    async def case(self, kabkota: str, packet_id: str, reader: str) -> dict[str, Any] | None:
        """One case with its candidates and `reads` (who opened it when, this read last); the read is recorded
        (who, when, which capture) in the same transaction."""

    async def parts_by_hour(self, scope: Scope, day: date) -> list[tuple[int, str, int, int]]:
        """(WIB hour received, lateness, parts, records accepted) of the day's parts of the UPTs the scope sees."""

    async def open_alerts(self) -> list[Alert]:
        """Every open alert, the oldest first (each page filters them by its login's scope)."""

    async def recent_dead_letters(self, limit: int) -> list[dict[str, Any]]:
        """The latest dead letters (metadata only), newest first."""

    async def dead_letter_reasons(self, since: datetime) -> dict[str, int]: ...

    async def run(self, run_id: str) -> dict[str, Any] | None: ...
    async def finished_runs_since(self, since: date) -> list[dict[str, Any]]:
        """The last finished run of each day from `since` on."""

    async def run_lines(self, scope: Scope, run_id: str) -> list[dict[str, Any]]:
        """The report lines of the UPTs the scope sees, with the UPT's name and Kanwil."""

    async def lines_of_runs(
        self, scope: Scope, run_ids: Sequence[str], upt_id: str | None = None
    ) -> dict[str, list[dict[str, Any]]]:
        """`run_lines` of several runs (of one UPT, if given) in one read: run_id -> lines (every run given has
        its entry)."""

    async def pipeline_captures(self, scope: Scope, since: datetime) -> list[CaptureTimes]:
        """The captures of the offices the scope sees that changed since then or still wait or are backlogged."""

    async def account(self, username: str) -> Account | None: ...
    async def usernames(self) -> set[str]: ...
    async def upsert_accounts(self, accounts: Sequence[Account]) -> int: ...
    async def create_session(self, token_hash: str, username: str, expires_at: datetime) -> None: ...
    async def session_user(self, token_hash: str, now: datetime) -> Account | None: ...
    async def end_session(self, token_hash: str) -> None: ...
    async def login_failures(self, keys: Sequence[str], since: datetime) -> dict[str, list[datetime]]: ...
    async def record_login_failure(self, keys: Sequence[str], at: datetime) -> None: ...
    async def clear_login_failures(self, keys: Sequence[str]) -> None: ...
    async def create_account(self, account: Account) -> bool:
        """False if the username is taken."""

    async def set_password(self, username: str, password_hash: str) -> bool:
        """False if there is no such login; its sessions end."""

    async def set_disabled(self, username: str, disabled: bool) -> bool:
        """False if there is no such login; a disabled login's sessions end."""

    async def list_accounts(self) -> list[Account]: ...


# A UPT's day from the parts of its latest snapshot, and the row the pages show (ROWS_SQL, HISTORY_SQL).
PART_FIGURES = """max(p.parts) AS parts, count(*) AS parts_received, sum(p.received) AS received,
           sum(p.accepted) AS accepted, sum(p.rejected) AS rejected, sum(p.warnings) AS warnings,
           max(p.received_at) AS last_submission_at,
           (ARRAY['on_time', 'after_10', 'after_14'])[1 + max(CASE p.lateness WHEN 'after_14' THEN 2
                                                      WHEN 'after_10' THEN 1 ELSE 0 END)] AS lateness"""
ROW_COLUMNS = """u.upt_id, u.name, u.kanwil_id, u.kanwil_name, p.parts, p.parts_received, p.received, p.accepted,
       p.rejected, p.warnings, p.last_submission_at, p.lateness, r.count AS refused_messages,
       c.central_total, c.flagged_total"""
ROWS_SQL = f"""
WITH latest AS (
    SELECT upt_id, max(snapshot) AS snapshot FROM submission_parts
    WHERE day = $1 AND ($3::text IS NULL OR upt_id = $3) GROUP BY upt_id  -- one UPT's row: its parts alone
), parts AS (
    SELECT p.upt_id, {PART_FIGURES}
    FROM submission_parts p JOIN latest l USING (upt_id, snapshot)
    WHERE p.day = $1 AND ($3::text IS NULL OR p.upt_id = $3) GROUP BY p.upt_id
)
SELECT {ROW_COLUMNS}
FROM units u
LEFT JOIN parts p USING (upt_id)
LEFT JOIN refusals r ON r.upt_id = u.upt_id AND r.day = $1
LEFT JOIN central_totals c ON c.upt_id = u.upt_id
WHERE ($2::text IS NULL OR u.kanwil_id = $2) AND ($3::text IS NULL OR u.upt_id = $3)
ORDER BY u.kanwil_id, u.upt_id
"""


def prisons_seen(scope: Scope) -> tuple[str | None, str | None] | None:
    """The (Kanwil, UPT) a scope narrows the prisons' figures to (None: all), or None when it sees none of them
    (a civil registry watches e-KTP, not prisons)."""
    if scope.role.value == "dukcapil":
        return None
    return (
        scope.unit_id if scope.role.value == "kanwil" else None,
        scope.unit_id if scope.role.value == "upt" else None,
    )


async def unit_rows(conn: db.Conn, day: date, kanwil: str | None, upt_id: str | None) -> list[dict[str, Any]]:
    return [dict(r) for r in await conn.fetch(ROWS_SQL, day, kanwil, upt_id)]


# ROWS_SQL of one UPT over a range of days: one row a day, the latest day first.
HISTORY_SQL = f"""
WITH latest AS (
    SELECT day, max(snapshot) AS snapshot FROM submission_parts
    WHERE upt_id = $1 AND day BETWEEN $2 AND $3 GROUP BY day
), parts AS (
    SELECT p.day, {PART_FIGURES}
    FROM submission_parts p JOIN latest l USING (day, snapshot)
    WHERE p.upt_id = $1 AND p.day BETWEEN $2 AND $3 GROUP BY p.day
)
SELECT d.day, {ROW_COLUMNS}
FROM generate_series($3::date::timestamp, $2::date::timestamp, interval '-1 day') AS g(at)
CROSS JOIN LATERAL (SELECT g.at::date AS day) d
JOIN units u ON u.upt_id = $1
LEFT JOIN parts p ON p.day = d.day
LEFT JOIN refusals r ON r.upt_id = u.upt_id AND r.day = d.day
LEFT JOIN central_totals c ON c.upt_id = u.upt_id
ORDER BY d.day DESC
"""


async def office_rows(
    conn: db.Conn, day: date, *, unit_id: str | None = None, kabkota: str | None = None
) -> list[tuple[dict[str, Any], dict[str, int], int]]:
    """(office, count per status, messages refused that day) of every office, or of the one asked for."""
    offices = await conn.fetch(
        "SELECT unit_id, kabkota_code, name FROM offices WHERE ($1::text IS NULL OR unit_id = $1) "
        "AND ($2::text IS NULL OR kabkota_code = $2) ORDER BY kabkota_code",
        unit_id,
        kabkota,
    )
    codes = [o["kabkota_code"] for o in offices]
    counts: dict[str, dict[str, int]] = {}
    for r in await conn.fetch(
        "SELECT kabkota, status, count(*) AS n FROM ektp_captures WHERE kabkota = ANY($1::text[]) "
        "GROUP BY kabkota, status",
        codes,
    ):
        counts.setdefault(r["kabkota"], {})[r["status"]] = r["n"]
    refused = {
        r["kabkota"]: r["count"]
        for r in await conn.fetch(
            "SELECT kabkota, count FROM ektp_refusals WHERE day = $1 AND kabkota = ANY($2::text[])",
            day,
            codes,
        )
    }
    return [(dict(o), counts.get(o["kabkota_code"], {}), refused.get(o["kabkota_code"], 0)) for o in offices]


class PostgresMonitorStore:
    def __init__(self, database: Database) -> None:
        self.database = database

    async def load_units(self, units: Units) -> None:
        kanwil_names = {k.kanwil_id: k.name for k in units.kanwil}
        async with self.database.pool.acquire() as conn, conn.transaction():
            await conn.executemany(
                "INSERT INTO units (upt_id, name, kind, kabkota_code, kabkota_name, province_code, kanwil_id, "
                "kanwil_name) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (upt_id) DO UPDATE SET "
                "name = EXCLUDED.name, kind = EXCLUDED.kind, kabkota_code = EXCLUDED.kabkota_code, "
                "kabkota_name = EXCLUDED.kabkota_name, province_code = EXCLUDED.province_code, "
                "kanwil_id = EXCLUDED.kanwil_id, kanwil_name = EXCLUDED.kanwil_name",
                [
                    (
                        u.upt_id,
                        u.name,
                        u.kind,
                        u.kabkota_code,
                        u.kabkota_name,
                        u.province_code,
                        u.kanwil_id,
                        kanwil_names.get(u.kanwil_id, u.kanwil_id),
                    )
                    for u in units.upts
                ],
            )
            await conn.executemany(
                "INSERT INTO offices (unit_id, kabkota_code, name, province_code) VALUES ($1, $2, $3, $4) "
                "ON CONFLICT (unit_id) DO UPDATE SET kabkota_code = EXCLUDED.kabkota_code, name = EXCLUDED.name, "
                "province_code = EXCLUDED.province_code",
                [(d.unit_id, d.kabkota_code, d.name, d.province_code) for d in units.dukcapil],
            )

    async def office_rows(
        self, scope: Scope, day: date, unit_id: str | None = None
    ) -> list[tuple[dict[str, Any], dict[str, int], int]]:
        if scope.role.value == "kanwil" or scope.role.value == "upt":
            return []
        only = scope.unit_id if scope.role.value == "dukcapil" else unit_id
        async with self.database.pool.acquire() as conn:
            return await office_rows(conn, day, unit_id=only)

    async def unit_rows(self, scope: Scope, day: date, upt_id: str | None = None) -> list[dict[str, Any]]:
        seen = prisons_seen(scope)
        if seen is None or (upt_id is not None and seen[1] not in (None, upt_id)):
            return []
        async with self.database.pool.acquire() as conn:
            return await unit_rows(conn, day, seen[0], seen[1] or upt_id)

    async def unit_history(self, upt_id: str, first: date, last: date) -> list[tuple[date, dict[str, Any]]]:
        rows = await self.database.pool.fetch(HISTORY_SQL, upt_id, first, last)
        return [(r["day"], {k: v for k, v in dict(r).items() if k != "day"}) for r in rows]

    async def unit_parts(self, upt_id: str, day: date) -> list[dict[str, Any]]:
        rows = await self.database.pool.fetch(
            "SELECT snapshot, part, parts, status, received, accepted, rejected, warnings, received_at, lateness "
            "FROM submission_parts WHERE upt_id = $1 AND day = $2 ORDER BY snapshot, part",
            upt_id,
            day,
        )
        return [dict(r) for r in rows]

    async def parts_by_hour(self, scope: Scope, day: date) -> list[tuple[int, str, int, int]]:
        seen = prisons_seen(scope)
        if seen is None:
            return []
        kanwil, only = seen
        rows = await self.database.pool.fetch(
            "SELECT extract(hour FROM p.received_at AT TIME ZONE 'Asia/Jakarta')::int AS hour, "
            "COALESCE(p.lateness, 'on_time') AS lateness, count(*) AS parts, sum(p.accepted) AS accepted "
            "FROM submission_parts p JOIN units u USING (upt_id) WHERE p.day = $1 "
            "AND ($2::text IS NULL OR u.kanwil_id = $2) AND ($3::text IS NULL OR p.upt_id = $3) "
            "GROUP BY 1, 2 ORDER BY 1, 2",
            day,
            kanwil,
            only,
        )
        return [(r["hour"], r["lateness"], r["parts"], int(r["accepted"] or 0)) for r in rows]

    async def cases(self, limit: int) -> list[dict[str, Any]]:
        rows = await self.database.pool.fetch(
            "(SELECT kabkota, packet_id, opened_at, requested, requested_by, decision, operator, decided_at "
            " FROM cases WHERE decision IS NULL ORDER BY opened_at LIMIT $1) "
            "UNION ALL (SELECT kabkota, packet_id, opened_at, requested, requested_by, decision, operator, decided_at "
            " FROM cases WHERE decision IS NOT NULL ORDER BY decided_at DESC LIMIT 20)",
            limit,
        )
        return [dict(r) for r in rows]

    async def case(self, kabkota: str, packet_id: str, reader: str) -> dict[str, Any] | None:
        async with self.database.pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                "SELECT * FROM cases WHERE kabkota = $1 AND packet_id = $2", kabkota, packet_id
            )
            if row is None:
                return None
            await conn.execute(
                "INSERT INTO case_reads (username, kabkota, packet_id) VALUES ($1, $2, $3)",
                reader,
                kabkota,
                packet_id,
            )
            reads = await conn.fetch(
                "SELECT username, at FROM case_reads WHERE kabkota = $1 AND packet_id = $2 ORDER BY at, id",
                kabkota,
                packet_id,
            )
            return dict(row) | {"reads": [(r["username"], r["at"]) for r in reads]}

    async def open_alerts(self) -> list[Alert]:
        rows = await self.database.pool.fetch(
            "SELECT key, kind, severity, text_id, text_en, unit_id, kanwil_id, centre_only FROM alerts "
            "WHERE closed_at IS NULL ORDER BY opened_at, key"
        )
        return [Alert(**dict(r)) for r in rows]

    async def services_seen(self) -> dict[str, datetime]:
        return {
            r["service"]: r["last_message_at"]
            for r in await self.database.pool.fetch("SELECT * FROM services_seen")
        }

    async def recent_dead_letters(self, limit: int) -> list[dict[str, Any]]:
        rows = await self.database.pool.fetch(
            "SELECT message_id, reason, detail, service, queue, routing_key, sender, dead_at FROM dead_letters "
            "ORDER BY dead_at DESC, message_id LIMIT $1",
            limit,
        )
        return [dict(r) for r in rows]

    async def dead_letter_reasons(self, since: datetime) -> dict[str, int]:
        rows = await self.database.pool.fetch(
            "SELECT reason, count(*) AS n FROM dead_letters WHERE dead_at >= $1 GROUP BY reason", since
        )
        return {r["reason"]: r["n"] for r in rows}

    async def runs_of_day(self, day: date) -> list[dict[str, Any]]:
        rows = await self.database.pool.fetch(
            "SELECT * FROM runs WHERE day = $1 ORDER BY started_at DESC", day
        )
        return [dict(r) for r in rows]

    async def finished_runs_since(self, since: date) -> list[dict[str, Any]]:
        rows = await self.database.pool.fetch(
            "SELECT DISTINCT ON (day) * FROM runs WHERE state = 'finished' AND day >= $1 "
            "ORDER BY day, updated_at DESC, run_id DESC",
            since,
        )
        return [dict(r) for r in rows]

    async def run(self, run_id: str) -> dict[str, Any] | None:
        row = await self.database.pool.fetchrow("SELECT * FROM runs WHERE run_id = $1", run_id)
        return None if row is None else dict(row)

    async def run_lines(self, scope: Scope, run_id: str) -> list[dict[str, Any]]:
        return (await self.lines_of_runs(scope, [run_id]))[run_id]

    async def lines_of_runs(
        self, scope: Scope, run_ids: Sequence[str], upt_id: str | None = None
    ) -> dict[str, list[dict[str, Any]]]:
        found: dict[str, list[dict[str, Any]]] = {run_id: [] for run_id in run_ids}
        seen = prisons_seen(scope)
        if seen is None or not run_ids or (upt_id is not None and seen[1] not in (None, upt_id)):
            return found
        kanwil, only = seen[0], seen[1] or upt_id
        rows = await self.database.pool.fetch(
            "SELECT l.*, u.name, u.kanwil_id, u.kanwil_name, u.kabkota_code, u.kabkota_name "
            "FROM run_lines l JOIN units u USING (upt_id) "
            "WHERE l.run_id = ANY($1::text[]) AND ($2::text IS NULL OR u.kanwil_id = $2) "
            "AND ($3::text IS NULL OR l.upt_id = $3) ORDER BY u.kanwil_id, l.upt_id",
            list(run_ids),
            kanwil,
            only,
        )
        for r in rows:
            found[r["run_id"]].append(dict(r))
        return found

    async def pipeline_captures(self, scope: Scope, since: datetime) -> list[CaptureTimes]:
        if scope.role.value not in ("pusat", "dukcapil"):
            return []
        only = scope.unit_id if scope.role.value == "dukcapil" else None
        rows = await self.database.pool.fetch(
            "SELECT c.kabkota, c.packet_id, c.status, c.changed_at, c.sent_at, c.received_at, c.verdict_at, c.code, "
            "c.nik_masked "
            "FROM ektp_captures c JOIN offices o ON o.kabkota_code = c.kabkota "
            "WHERE ($1::text IS NULL OR o.unit_id = $1) AND (c.changed_at >= $2 OR c.status = ANY($3::text[]))",
            only,
            since,
            sorted(OPEN_STATUSES),
        )
        return [CaptureTimes(**dict(r)) for r in rows]

    async def dead_letter_count(self, since: datetime) -> int:
        return int(
            await self.database.pool.fetchval("SELECT count(*) FROM dead_letters WHERE dead_at >= $1", since)
        )

    async def account(self, username: str) -> Account | None:
        row = await self.database.pool.fetchrow(
            "SELECT username, password_hash, unit_id, disabled_at IS NOT NULL AS disabled FROM accounts "
            "WHERE username = $1",
            username,
        )
        return Account(**dict(row)) if row else None

    async def list_accounts(self) -> list[Account]:
        rows = await self.database.pool.fetch(
            "SELECT username, password_hash, unit_id, disabled_at IS NOT NULL AS disabled FROM accounts "
            "ORDER BY username"
        )
        return [Account(**dict(r)) for r in rows]

    async def usernames(self) -> set[str]:
        return {r[0] for r in await self.database.pool.fetch("SELECT username FROM accounts")}

    async def upsert_accounts(self, accounts: Sequence[Account]) -> int:
        await self.database.pool.executemany(
            "INSERT INTO accounts (username, password_hash, unit_id) VALUES ($1, $2, $3) ON CONFLICT (username) "
            "DO UPDATE SET password_hash = EXCLUDED.password_hash, unit_id = EXCLUDED.unit_id",
            [(a.username, a.password_hash, a.unit_id) for a in accounts],
        )
        return len(accounts)

    async def create_account(self, account: Account) -> bool:
        status = await self.database.pool.execute(
            "INSERT INTO accounts (username, password_hash, unit_id) VALUES ($1, $2, $3) "
            "ON CONFLICT (username) DO NOTHING",
            account.username,
            account.password_hash,
            account.unit_id,
        )
        return bool(status.endswith(" 1"))

    async def set_password(self, username: str, password_hash: str) -> bool:
        async with self.database.pool.acquire() as conn, conn.transaction():
            status = await conn.execute(
                "UPDATE accounts SET password_hash = $2 WHERE username = $1", username, password_hash
            )
            await conn.execute("DELETE FROM sessions WHERE username = $1", username)
        return bool(status.endswith(" 1"))

    async def set_disabled(self, username: str, disabled: bool) -> bool:
        async with self.database.pool.acquire() as conn, conn.transaction():
            status = await conn.execute(
                "UPDATE accounts SET disabled_at = CASE WHEN $2 THEN COALESCE(disabled_at, now()) END "
                "WHERE username = $1",
                username,
                disabled,
            )
            if disabled:
                await conn.execute("DELETE FROM sessions WHERE username = $1", username)
        return bool(status.endswith(" 1"))

    async def create_session(self, token_hash: str, username: str, expires_at: datetime) -> None:
        async with self.database.pool.acquire() as conn, conn.transaction():
            await conn.execute("DELETE FROM sessions WHERE expires_at < now()")
            await conn.execute(
                "INSERT INTO sessions (token_hash, username, expires_at) VALUES ($1, $2, $3)",
                token_hash,
                username,
                expires_at,
            )

    async def session_user(self, token_hash: str, now: datetime) -> Account | None:
        row = await self.database.pool.fetchrow(
            "SELECT a.username, a.password_hash, a.unit_id, false AS disabled FROM sessions s "
            "JOIN accounts a USING (username) "
            "WHERE s.token_hash = $1 AND s.expires_at > $2 AND a.disabled_at IS NULL",
            token_hash,
            now,
        )
        return Account(**dict(row)) if row else None

    async def end_session(self, token_hash: str) -> None:
        await self.database.pool.execute("DELETE FROM sessions WHERE token_hash = $1", token_hash)

    async def login_failures(self, keys: Sequence[str], since: datetime) -> dict[str, list[datetime]]:
        found: dict[str, list[datetime]] = {k: [] for k in keys}
        for r in await self.database.pool.fetch(
            "SELECT key, at FROM login_failures WHERE key = ANY($1::text[]) AND at >= $2", list(keys), since
        ):
            found[r["key"]].append(r["at"])
        return found

    async def record_login_failure(self, keys: Sequence[str], at: datetime) -> None:
        async with self.database.pool.acquire() as conn, conn.transaction():
            await conn.execute("DELETE FROM login_failures WHERE at < $1::timestamptz - interval '1 day'", at)
            await conn.executemany(
                "INSERT INTO login_failures (key, at) VALUES ($1, $2)", [(k, at) for k in keys]
            )

    async def clear_login_failures(self, keys: Sequence[str]) -> None:
        await self.database.pool.execute("DELETE FROM login_failures WHERE key = ANY($1::text[])", list(keys))

"""Where the consolidator keeps the central records."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Protocol

from shared import db
from shared.contracts import SdpRecordsChecked
from shared.runtime import Database

from . import domain

CONSUMER = "consolidator.sdp"
# After the upsert: (upt_id, central records, flagged records) of every UPT the part touched, and a version.
Totals = Sequence[tuple[str, int, int]]
Announce = Callable[[Totals, int], Sequence[db.Outgoing]]


class InmateStore(Protocol):
    async def consolidate(self, checked: SdpRecordsChecked, announce: Announce) -> bool:
        """Upsert the part's records and flags, then store what `announce` makes of the new totals.
        False if the message was consumed before."""


class PostgresInmateStore:
    def __init__(self, database: Database) -> None:
        self.database = database

    async def consolidate(self, checked: SdpRecordsChecked, announce: Announce) -> bool:
        async with self.database.pool.acquire() as conn, conn.transaction():
            if not await db.claim(conn, CONSUMER, checked.message_id):
                return False
            touched = domain.touched_units(checked.upt_id, checked.flag_sets)
            population = {c.inmate_id: c for c in checked.population_checks}
            # Parts touching the same UPT take turns, so the totals each one announces include the others.
            await conn.execute(
                "SELECT pg_advisory_xact_lock(k) FROM "
                "(SELECT DISTINCT hashtextextended(u, 1) AS k FROM unnest($1::text[]) u ORDER BY 1) s",
                touched,
            )
            # An older snapshot arriving late never overwrites a newer one.
            await conn.executemany(
                "INSERT INTO inmates AS i (upt_id, inmate_id, nik, full_name, sex, birth_date, register, "
                "register_number, custody_status, as_of, snapshot, record, submission_id, population) "
                "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12::text::jsonb, $13, $14::text::jsonb) "
                "ON CONFLICT (upt_id, inmate_id) DO UPDATE SET nik = EXCLUDED.nik, "
                "full_name = EXCLUDED.full_name, sex = EXCLUDED.sex, birth_date = EXCLUDED.birth_date, "
                "register = EXCLUDED.register, register_number = EXCLUDED.register_number, "
                "custody_status = EXCLUDED.custody_status, as_of = EXCLUDED.as_of, "
                "snapshot = EXCLUDED.snapshot, record = EXCLUDED.record, "
                "submission_id = EXCLUDED.submission_id, population = EXCLUDED.population, updated_at = now() "
                "WHERE (i.as_of, i.snapshot) <= (EXCLUDED.as_of, EXCLUDED.snapshot)",
                [
                    (
                        checked.upt_id,
                        r.inmate_id,
                        r.nik,
                        r.full_name,
                        r.sex.value,
                        r.birth_date,
                        r.book.value,
                        r.register_number,
                        r.custody_status.value,
                        checked.as_of,
                        checked.snapshot,
                        r.model_dump_json(),
                        checked.message_id,
                        population[r.inmate_id].model_dump_json() if r.inmate_id in population else None,
                    )
                    for r in checked.records
                ],
            )
            await conn.executemany(
                "INSERT INTO inmate_flags AS f (upt_id, inmate_id, flags, seq) VALUES ($1, $2, $3::text::jsonb, $4) "
                "ON CONFLICT (upt_id, inmate_id) DO UPDATE SET flags = EXCLUDED.flags, seq = EXCLUDED.seq, "
                "updated_at = now() WHERE f.seq < EXCLUDED.seq",
                [
                    (u, i, json.dumps(f), seq)
                    for u, i, f, seq in domain.flag_rows(checked.flag_sets, checked.flag_seq)
                ],
            )
            rows = await conn.fetch(
                "SELECT i.upt_id, count(*) AS total, count(*) FILTER (WHERE f.flags <> '[]') AS flagged "
                "FROM inmates i LEFT JOIN inmate_flags f USING (upt_id, inmate_id) "
                "WHERE i.upt_id = ANY($1::text[]) GROUP BY i.upt_id",
                touched,
            )
            version = await conn.fetchval("SELECT nextval('announce_seq')")
            totals = [(r["upt_id"], r["total"], r["flagged"]) for r in rows]
            await db.enqueue(conn, self.database.schema, announce(totals, version))
            return True

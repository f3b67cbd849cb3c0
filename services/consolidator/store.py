"""Where the consolidator keeps staged parts, captures and persons: one unit of work per message."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Protocol

from shared import db
from shared.runtime import Database

from .domain.ektp import CaptureDecision, CaptureState
from .domain.links import LinkTarget
from .domain.sdp import ROW_COLUMNS, PartStatus, StagedPart

# The class of the transaction-scoped advisory locks that serialise the messages of one e-KTP capture.
CAPTURE_LOCKS = 0x43415054  # "CAPT"

# The feed message of each changed person's current state, many at once: each part aggregated per person in
# one pass, assembled by the same SQL functions as person_json (migrations 0004, 0007), so feed and lookup agree.
FEED_ROWS = """
WITH changed AS (SELECT p FROM persons p WHERE {where}),
ids AS (SELECT (c.p).person_id AS person_id FROM changed c),
sources AS (SELECT person_id, jsonb_agg(jsonb_build_object('source', source, 'id', id) ORDER BY source, id) AS j
            FROM (SELECT e.person_id, 'sdp' AS source, e.upt_id || '/' || e.inmate_id AS id
                  FROM episodes e JOIN ids USING (person_id)
                  UNION ALL
                  SELECT c.person_id, 'ektp', c.kabkota || '/' || c.packet_id
                  FROM captures c JOIN ids USING (person_id)) s
            GROUP BY person_id),
merged AS (SELECT m.into_id AS person_id, jsonb_agg(merge_json(m) ORDER BY m.merged) AS j
           FROM merges m JOIN ids ON ids.person_id = m.into_id GROUP BY m.into_id),
episodes AS (SELECT e.person_id,
                    jsonb_agg(episode_json(e, a, f.flags) ORDER BY e.first_seen, e.upt_id, e.inmate_id) AS j
             FROM episodes e JOIN ids USING (person_id)
             LEFT JOIN upt_applied a ON a.upt_id = e.upt_id
             LEFT JOIN inmate_flags f ON f.upt_id = e.upt_id AND f.inmate_id = e.inmate_id
             GROUP BY e.person_id),
histories AS (SELECT m.kabkota, m.packet_id, jsonb_agg(move_json(m) ORDER BY m.at, m.message_id, m.seq) AS j
              FROM capture_moves m JOIN captures c USING (kabkota, packet_id) JOIN ids USING (person_id)
              GROUP BY m.kabkota, m.packet_id),
ektp AS (SELECT c.person_id, jsonb_agg(capture_json(c, h.j) ORDER BY c.status_at, c.kabkota, c.packet_id) AS j
         FROM captures c JOIN ids USING (person_id)
         LEFT JOIN histories h USING (kabkota, packet_id) GROUP BY c.person_id)
INSERT INTO outbox (message_id, exchange, routing_key, body, headers)
SELECT 'central-C' || (c.p).person_id || '-v' || (c.p).version, 'events', 'central.record.changed',
       convert_to(jsonb_build_object(
           'message_id', 'central-C' || (c.p).person_id || '-v' || (c.p).version, 'schema_version', 1,
           'produced_at', to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
           'central_id', 'C' || (c.p).person_id, 'version', (c.p).version, 'changed', to_jsonb((c.p).changed),
           'cause', (c.p).cause,
           'person', person_document(c.p, s.j, m.j, e.j, k.j))::text, 'UTF8'),
       '{{"schema_version": 1}}'::jsonb
FROM changed c
LEFT JOIN sources s ON s.person_id = (c.p).person_id
LEFT JOIN merged m ON m.person_id = (c.p).person_id
LEFT JOIN episodes e ON e.person_id = (c.p).person_id
LEFT JOIN ektp k ON k.person_id = (c.p).person_id
ON CONFLICT (message_id) DO NOTHING
"""


class Stores(Protocol):
    """What a use case may load and save inside one transaction."""

    async def claim(self, consumer: str, message_id: str) -> bool:
        """Record the message as consumed; False if it was consumed before (then change nothing)."""

    def send(self, *messages: db.Outgoing) -> None:
        """Messages to publish once the transaction commits."""

    async def save_part_status(self, status: PartStatus) -> None: ...

    async def stage_part(self, staged: StagedPart) -> None:
        """Replace the part's staged rows, mark it checked, keep the newer flag sets."""

    async def load_capture(self, kabkota: str, packet_id: str) -> CaptureState | None: ...

    async def save_capture(self, decision: CaptureDecision, message_id: str) -> None: ...

    async def person_with_nik(self, nik: str, *, create: bool) -> int | None:
        """The person holding the NIK (made with only the NIK when `create`), or None."""

    async def person_changed(self, person_id: int, changed: Sequence[str], cause: str) -> None:
        """A new version of the person, published once on the central feed."""

    async def load_link_target(self, person_id: int) -> LinkTarget | None: ...

    async def set_nik(self, person_id: int, nik: str) -> None: ...

    async def merge_persons(
        self, merged: int, into: int, *, reason: str, cause: str, confirmed_by: str
    ) -> None:
        """Record the merge and move the merged person's episodes and captures (its sources) to `into`."""

    async def record_link(
        self, message_id: str, publisher: str, person_id: int | None, fields: LinkFields
    ) -> None:
        """Keep a link command and its outcome (applied or the refusal's code)."""


@dataclass(frozen=True)
class LinkFields:
    nik: str
    operator: str
    reason: str
    outcome: str


UnitOfWork = Callable[[], AbstractAsyncContextManager[Stores]]


class PostgresStores:
    def __init__(self, conn: db.Conn, schema: str) -> None:
        self.conn = conn
        self.schema = schema
        self.outgoing: list[db.Outgoing] = []

    async def claim(self, consumer: str, message_id: str) -> bool:
        return await db.claim(self.conn, consumer, message_id)

    def send(self, *messages: db.Outgoing) -> None:
        self.outgoing.extend(messages)

    async def save_part_status(self, s: PartStatus) -> None:
        await self.conn.execute(
            "INSERT INTO sdp_parts AS p (upt_id, as_of, snapshot, part, parts, submission_id, processed_at, "
            "stored, received, accepted, refused, warnings, lateness) "
            "VALUES ($1, $2, $3, $4, $5, $6, now(), $7, $8, $9, $10, $11, $12) "
            "ON CONFLICT (upt_id, as_of, snapshot, part) DO UPDATE SET parts = EXCLUDED.parts, "
            "submission_id = EXCLUDED.submission_id, processed_at = EXCLUDED.processed_at, "
            "stored = EXCLUDED.stored, received = EXCLUDED.received, accepted = EXCLUDED.accepted, "
            "refused = EXCLUDED.refused, warnings = EXCLUDED.warnings, lateness = EXCLUDED.lateness "
            "WHERE p.stored IS NOT TRUE OR EXCLUDED.stored",  # a refused resend never undoes a kept part
            s.upt_id, s.as_of, s.snapshot, s.part, s.parts, s.submission_id,
            s.stored, s.received, s.accepted, s.refused, s.warnings, s.lateness,
        )  # fmt: skip

    async def stage_part(self, staged: StagedPart) -> None:
        key = (staged.upt_id, staged.as_of, staged.snapshot, staged.part)
        await self.conn.execute(
            "DELETE FROM sdp_rows WHERE upt_id = $1 AND as_of = $2 AND snapshot = $3 AND part = $4", *key
        )
        if staged.rows:
            await self.conn.copy_records_to_table(
                "sdp_rows", records=staged.rows, columns=ROW_COLUMNS, schema_name=self.schema
            )
        await self.conn.execute(
            "INSERT INTO sdp_parts AS p (upt_id, as_of, snapshot, part, parts, submission_id, checked) "
            "VALUES ($1, $2, $3, $4, $5, $6, true) "
            "ON CONFLICT (upt_id, as_of, snapshot, part) DO UPDATE SET checked = true",
            *key, staged.parts, staged.submission_id,
        )  # fmt: skip
        if staged.flags:  # one statement for the part's flag sets, not one per record
            await self.conn.execute(
                "INSERT INTO inmate_flags AS f (upt_id, inmate_id, flags, seq) "
                "SELECT * FROM unnest($1::text[], $2::text[], $3::jsonb[], $4::bigint[]) "
                "ON CONFLICT (upt_id, inmate_id) DO UPDATE SET flags = EXCLUDED.flags, seq = EXCLUDED.seq, "
                "updated_at = now() WHERE f.seq < EXCLUDED.seq",
                *(list(column) for column in zip(*staged.flags, strict=True)),
            )

    async def load_capture(self, kabkota: str, packet_id: str) -> CaptureState | None:
        # The registry's status events and dedup's verdict for one capture arrive on two queues at once: the
        # first of them finds no row to lock, so a lock on the capture's key holds the other back until it
        # committed (else the second insert overwrote the first's NIK or status with its own NULL).
        await self.conn.execute(
            "SELECT pg_advisory_xact_lock($1, hashtext($2))", CAPTURE_LOCKS, f"{kabkota}/{packet_id}"
        )
        row = await self.conn.fetchrow(
            "SELECT status, status_at, nik, person_id, anomalies FROM captures "
            "WHERE kabkota = $1 AND packet_id = $2 FOR UPDATE",
            kabkota,
            packet_id,
        )
        if row is None:
            return None
        return CaptureState(
            kabkota, packet_id, row["status"], row["status_at"], row["nik"], row["person_id"],
            tuple(row["anomalies"]),
        )  # fmt: skip

    async def save_capture(self, d: CaptureDecision, message_id: str) -> None:
        s = d.state
        await self.conn.execute(
            "INSERT INTO captures AS c (kabkota, packet_id, person_id, nik, status, status_at, finding, "
            "verdict, anomalies) VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9) "
            "ON CONFLICT (kabkota, packet_id) DO UPDATE SET person_id = EXCLUDED.person_id, "
            "nik = EXCLUDED.nik, status = EXCLUDED.status, status_at = EXCLUDED.status_at, "
            "finding = COALESCE(EXCLUDED.finding, c.finding), verdict = COALESCE(EXCLUDED.verdict, c.verdict), "
            "anomalies = EXCLUDED.anomalies, updated_at = now()",
            s.kabkota, s.packet_id, s.person_id, s.nik, s.status, s.status_at, d.finding,
            d.verdict, list(s.anomalies),
        )  # fmt: skip
        if d.moves:
            await self.conn.executemany(
                "INSERT INTO capture_moves (kabkota, packet_id, message_id, seq, from_status, to_status, at, "
                "code, source, implied, out_of_order) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) "
                "ON CONFLICT DO NOTHING",
                [
                    (s.kabkota, s.packet_id, message_id, m.seq, m.from_status, m.to_status, m.at, m.code,
                     d.source, m.implied, m.out_of_order)
                    for m in d.moves
                ],
            )  # fmt: skip

    async def person_with_nik(self, nik: str, *, create: bool) -> int | None:
        found = await self.conn.fetchval("SELECT person_id FROM persons WHERE nik = $1", nik)
        if found is None and create:
            found = await self.conn.fetchval(
                "INSERT INTO persons (nik, version) VALUES ($1, 0) ON CONFLICT (nik) DO UPDATE "
                "SET nik = EXCLUDED.nik RETURNING person_id",
                nik,
            )
        return None if found is None else int(found)

    async def person_changed(self, person_id: int, changed: Sequence[str], cause: str) -> None:
        # A single person's change goes on the feed in its own transaction, every version of it.
        await self.conn.execute(
            "UPDATE persons SET version = version + 1, fed_version = version + 1, changed = $2, cause = $3, "
            "updated_at = now() WHERE person_id = $1",
            person_id,
            list(changed),
            cause,
        )
        await self.conn.execute(FEED_ROWS.format(where="p.person_id = $1"), person_id)

    async def load_link_target(self, person_id: int) -> LinkTarget | None:
        row = await self.conn.fetchrow(
            "SELECT person_id, nik, merged_into FROM persons WHERE person_id = $1 FOR UPDATE", person_id
        )
        return None if row is None else LinkTarget(row["person_id"], row["nik"], row["merged_into"])

    async def set_nik(self, person_id: int, nik: str) -> None:
        await self.conn.execute("UPDATE persons SET nik = $2 WHERE person_id = $1", person_id, nik)

    async def merge_persons(
        self, merged: int, into: int, *, reason: str, cause: str, confirmed_by: str
    ) -> None:
        await self.conn.execute(
            "INSERT INTO merges (merged, into_id, reason, cause, confirmed_by) VALUES ($1, $2, $3, $4, $5)",
            merged, into, reason, cause, confirmed_by,
        )  # fmt: skip
        await self.conn.execute("UPDATE persons SET merged_into = $2 WHERE person_id = $1", merged, into)
        for table in ("episodes", "captures"):
            await self.conn.execute(f"UPDATE {table} SET person_id = $2 WHERE person_id = $1", merged, into)

    async def record_link(
        self, message_id: str, publisher: str, person_id: int | None, fields: LinkFields
    ) -> None:
        await self.conn.execute(
            "INSERT INTO link_requests (message_id, publisher, person_id, nik, operator, reason, outcome) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
            message_id, publisher, person_id, fields.nik, fields.operator, fields.reason, fields.outcome,
        )  # fmt: skip


def postgres_unit_of_work(database: Database) -> UnitOfWork:
    """One transaction per call; the messages sent inside it enter the outbox in the same transaction."""

    @asynccontextmanager
    async def unit() -> AsyncIterator[Stores]:
        async with database.pool.acquire() as conn, conn.transaction():
            stores = PostgresStores(conn, database.schema)
            yield stores
            await db.enqueue(conn, database.schema, stores.outgoing)
            # Feed rows are written by SQL (person_changed): wake the relay for them too, at commit.
            await conn.execute("SELECT pg_notify($1, '')", f"{database.schema}_outbox")

    return unit

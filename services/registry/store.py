"""Where the registry keeps submissions, snapshots and accepted records (and, for e-KTP, captures)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Protocol

from pydantic import TypeAdapter

from shared import db
from shared.contracts import (
    EktpReceipt,
    InmateRecord,
    Lateness,
    SdpRecordsAccepted,
    SubmissionProcessed,
    SubmissionReceipt,
)
from shared.ektp import EktpStatus
from shared.runtime import Database

from .domain.ektp import Capture, Verdict
from .domain.sdp import SnapshotDecision, StoredSnapshot

CONSUMER = "registry.sdp"
_RECORDS = TypeAdapter(list[InmateRecord])
_RECORDS_MARK = b'"records":[]'


def accepted_body(event: SdpRecordsAccepted, records_json: bytes) -> bytes:
    """The event's JSON with its records spliced in as already serialised for storage: a part's records
    are serialised once, not once for the table and again for the event."""
    head = event.model_copy(update={"records": []}).model_dump_json().encode()
    if head.count(_RECORDS_MARK) != 1:  # a quoted key inside a value is escaped, so this cannot happen
        raise ValueError("cannot place the records in the event")
    return head.replace(_RECORDS_MARK, b'"records":' + records_json)


@dataclass(frozen=True)
class PartKey:
    upt_id: str
    as_of: date
    snapshot: int
    part: int
    inmate_ids: Sequence[str]  # the accepted records' ids, to find those another part already holds


@dataclass(frozen=True)
class PartWrite:
    """What to store for one consumed part, decided once the snapshot's state is known."""

    receipt: SubmissionReceipt
    status: SubmissionProcessed
    decision: SnapshotDecision | None  # None: the part is refused as a whole and stores no records
    lateness: Lateness | None
    records: Sequence[InmateRecord]
    outgoing: Sequence[db.Outgoing]


# Given the UPT-day's snapshots and the inmate ids other parts of this snapshot hold: what to write.
Decide = Callable[[Sequence[StoredSnapshot], set[str]], PartWrite]


class SubmissionStore(Protocol):
    async def save_part(
        self, message_id: str, sender: str, key: PartKey | None, decide: Decide
    ) -> SubmissionReceipt | None:
        """In one transaction, serialised per UPT and day: read the snapshots, let `decide` judge, store.
        If this message was consumed before, store nothing and return the receipt it got then."""


class PostgresSubmissionStore:
    def __init__(self, database: Database) -> None:
        self.database = database

    async def save_part(
        self, message_id: str, sender: str, key: PartKey | None, decide: Decide
    ) -> SubmissionReceipt | None:
        async with self.database.pool.acquire() as conn, conn.transaction():
            if not await db.claim(conn, CONSUMER, message_id):
                earlier = await conn.fetchval(
                    "SELECT receipt::text FROM submissions WHERE message_id = $1", message_id
                )
                return SubmissionReceipt.model_validate_json(earlier) if earlier else None
            existing: list[StoredSnapshot] = []
            taken: set[str] = set()
            if key is not None:
                existing, taken = await self._snapshots(conn, key)
            write = decide(existing, taken)
            outgoing = list(write.outgoing)
            if key is not None and write.decision is not None:
                records_json = await self._store_part(conn, key, message_id, write)
                outgoing = [
                    db.Outgoing(o.exchange, o.routing_key, o.message, accepted_body(o.message, records_json))
                    if isinstance(o.message, SdpRecordsAccepted) and o.message.records is write.records
                    else o
                    for o in outgoing
                ]
            s = write.status
            await conn.execute(
                "INSERT INTO submissions (message_id, sender, upt_id, as_of, snapshot, part, parts, status, "
                "received, accepted, rejected, warnings, receipt) "
                "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13::text::jsonb)",
                message_id,
                sender,
                write.receipt.upt_id,
                s.as_of,
                s.snapshot,
                s.part,
                s.parts,
                s.status.value,
                s.received,
                s.accepted,
                s.rejected,
                s.warnings,
                write.receipt.model_dump_json(),
            )
            await db.enqueue(conn, self.database.schema, outgoing)
            return None

    @staticmethod
    async def _snapshots(conn: db.Conn, key: PartKey) -> tuple[list[StoredSnapshot], set[str]]:
        # Parts of one UPT's day take turns: completeness and supersession need a stable view.
        await conn.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended($1, 2))", f"{key.upt_id}|{key.as_of}"
        )
        rows = await conn.fetch(
            "SELECT s.snapshot, s.parts, s.completed_at IS NOT NULL AS complete, "
            "s.superseded_at IS NOT NULL AS superseded, "
            "coalesce(array_agg(p.part) FILTER (WHERE p.part IS NOT NULL), '{}') AS received "
            "FROM snapshots s LEFT JOIN snapshot_parts p USING (upt_id, as_of, snapshot) "
            "WHERE s.upt_id = $1 AND s.as_of = $2 GROUP BY s.snapshot, s.parts, s.completed_at, s.superseded_at",
            key.upt_id,
            key.as_of,
        )
        existing = [
            StoredSnapshot(
                r["snapshot"], r["parts"], frozenset(r["received"]), r["complete"], r["superseded"]
            )
            for r in rows
        ]
        taken = {
            r[0]
            for r in await conn.fetch(
                "SELECT inmate_id FROM sdp_records WHERE upt_id = $1 AND as_of = $2 AND snapshot = $3 AND part <> $4 "
                "AND inmate_id = ANY($5::text[])",
                key.upt_id,
                key.as_of,
                key.snapshot,
                key.part,
                list(key.inmate_ids),
            )
        }
        return existing, taken

    @staticmethod
    async def _store_part(conn: db.Conn, key: PartKey, message_id: str, write: PartWrite) -> bytes:
        """Store the part's records; their JSON (one array, as stored)."""
        decision, s = write.decision, write.status
        assert decision is not None
        assert decision.state is not None
        await conn.execute(
            "INSERT INTO snapshots (upt_id, as_of, snapshot, parts) VALUES ($1, $2, $3, $4) "
            "ON CONFLICT (upt_id, as_of, snapshot) DO NOTHING",
            key.upt_id,
            key.as_of,
            key.snapshot,
            decision.state.parts,
        )
        # A resent part is the same part: it replaces what that part held before.
        await conn.execute(
            "INSERT INTO snapshot_parts (upt_id, as_of, snapshot, part, message_id, received_at, lateness, "
            "accepted, rejected, warnings) VALUES ($1, $2, $3, $4, $5, now(), $6, $7, $8, $9) "
            "ON CONFLICT (upt_id, as_of, snapshot, part) DO UPDATE SET message_id = EXCLUDED.message_id, "
            "received_at = EXCLUDED.received_at, lateness = EXCLUDED.lateness, accepted = EXCLUDED.accepted, "
            "rejected = EXCLUDED.rejected, warnings = EXCLUDED.warnings",
            key.upt_id,
            key.as_of,
            key.snapshot,
            key.part,
            message_id,
            (write.lateness.value if write.lateness else "on_time"),
            s.accepted,
            s.rejected,
            s.warnings,
        )
        await conn.execute(
            "DELETE FROM sdp_records WHERE upt_id = $1 AND as_of = $2 AND snapshot = $3 AND part = $4",
            key.upt_id,
            key.as_of,
            key.snapshot,
            key.part,
        )
        records_json = _RECORDS.dump_json(list(write.records))
        if write.records:
            # One array, split by PostgreSQL: one serialisation for the whole part.
            await conn.execute(
                "INSERT INTO sdp_records (upt_id, as_of, inmate_id, snapshot, part, nik, record, submission_id) "
                "SELECT $1, $2, r->>'inmate_id', $3, $4, r->>'nik', r, $5 "
                "FROM jsonb_array_elements($6::text::jsonb) AS r",
                key.upt_id,
                key.as_of,
                key.snapshot,
                key.part,
                message_id,
                records_json.decode(),
            )
        if decision.completes:
            await conn.execute(
                "UPDATE snapshots SET completed_at = now(), completed_lateness = $4 "
                "WHERE upt_id = $1 AND as_of = $2 AND snapshot = $3",
                key.upt_id,
                key.as_of,
                key.snapshot,
                write.lateness.value if write.lateness else None,
            )
        if decision.supersedes:
            older = list(decision.supersedes)
            await conn.execute(
                "UPDATE snapshots SET superseded_at = now() WHERE upt_id = $1 AND as_of = $2 "
                "AND snapshot = ANY($3::int[])",
                key.upt_id,
                key.as_of,
                older,
            )
            await conn.execute(
                "DELETE FROM sdp_records WHERE upt_id = $1 AND as_of = $2 AND snapshot = ANY($3::int[])",
                key.upt_id,
                key.as_of,
                older,
            )
        return records_json


# --- e-KTP --------------------------------------------------------------------------------------------------

EKTP_CONSUMER = "registry.ektp"


@dataclass(frozen=True)
class CaptureFields:
    """What the registry keeps of a packet (no templates)."""

    nik: str
    content_hash: str
    station_id: str
    demographics: str  # JSON
    modalities: str  # JSON summary: which templates came, at what quality
    captured_at: datetime


@dataclass(frozen=True)
class CaptureWrite:
    verdict: Verdict
    fields: CaptureFields | None  # set when a packet's content is to be recorded
    receipt: EktpReceipt
    outgoing: Sequence[db.Outgoing]


@dataclass(frozen=True)
class CaptureSaved:
    receipt: EktpReceipt
    forward: bool  # the packet is to go on to dedup (also when this is a redelivery)
    duplicate: bool  # this message was consumed before


DecideCapture = Callable[[Capture | None], CaptureWrite]


class CaptureStore(Protocol):
    async def save_capture(
        self, message_id: str, kind: str, kabkota: str, packet_id: str, decide: DecideCapture
    ) -> CaptureSaved:
        """In one transaction with the capture locked: let `decide` judge its current state, record the moves,
        the receipt and the outgoing messages. A message consumed before changes nothing and gets its answer."""


class PostgresCaptureStore:
    def __init__(self, database: Database) -> None:
        self.database = database

    async def save_capture(
        self, message_id: str, kind: str, kabkota: str, packet_id: str, decide: DecideCapture
    ) -> CaptureSaved:
        async with self.database.pool.acquire() as conn, conn.transaction():
            if not await db.claim(conn, EKTP_CONSUMER, message_id):
                row = await conn.fetchrow(
                    "SELECT receipt::text AS receipt, forwarded FROM ektp_messages WHERE message_id = $1",
                    message_id,
                )
                if row is None:  # consumed, but the answer was not kept (should not happen)
                    raise RuntimeError(f"message {message_id} consumed without a stored receipt")
                return CaptureSaved(EktpReceipt.model_validate_json(row["receipt"]), row["forwarded"], True)
            # Reserve or lock the capture's row (one statement) so that messages about it take turns.
            row = await conn.fetchrow(
                "INSERT INTO captures AS c (kabkota, packet_id, status) VALUES ($1, $2, 'UNREGISTERED') "
                "ON CONFLICT (kabkota, packet_id) DO UPDATE SET status = c.status "
                "RETURNING c.status, c.content_hash, c.nik",
                kabkota,
                packet_id,
            )
            assert row is not None
            current = (
                None
                if row["status"] == EktpStatus.UNREGISTERED and row["content_hash"] is None
                else Capture(packet_id, kabkota, EktpStatus(row["status"]), row["content_hash"], row["nik"])
            )
            write = decide(current)
            verdict = write.verdict
            moved = verdict.status is not None and bool(verdict.moves)
            f = write.fields
            if f is not None and not verdict.refused and not verdict.already_received:
                await conn.execute(
                    "UPDATE captures SET nik = $3, content_hash = $4, station_id = $5, demographics = $6::text::jsonb, "
                    "modalities = $7::text::jsonb, captured_at = $8, received_at = now(), "
                    "status = coalesce($9, status), updated_at = CASE WHEN $9 IS NULL THEN updated_at ELSE now() END "
                    "WHERE kabkota = $1 AND packet_id = $2",
                    kabkota,
                    packet_id,
                    f.nik,
                    f.content_hash,
                    f.station_id,
                    f.demographics,
                    f.modalities,
                    f.captured_at,
                    verdict.status.value if moved and verdict.status is not None else None,
                )
            elif moved and verdict.status is not None:
                await conn.execute(
                    "UPDATE captures SET status = $3, updated_at = now() WHERE kabkota = $1 AND packet_id = $2",
                    kabkota,
                    packet_id,
                    verdict.status.value,
                )
            if verdict.moves:
                moves = verdict.moves
                await conn.execute(
                    "INSERT INTO capture_moves (kabkota, packet_id, from_status, to_status, code, implied, at, "
                    "message_id) SELECT $1, $2, f, t, c, i, a, $8 FROM "
                    "unnest($3::text[], $4::text[], $5::text[], $6::bool[], $7::timestamptz[]) AS m(f, t, c, i, a)",
                    kabkota,
                    packet_id,
                    [m.from_status.value for m in moves],
                    [m.to_status.value for m in moves],
                    [m.code for m in moves],
                    [m.implied for m in moves],
                    [m.at for m in moves],
                    message_id,
                )
            # The same packet again while it waits for dedup is forwarded again (dedup drops repeats by id).
            forward = verdict.forward or (
                verdict.already_received and row["status"] == EktpStatus.SENT_FOR_DEDUP
            )
            await conn.execute(
                "INSERT INTO ektp_messages (message_id, kind, kabkota, packet_id, receipt, forwarded) "
                "VALUES ($1, $2, $3, $4, $5::text::jsonb, $6)",
                message_id,
                kind,
                kabkota,
                packet_id,
                write.receipt.model_dump_json(),
                forward,
            )
            await db.enqueue(conn, self.database.schema, write.outgoing)
            return CaptureSaved(write.receipt, forward, False)

    async def status_of(self, kabkota: str, packet_id: str) -> EktpStatus | None:
        value = await self.database.pool.fetchval(
            "SELECT status FROM captures WHERE kabkota = $1 AND packet_id = $2", kabkota, packet_id
        )
        return EktpStatus(value) if value else None

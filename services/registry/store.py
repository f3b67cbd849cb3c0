"""Where the registry keeps submissions and accepted records."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from shared import db
from shared.contracts import InmateRecord, SubmissionProcessed, SubmissionReceipt
from shared.runtime import Database

CONSUMER = "registry.sdp"


@dataclass(frozen=True)
class StoredSubmission:
    """One consumed part, its accepted records and the messages to send once it is committed."""

    message_id: str
    sender: str
    status: SubmissionProcessed
    receipt: SubmissionReceipt
    records: Sequence[InmateRecord]
    outgoing: Sequence[db.Outgoing]


class SubmissionStore(Protocol):
    async def save(self, submission: StoredSubmission) -> SubmissionReceipt | None:
        """Store everything in one transaction and return None; if this message was consumed before,
        store nothing and return the receipt it got then."""


class PostgresSubmissionStore:
    def __init__(self, database: Database) -> None:
        self.database = database

    async def save(self, submission: StoredSubmission) -> SubmissionReceipt | None:
        s = submission.status
        async with self.database.pool.acquire() as conn, conn.transaction():
            if not await db.claim(conn, CONSUMER, submission.message_id):
                earlier = await conn.fetchval(
                    "SELECT receipt::text FROM submissions WHERE message_id = $1", submission.message_id
                )
                return SubmissionReceipt.model_validate_json(earlier) if earlier else None
            await conn.execute(
                "INSERT INTO submissions (message_id, sender, upt_id, as_of, snapshot, part, parts, status, "
                "received, accepted, rejected, warnings, receipt) "
                "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13::text::jsonb)",
                submission.message_id,
                submission.sender,
                s.upt_id,
                s.as_of,
                s.snapshot,
                s.part,
                s.parts,
                s.status.value,
                s.received,
                s.accepted,
                s.rejected,
                s.warnings,
                submission.receipt.model_dump_json(),
            )
            if submission.records:
                await conn.executemany(
                    "INSERT INTO sdp_records AS r (upt_id, as_of, inmate_id, snapshot, part, nik, record, "
                    "submission_id) VALUES ($1, $2, $3, $4, $5, $6, $7::text::jsonb, $8) "
                    "ON CONFLICT (upt_id, as_of, inmate_id) DO UPDATE SET snapshot = EXCLUDED.snapshot, "
                    "part = EXCLUDED.part, nik = EXCLUDED.nik, record = EXCLUDED.record, "
                    "submission_id = EXCLUDED.submission_id, stored_at = now() "
                    "WHERE r.snapshot <= EXCLUDED.snapshot",
                    [
                        (
                            s.upt_id,
                            s.as_of,
                            r.inmate_id,
                            s.snapshot,
                            s.part,
                            r.nik,
                            r.model_dump_json(),
                            submission.message_id,
                        )
                        for r in submission.records
                    ],
                )
            await db.enqueue(conn, self.database.schema, submission.outgoing)
            return None

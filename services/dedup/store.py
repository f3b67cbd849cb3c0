"""Where dedup keeps the NIK claims it has seen and the gallery of sealed templates."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from shared import db
from shared.contracts import AdjudicationDecision, Message
from shared.runtime import Database

from .domain import Claim, linkage

CONSUMER = "dedup.sdp"
# Given every stored claim on the touched NIKs and a fresh sequence number: the messages to send.
Decide = Callable[[Sequence[Claim], int], Sequence[db.Outgoing]]


class ClaimStore(Protocol):
    async def record_claims(
        self, message_id: str, upt_id: str, inmate_ids: Sequence[str], claims: Sequence[Claim], decide: Decide
    ) -> bool:
        """In one transaction: read the claims on the NIKs these records hold and will hold, let `decide`
        judge, replace the records' claims and store the messages `decide` returned.
        False if the message was consumed before."""


class PostgresClaimStore:
    def __init__(self, database: Database) -> None:
        self.database = database

    @staticmethod
    async def _lock(conn: db.Conn, niks: set[str]) -> None:
        # Parts of different UPTs run concurrently: serialise on each NIK, in one order to avoid deadlocks.
        await conn.execute(
            "SELECT pg_advisory_xact_lock(k) FROM "
            "(SELECT DISTINCT hashtextextended(n, 0) AS k FROM unnest($1::text[]) n ORDER BY 1) s",
            sorted(niks),
        )

    async def record_claims(
        self, message_id: str, upt_id: str, inmate_ids: Sequence[str], claims: Sequence[Claim], decide: Decide
    ) -> bool:
        ids = list(inmate_ids)
        async with self.database.pool.acquire() as conn, conn.transaction():
            if not await db.claim(conn, CONSUMER, message_id):
                return False
            previous = "SELECT nik FROM nik_claims WHERE upt_id = $1 AND inmate_id = ANY($2::text[])"
            niks = {c.nik for c in claims} | {r["nik"] for r in await conn.fetch(previous, upt_id, ids)}
            await self._lock(conn, niks)
            # Another part of this UPT may have moved a record to a NIK we did not lock; lock that too.
            if extra := {r["nik"] for r in await conn.fetch(previous, upt_id, ids)} - niks:
                await self._lock(conn, extra)
                niks |= extra
            rows = await conn.fetch(
                "SELECT upt_id, inmate_id, nik, person FROM nik_claims WHERE nik = ANY($1::text[])",
                list(niks),
            )
            seq = await conn.fetchval("SELECT nextval('flag_seq')")
            outgoing = decide([Claim(**dict(r)) for r in rows], seq)
            await conn.execute(
                "DELETE FROM nik_claims WHERE upt_id = $1 AND inmate_id = ANY($2::text[])", upt_id, ids
            )
            if claims:  # one statement for the part's claims (a statement per row cost the database more)
                await conn.execute(
                    "INSERT INTO nik_claims (upt_id, inmate_id, nik, person) "
                    "SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[])",
                    [c.upt_id for c in claims],
                    [c.inmate_id for c in claims],
                    [c.nik for c in claims],
                    [c.person for c in claims],
                )
            await db.enqueue(conn, self.database.schema, outgoing)
            return True


# --- gallery ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GalleryRow:
    person_id: int
    nik: str
    sealed: bytes


class GalleryStore(Protocol):
    async def key_check(self) -> bytes | None: ...

    async def set_key_check(self, sealed: bytes) -> bool: ...

    async def count(self) -> int: ...

    def rows(self, *, batch: int = 20_000) -> AsyncIterator[list[GalleryRow]]: ...

    async def copy_in(self, rows: Sequence[tuple[str, str, str, str, bytes]]) -> None: ...


class PostgresGalleryStore:
    def __init__(self, database: Database) -> None:
        self.database = database

    async def key_check(self) -> bytes | None:
        value = await self.database.pool.fetchval("SELECT key_check FROM gallery_key WHERE id = 1")
        return bytes(value) if value is not None else None

    async def set_key_check(self, sealed: bytes) -> bool:
        """Record the key's check value if the gallery has none yet; False if it already had one."""
        done = await self.database.pool.fetchval(
            "INSERT INTO gallery_key (id, key_check) VALUES (1, $1) ON CONFLICT (id) DO NOTHING RETURNING true",
            sealed,
        )
        return bool(done)

    async def count(self) -> int:
        return int(await self.database.pool.fetchval("SELECT count(*) FROM gallery"))

    async def rows(self, *, batch: int = 20_000) -> AsyncIterator[list[GalleryRow]]:
        """Everyone, in person_id order, a batch at a time (keyset pagination: no long transaction)."""
        after = 0
        while True:
            records = await self.database.pool.fetch(
                "SELECT person_id, nik, templates FROM gallery WHERE person_id > $1 ORDER BY person_id LIMIT $2",
                after,
                batch,
            )
            if not records:
                return
            yield [GalleryRow(r["person_id"], r["nik"], bytes(r["templates"])) for r in records]
            after = records[-1]["person_id"]

    async def copy_in(self, rows: Sequence[tuple[str, str, str, str, bytes]]) -> None:
        """(nik, kabkota, packet_id, origin, sealed templates) rows, with COPY."""
        async with self.database.pool.acquire() as conn:
            await conn.copy_records_to_table(
                "gallery", records=rows, columns=("nik", "kabkota", "packet_id", "origin", "templates")
            )


# --- e-KTP verdicts ---------------------------------------------------------------------------------------

EKTP_CONSUMER = "dedup.ektp"


@dataclass(frozen=True)
class VerdictWrite:
    """One decided capture, ready to store: the gallery row to add (sealed) and the event to publish."""

    message_id: str
    kabkota: str
    packet_id: str
    nik: str
    sealed: bytes | None  # the capture's templates when it joins the gallery, or waits for adjudication
    adjudicate: bool
    # Given the person_ids given so far in this transaction (by message id): the verdict event.
    event: Callable[[dict[str, int]], Message]
    person: linkage.Person | None = None  # demographics entering the population record (a unique capture)
    # For a capture that waits for adjudication: the desk's case, from the verdict event and the population
    # record's people among its candidates (by NIK).
    case: Callable[[Message, Mapping[str, linkage.Person]], Message] | None = None


class VerdictStore(Protocol):
    async def processed(self, message_ids: Sequence[str]) -> set[str]: ...

    async def record_verdicts(self, writes: Sequence[VerdictWrite]) -> dict[str, int]: ...


class PostgresVerdictStore:
    def __init__(self, database: Database) -> None:
        self.database = database

    async def processed(self, message_ids: Sequence[str]) -> set[str]:
        rows = await self.database.pool.fetch(
            "SELECT message_id FROM inbox WHERE consumer = $1 AND message_id = ANY($2::text[])",
            EKTP_CONSUMER,
            list(message_ids),
        )
        return {r[0] for r in rows}

    async def record_verdicts(self, writes: Sequence[VerdictWrite]) -> dict[str, int]:
        """One transaction for the batch; the person_id given to each capture that joined the gallery."""
        people: dict[str, int] = {}
        async with self.database.pool.acquire() as conn, conn.transaction():
            outgoing: list[db.Outgoing] = []
            for w in writes:
                if not await db.claim(conn, EKTP_CONSUMER, w.message_id):
                    continue
                person_id = None
                if w.sealed is not None and not w.adjudicate:
                    person_id = await conn.fetchval(
                        "INSERT INTO gallery (nik, kabkota, packet_id, origin, templates) "
                        "VALUES ($1, $2, $3, 'enrolment', $4) RETURNING person_id",
                        w.nik,
                        w.kabkota,
                        w.packet_id,
                        w.sealed,
                    )
                    people[w.message_id] = int(person_id)
                if w.person is not None and person_id is not None:
                    await _add_to_population(conn, w.person)
                event = w.event(people)
                await conn.execute(
                    "INSERT INTO verdicts (message_id, kabkota, packet_id, status, finding, person_id, verdict, "
                    "decided_at) VALUES ($1, $2, $3, $4, $5, $6, $7::text::jsonb, now())",
                    w.message_id,
                    w.kabkota,
                    w.packet_id,
                    str(getattr(event, "status", "")),
                    str(getattr(event, "finding", "")),
                    person_id,
                    event.model_dump_json(),
                )
                if w.adjudicate:
                    await conn.execute(
                        "INSERT INTO adjudications (kabkota, packet_id, verdict_message_id, nik, templates) "
                        "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (kabkota, packet_id) DO UPDATE SET "
                        "verdict_message_id = EXCLUDED.verdict_message_id, nik = EXCLUDED.nik, "
                        "templates = EXCLUDED.templates, decision = NULL, decided_by = NULL, decided_at = NULL",
                        w.kabkota,
                        w.packet_id,
                        event.message_id,
                        w.nik,
                        w.sealed,
                    )
                outgoing.append(db.Outgoing("events", event.ROUTING_KEY, event))
                if w.adjudicate and w.case is not None:
                    niks = [c.nik for c in getattr(event, "candidates", [])]
                    known = await conn.fetch(f"{_PERSON} WHERE nik = ANY($1::text[])", niks)
                    case = w.case(event, {r["nik"]: _person(r) for r in known})
                    outgoing.append(db.Outgoing("events", case.ROUTING_KEY, case))
            await db.enqueue(conn, self.database.schema, outgoing)
        return people


async def _add_to_population(conn: Any, p: linkage.Person) -> None:
    await conn.execute(
        "INSERT INTO population (nik, full_name, sex, birth_date, birth_place, mother_name, blocks) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (nik) DO NOTHING",
        p.nik,
        p.full_name,
        p.sex,
        p.birth_date,
        p.birth_place,
        p.mother_name,
        sorted(linkage.blocking_keys(p)),
    )


# --- population record ---------------------------------------------------------------------------------------

_PERSON = "SELECT nik, full_name, sex, birth_date, birth_place, mother_name, blocks FROM population"


def _person(r: Any) -> linkage.Person:
    return linkage.Person(
        r["nik"], r["full_name"], r["sex"], r["birth_date"], r["birth_place"], r["mother_name"]
    )


class PostgresPopulationStore:
    def __init__(self, database: Database) -> None:
        self.database = database

    async def holders(self, niks: Sequence[str]) -> dict[str, linkage.Person]:
        rows = await self.database.pool.fetch(f"{_PERSON} WHERE nik = ANY($1::text[])", list(niks))
        return {r["nik"]: _person(r) for r in rows}

    async def blocked(self, keys: Sequence[str]) -> list[tuple[linkage.Person, frozenset[str]]]:
        rows = await self.database.pool.fetch(f"{_PERSON} WHERE blocks && $1::text[]", list(keys))
        return [(_person(r), frozenset(r["blocks"])) for r in rows]

    async def add(self, people: Sequence[linkage.Person]) -> None:
        async with self.database.pool.acquire() as conn, conn.transaction():
            for p in people:
                await _add_to_population(conn, p)


# --- adjudication -------------------------------------------------------------------------------------------

COMMANDS_CONSUMER = "dedup.commands"


@dataclass(frozen=True)
class Adjudicated:
    outcome: str  # applied | unknown_capture | already_decided | repeated
    nik: str | None = None
    sealed: bytes | None = None  # the templates that joined the gallery (decision: unique)
    person_id: int | None = None


class AdjudicationStore(Protocol):
    async def adjudicate(
        self,
        message_id: str,
        user_id: str,
        cmd: AdjudicationDecision,
        events: Callable[[int | None, str], Sequence[Message]],
    ) -> Adjudicated:
        """`events`: given the new gallery person (or None) and the capture's NIK, what the decision publishes."""


class PostgresAdjudicationStore:
    def __init__(self, database: Database) -> None:
        self.database = database

    async def adjudicate(
        self,
        message_id: str,
        user_id: str,
        cmd: AdjudicationDecision,
        events: Callable[[int | None, str], Sequence[Message]],
    ) -> Adjudicated:
        """Apply a decision once, in one transaction with its audit entry and the verdict it publishes."""
        async with self.database.pool.acquire() as conn, conn.transaction():
            if not await db.claim(conn, COMMANDS_CONSUMER, message_id):
                return Adjudicated("repeated")
            row = await conn.fetchrow(
                "SELECT nik, templates, decision FROM adjudications WHERE kabkota = $1 AND packet_id = $2 FOR UPDATE",
                cmd.kabkota,
                cmd.packet_id,
            )
            if row is None:
                result = Adjudicated("unknown_capture")
            elif row["decision"] is not None:
                result = Adjudicated("already_decided")
            else:
                sealed = bytes(row["templates"])
                person_id = None
                if cmd.decision == "unique":
                    person_id = int(
                        await conn.fetchval(
                            "INSERT INTO gallery (nik, kabkota, packet_id, origin, templates) "
                            "VALUES ($1, $2, $3, 'enrolment', $4) RETURNING person_id",
                            row["nik"],
                            cmd.kabkota,
                            cmd.packet_id,
                            sealed,
                        )
                    )
                await conn.execute(
                    "UPDATE adjudications SET decision = $3, decided_by = $4, operator = $5, reason = $6, "
                    "decided_at = now(), templates = NULL WHERE kabkota = $1 AND packet_id = $2",
                    cmd.kabkota,
                    cmd.packet_id,
                    cmd.decision,
                    user_id,
                    cmd.operator,
                    cmd.reason,
                )
                await db.enqueue(
                    conn,
                    self.database.schema,
                    [db.Outgoing("events", m.ROUTING_KEY, m) for m in events(person_id, row["nik"])],
                )
                result = Adjudicated(
                    "applied", row["nik"], sealed if cmd.decision == "unique" else None, person_id
                )
            await conn.execute(
                "INSERT INTO adjudication_audit (message_id, user_id, operator, kabkota, packet_id, decision, "
                "reason, outcome) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                message_id,
                user_id,
                cmd.operator,
                cmd.kabkota,
                cmd.packet_id,
                cmd.decision,
                cmd.reason,
                result.outcome,
            )
            return result

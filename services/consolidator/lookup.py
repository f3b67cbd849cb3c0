"""Where the lookup API reads people and its logins, and appends its audit rows."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import astuple, dataclass
from datetime import date, datetime
from typing import Any, Literal

import asyncpg
from pydantic import BaseModel, ConfigDict, Field

QueryKind = Literal["nik", "central_id", "report"]
Outcome = Literal["found", "not_found", "refused", "invalid", "unauthenticated"]

# A merge chain longer than this is a data error (or a cycle): the lookup stops following it there.
MAX_MERGE_HOPS = 32

# The record asked for, then each record it was merged into; the last one reached is the one answered, with
# `redirected_from` naming the one asked for when they differ. One round trip, the document left as text.
_FOLLOW_MERGES = """
WITH RECURSIVE chain (person_id, merged_into, hops) AS (
    SELECT person_id, merged_into, 0 FROM persons WHERE {anchor}
    UNION ALL
    SELECT p.person_id, p.merged_into, c.hops + 1
    FROM chain c JOIN persons p ON p.person_id = c.merged_into
    WHERE c.hops < {max_hops}
), asked AS (SELECT person_id FROM chain WHERE hops = 0)
SELECT (SELECT person_id FROM asked) AS asked, c.person_id,
       (person_json(c.person_id) || jsonb_build_object(
            'redirected_from', CASE WHEN c.hops = 0 THEN NULL ELSE 'C' || (SELECT person_id FROM asked) END
       ))::text AS document
FROM chain c ORDER BY c.hops DESC LIMIT 1
"""
_BY_NIK = _FOLLOW_MERGES.format(anchor="nik = $1", max_hops=MAX_MERGE_HOPS)
_BY_ID = _FOLLOW_MERGES.format(anchor="person_id = $1", max_hops=MAX_MERGE_HOPS)


@dataclass(frozen=True)
class ApiUser:
    username: str
    role: str
    password_hash: str
    disabled: bool


@dataclass(frozen=True)
class Found:
    """The record answered (`person_id`, JSON text) and the one asked for (differs when it was merged away)."""

    asked: int
    person_id: int
    document: str

    @property
    def redirected(self) -> bool:
        return self.asked != self.person_id


@dataclass(frozen=True)
class AuditEntry:
    """One lookup_audit row: who asked what, why, and what they were answered."""

    who: str
    role: str
    purpose: str | None
    query_kind: QueryKind
    query: str
    person_id: int | None
    outcome: Outcome
    status: int


class LookupStore:
    """Plain reads and the audit insert on the consolidator's pool (opened later, hence the provider)."""

    def __init__(self, pool_provider: Callable[[], asyncpg.Pool]) -> None:
        self.pool_provider = pool_provider

    async def user(self, username: str) -> ApiUser | None:
        row = await self.pool_provider().fetchrow(
            "SELECT username, role, password_hash, disabled FROM api_users WHERE username = $1", username
        )
        return ApiUser(**dict(row)) if row else None

    async def by_nik(self, nik: str) -> Found | None:
        return await self._find(_BY_NIK, nik)

    async def by_person_id(self, person_id: int) -> Found | None:
        return await self._find(_BY_ID, person_id)

    async def _find(self, sql: str, key: str | int) -> Found | None:
        row = await self.pool_provider().fetchrow(sql, key)
        return Found(row["asked"], row["person_id"], row["document"]) if row else None

    async def audit(self, entries: Sequence[AuditEntry]) -> None:
        """Append the entries in one statement (one commit)."""
        columns = list(zip(*(astuple(e) for e in entries), strict=True))
        await self.pool_provider().execute(
            "INSERT INTO lookup_audit (who, role, purpose, query_kind, query, person_id, outcome, status) "
            "SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bigint[], "
            "$7::text[], $8::int[])",
            *columns,
        )

    async def ping(self) -> bool:
        return bool(await self.pool_provider().fetchval("SELECT 1"))


# The shape of person_json (0004_person_view.sql) as the API answers it, for the OpenAPI document only:
# answers go out as the database wrote them, unparsed.
class Identity(BaseModel):
    full_name: str
    sex: str | None
    birth_date: date | None
    birth_place: str | None
    mother_name: str | None


class SourceRef(BaseModel):
    source: str = Field(description="sdp or ektp")
    id: str = Field(description="<upt>/<inmate> or <kabkota>/<packet>")


class MergedRecord(BaseModel):
    central_id: str
    reason: str
    cause: str
    at: datetime


class Episode(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    upt_id: str
    inmate_id: str
    register_: str = Field(alias="register")  # `register` would shadow BaseModel.register
    register_number: str
    entry_date: date
    detention_start: date | None
    detention_expiry: date | None
    extension_days: int
    extended_until: date | None
    extensions: list[Any]
    sentence_days: int | None
    expected_release: date | None
    custody_status: str
    state: str = Field(description="active, departed, transferred or released")
    ended_on: date | None
    moved_to: str | None
    first_seen: date
    last_seen: date
    first_snapshot: str
    last_snapshot: str
    population: dict[str, Any] | None
    flags: list[Any]


class CaptureMove(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    from_: str = Field(alias="from")
    to: str
    at: datetime
    code: str | None
    source: str
    implied: bool
    out_of_order: bool


class Capture(BaseModel):
    kabkota: str
    packet_id: str
    status: str | None
    status_at: datetime | None
    finding: str | None
    anomalies: list[str]
    history: list[CaptureMove]


class PersonRecord(BaseModel):
    """One person's central record."""

    central_id: str = Field(description="'C' followed by the person's number")
    nik: str | None
    version: int
    merged_into: str | None = Field(description="set only on a record merged away (never answered)")
    identity: Identity
    provenance: dict[str, Any] = Field(description="field -> {source, message_id, as_of}")
    sources: list[SourceRef]
    merged: list[MergedRecord] = Field(description="records merged into this one")
    episodes: list[Episode]
    ektp: list[Capture]
    redirected_from: str | None = Field(
        description="the central id asked for when it was merged into this record, else null"
    )

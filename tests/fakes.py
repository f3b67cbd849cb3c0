"""In-memory stores with the same contracts as the Postgres ones, for handler tests without servers."""

from __future__ import annotations

import asyncio
import copy
import dataclasses
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from services.consolidator.domain.ektp import CaptureDecision, CaptureState
from services.consolidator.domain.links import LinkTarget
from services.consolidator.domain.sdp import PartStatus, StagedPart
from services.consolidator.store import LinkFields, Stores, UnitOfWork
from services.dedup.domain import Claim
from services.dedup.store import Decide
from services.monitor.domain import Role, Scope
from services.monitor.domain.alerts import Alert
from services.monitor.domain.cases import CaseState, DecisionRequest
from services.monitor.domain.live import LiveEvent
from services.monitor.domain.pipeline import OPEN_STATUSES, CaptureTimes
from services.monitor.domain.runs import LineSeen, RunSeen
from services.monitor.domain.status import CaptureSeen, PartSeen, RefusalSeen
from services.monitor.journal import UnitOfWork as MonitorUnitOfWork
from services.monitor.store import Account, DeadLetterSeen
from services.registry.domain.ektp import Capture
from services.registry.domain.sdp import StoredSnapshot
from services.registry.store import CaptureSaved, DecideCapture, PartKey, PartWrite
from services.registry.store import Decide as DecidePart
from shared import db
from shared.contracts import (
    WIB,
    AdjudicationCaseChanged,
    CentralInmatesUpdated,
    InmateRecord,
    SubmissionReceipt,
)
from shared.ektp import EktpStatus
from shared.units import Units


@dataclass
class FakeSubmissionStore:
    """Keeps parts and snapshots in dicts, with the same decisions as the Postgres store."""

    receipts: dict[str, SubmissionReceipt] = field(default_factory=dict)
    writes: dict[str, PartWrite] = field(default_factory=dict)
    snapshots: dict[tuple[str, date, int], dict[str, Any]] = field(default_factory=dict)
    records: dict[tuple[str, date, int], dict[str, tuple[int, InmateRecord]]] = field(default_factory=dict)
    outbox: list[db.Outgoing] = field(default_factory=list)

    async def save_part(
        self, message_id: str, sender: str, key: PartKey | None, decide: DecidePart
    ) -> SubmissionReceipt | None:
        if message_id in self.receipts:
            return self.receipts[message_id]
        existing: list[StoredSnapshot] = []
        taken: set[str] = set()
        if key is not None:
            existing = [
                StoredSnapshot(n, s["parts"], frozenset(s["received"]), s["complete"], s["superseded"])
                for (u, d, n), s in self.snapshots.items()
                if (u, d) == (key.upt_id, key.as_of)
            ]
            held = self.records.get((key.upt_id, key.as_of, key.snapshot), {})
            taken = {i for i in key.inmate_ids if i in held and held[i][0] != key.part}
        write = decide(existing, taken)
        if key is not None and write.decision is not None and write.decision.state is not None:
            snap = self.snapshots.setdefault(
                (key.upt_id, key.as_of, key.snapshot),
                {
                    "parts": write.decision.state.parts,
                    "received": set(),
                    "complete": False,
                    "superseded": False,
                },
            )
            snap["received"].add(key.part)
            held = self.records.setdefault((key.upt_id, key.as_of, key.snapshot), {})
            for inmate_id in [i for i, (p, _) in held.items() if p == key.part]:
                del held[inmate_id]
            held |= {r.inmate_id: (key.part, r) for r in write.records}
            snap["complete"] = snap["complete"] or write.decision.completes
            for older in write.decision.supersedes:
                self.snapshots[(key.upt_id, key.as_of, older)]["superseded"] = True
                self.records.pop((key.upt_id, key.as_of, older), None)
        self.receipts[message_id] = write.receipt
        self.writes[message_id] = write
        self.outbox += write.outgoing
        return None


@dataclass
class FakeCaptureStore:
    captures: dict[tuple[str, str], Capture] = field(default_factory=dict)
    moves: list[tuple[str, str, str, str]] = field(default_factory=list)
    answers: dict[str, CaptureSaved] = field(default_factory=dict)
    outbox: list[db.Outgoing] = field(default_factory=list)
    fail_with: BaseException | None = None

    async def save_capture(
        self, message_id: str, kind: str, kabkota: str, packet_id: str, decide: DecideCapture
    ) -> CaptureSaved:
        if self.fail_with is not None:
            raise self.fail_with
        if message_id in self.answers:
            earlier = self.answers[message_id]
            return CaptureSaved(earlier.receipt, earlier.forward, True)
        current = self.captures.get((kabkota, packet_id))
        write = decide(current)
        verdict = write.verdict
        if verdict.status is not None and verdict.moves:
            known = current.content_hash if current else None
            fresh = write.fields.content_hash if write.fields and not verdict.refused else None
            nik = (
                write.fields.nik if write.fields and not verdict.refused else current.nik if current else None
            )
            self.captures[(kabkota, packet_id)] = Capture(
                packet_id, kabkota, verdict.status, fresh or known, nik
            )
        self.moves += [(kabkota, packet_id, m.from_status.value, m.to_status.value) for m in verdict.moves]
        forward = verdict.forward or (
            verdict.already_received and current is not None and current.status is EktpStatus.SENT_FOR_DEDUP
        )
        saved = CaptureSaved(write.receipt, forward, False)
        self.answers[message_id] = saved
        self.outbox += write.outgoing
        return saved


@dataclass
class FakeClaimStore:
    claims: dict[tuple[str, str], Claim] = field(default_factory=dict)
    consumed: set[str] = field(default_factory=set)
    outbox: list[db.Outgoing] = field(default_factory=list)
    seq: int = 0

    async def record_claims(
        self, message_id: str, upt_id: str, inmate_ids: Sequence[str], claims: Sequence[Claim], decide: Decide
    ) -> bool:
        if message_id in self.consumed:
            return False
        self.consumed.add(message_id)
        niks = {c.nik for c in claims} | {
            c.nik for k, c in self.claims.items() if k[0] == upt_id and k[1] in inmate_ids
        }
        self.seq += 1
        self.outbox += decide([c for c in self.claims.values() if c.nik in niks], self.seq)
        for inmate_id in inmate_ids:
            self.claims.pop((upt_id, inmate_id), None)
        self.claims |= {c.key: c for c in claims}
        return True


@dataclass
class FakeCentre:
    """The consolidator's message stores as dicts, with no rules: what its units of work have committed."""

    inbox: set[tuple[str, str]] = field(default_factory=set)
    parts: dict[tuple[str, date, int, int], dict[str, Any]] = field(default_factory=dict)
    rows: dict[tuple[str, date, int, str], tuple[object, ...]] = field(default_factory=dict)
    flags: dict[tuple[str, str], tuple[int, str]] = field(default_factory=dict)
    captures: dict[tuple[str, str], CaptureDecision] = field(default_factory=dict)
    moves: dict[tuple[str, str, str, int], str] = field(default_factory=dict)
    persons: dict[int, dict[str, Any]] = field(default_factory=dict)
    feed: list[tuple[int, int, list[str], str]] = field(default_factory=list)
    merges: dict[int, tuple[int, str, str]] = field(default_factory=dict)
    links: dict[str, tuple[str, int | None, LinkFields]] = field(default_factory=dict)
    outbox: list[db.Outgoing] = field(default_factory=list)
    serial: asyncio.Lock = field(default_factory=asyncio.Lock)

    def unit_of_work(self) -> UnitOfWork:
        @asynccontextmanager
        async def unit() -> AsyncIterator[Stores]:
            async with self.serial:  # one unit at a time: what a unit reads, no other changes before it ends
                before = {k: copy.deepcopy(v) for k, v in self.__dict__.items() if k != "serial"}
                stores = FakeStores(self)
                try:
                    yield stores
                except BaseException:
                    self.__dict__.update(before)  # a rolled-back transaction leaves nothing behind
                    raise
                self.outbox += stores.outgoing

        return unit


class FakeStores:
    def __init__(self, centre: FakeCentre) -> None:
        self.centre = centre
        self.outgoing: list[db.Outgoing] = []

    async def claim(self, consumer: str, message_id: str) -> bool:
        if (consumer, message_id) in self.centre.inbox:
            return False
        self.centre.inbox.add((consumer, message_id))
        return True

    def send(self, *messages: db.Outgoing) -> None:
        self.outgoing.extend(messages)

    async def save_part_status(self, status: PartStatus) -> None:
        key = (status.upt_id, status.as_of, status.snapshot, status.part)
        old = self.centre.parts.get(key, {})
        if old.get("stored") and not status.stored:
            return
        self.centre.parts[key] = old | dataclasses.asdict(status)

    async def stage_part(self, staged: StagedPart) -> None:
        key = (staged.upt_id, staged.as_of, staged.snapshot, staged.part)
        self.centre.rows = {
            k: v for k, v in self.centre.rows.items() if k[:3] != key[:3] or v[4] != staged.part
        }
        for row in staged.rows:
            self.centre.rows[(staged.upt_id, staged.as_of, staged.snapshot, str(row[3]))] = row
        self.centre.parts[key] = self.centre.parts.get(key, {"parts": staged.parts}) | {"checked": True}
        for upt_id, inmate_id, flags, seq in staged.flags:
            if (upt_id, inmate_id) not in self.centre.flags or self.centre.flags[(upt_id, inmate_id)][
                0
            ] < seq:
                self.centre.flags[(upt_id, inmate_id)] = (seq, flags)

    async def load_capture(self, kabkota: str, packet_id: str) -> CaptureState | None:
        found = self.centre.captures.get((kabkota, packet_id))
        return None if found is None else found.state

    async def save_capture(self, decision: CaptureDecision, message_id: str) -> None:
        key = (decision.state.kabkota, decision.state.packet_id)
        old = self.centre.captures.get(key)
        if old is not None:
            decision = dataclasses.replace(
                decision, finding=decision.finding or old.finding, verdict=decision.verdict or old.verdict
            )
        self.centre.captures[key] = decision
        for m in decision.moves:
            self.centre.moves.setdefault((*key, message_id, m.seq), m.to_status)

    async def person_with_nik(self, nik: str, *, create: bool) -> int | None:
        for pid, person in self.centre.persons.items():
            if person["nik"] == nik:
                return pid
        if not create:
            return None
        pid = len(self.centre.persons) + 1
        self.centre.persons[pid] = {"nik": nik, "version": 0}
        return pid

    async def person_changed(self, person_id: int, changed: Sequence[str], cause: str) -> None:
        person = self.centre.persons[person_id]
        person["version"] += 1
        self.centre.feed.append((person_id, person["version"], list(changed), cause))

    async def load_link_target(self, person_id: int) -> LinkTarget | None:
        person = self.centre.persons.get(person_id)
        return None if person is None else LinkTarget(person_id, person["nik"], person.get("merged_into"))

    async def set_nik(self, person_id: int, nik: str) -> None:
        self.centre.persons[person_id]["nik"] = nik

    async def merge_persons(
        self, merged: int, into: int, *, reason: str, cause: str, confirmed_by: str
    ) -> None:
        self.centre.persons[merged]["merged_into"] = into
        self.centre.merges[merged] = (into, reason, confirmed_by)

    async def record_link(
        self, message_id: str, publisher: str, person_id: int | None, fields: LinkFields
    ) -> None:
        self.centre.links.setdefault(message_id, (publisher, person_id, fields))


@dataclass
class FakeMonitorStore:
    """The monitor's pages, status writes (`unit_of_work`) and live-event log, in dicts and lists."""

    units: Units | None = None
    parts: dict[tuple[str, date, int, int], PartSeen] = field(default_factory=dict)
    central: dict[str, CentralInmatesUpdated] = field(default_factory=dict)
    dead: dict[str, DeadLetterSeen] = field(default_factory=dict)
    accounts: dict[str, Account] = field(default_factory=dict)
    sessions: dict[str, tuple[str, datetime]] = field(default_factory=dict)
    consumed: set[str] = field(default_factory=set)
    captures: dict[tuple[str, str], CaptureSeen] = field(default_factory=dict)
    refusals: dict[tuple[str, date], int] = field(default_factory=dict)
    ektp_refusals: dict[tuple[str, date], int] = field(default_factory=dict)
    log: list[LiveEvent] = field(default_factory=list)
    listeners: list[Callable[[], None]] = field(default_factory=list)
    failures: dict[str, list[datetime]] = field(default_factory=dict)
    runs: dict[str, dict[str, Any]] = field(default_factory=dict)
    run_lines_kept: dict[tuple[str, str], LineSeen] = field(default_factory=dict)
    seen: dict[str, datetime] = field(default_factory=dict)
    alerts: dict[str, tuple[Alert, datetime, datetime | None]] = field(default_factory=dict)  # opened, closed
    cases_kept: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    case_reads: list[tuple[str, str, str]] = field(default_factory=list)
    case_read_at: list[datetime] = field(default_factory=list)
    sent: list[db.Outgoing] = field(default_factory=list)
    now: datetime = datetime(2026, 11, 20, 5, tzinfo=UTC)

    async def load_units(self, units: Units) -> None:
        self.units = units

    def unit_of_work(self) -> MonitorUnitOfWork:
        @asynccontextmanager
        async def unit() -> AsyncIterator[FakeMonitorStores]:
            tx = FakeMonitorStores(self)
            yield tx
            self.sent.extend(tx.outgoing)
            for event in tx.events:
                self.log.append(dataclasses.replace(event, id=len(self.log) + 1))
            for listener in list(self.listeners):
                listener()

        return unit

    # --- the live-event log --------------------------------------------------------------------------------------

    async def bounds(self) -> tuple[int | None, int]:
        return (self.log[0].id if self.log else None), (self.log[-1].id if self.log else 0)

    async def since(self, after: int, limit: int) -> list[LiveEvent]:
        return [e for e in self.log if e.id > after][:limit]

    async def prune(self, keep_hours: float) -> int:
        return 0

    @asynccontextmanager
    async def listening(self, on_change: Callable[[], None]) -> AsyncIterator[FakeMonitorStore]:
        self.listeners.append(on_change)
        try:
            yield self  # the fake reads its log the same way for everyone
        finally:
            self.listeners.remove(on_change)

    async def office_rows(
        self, scope: Scope, day: date, unit_id: str | None = None
    ) -> list[tuple[dict[str, Any], dict[str, int], int]]:
        assert self.units is not None
        rows = []
        for d in self.units.dukcapil:
            if scope.role.value in ("kanwil", "upt") or not scope.sees(d.unit_id, None):
                continue
            if unit_id and d.unit_id != unit_id:
                continue
            counts: dict[str, int] = {}
            for (kabkota, _), capture in self.captures.items():
                if kabkota == d.kabkota_code:
                    counts[capture.status] = counts.get(capture.status, 0) + 1
            office = {"unit_id": d.unit_id, "kabkota_code": d.kabkota_code, "name": d.name}
            rows.append((office, counts, self.ektp_refusals.get((d.kabkota_code, day), 0)))
        return rows

    async def unit_rows(self, scope: Scope, day: date, upt_id: str | None = None) -> list[dict[str, Any]]:
        assert self.units is not None
        kanwil = {k.kanwil_id: k.name for k in self.units.kanwil}
        rows = []
        for u in self.units.upts:
            if not scope.sees(u.upt_id, u.kanwil_id) or (upt_id and u.upt_id != upt_id):
                continue
            day_parts = [p for (uid, d, _, _), p in self.parts.items() if uid == u.upt_id and d == day]
            latest = max((p.snapshot for p in day_parts), default=None)  # the latest snapshot's parts alone
            parts = [p for p in day_parts if p.snapshot == latest]
            late = [p.lateness for p in parts if p.lateness]
            c = self.central.get(u.upt_id)
            rows.append(
                {
                    "upt_id": u.upt_id,
                    "name": u.name,
                    "kanwil_id": u.kanwil_id,
                    "kanwil_name": kanwil[u.kanwil_id],
                    "parts": max((p.parts or 0 for p in parts), default=None),
                    "parts_received": len(parts),
                    "received": sum(p.received for p in parts),
                    "accepted": sum(p.accepted for p in parts),
                    "rejected": sum(p.rejected for p in parts),
                    "warnings": sum(p.warnings for p in parts),
                    "last_submission_at": max((p.received_at for p in parts), default=None),
                    "lateness": max(late, key=("on_time", "after_10", "after_14").index) if late else None,
                    "refused_messages": self.refusals.get((u.upt_id, day), 0),
                    "central_total": c.central_total if c else None,
                    "flagged_total": c.flagged_total if c else None,
                }
            )
        return rows

    async def unit_history(self, upt_id: str, first: date, last: date) -> list[tuple[date, dict[str, Any]]]:
        days = [last - timedelta(days=n) for n in range((last - first).days + 1)]
        return [(d, r) for d in days for r in await self.unit_rows(Scope(Role.UPT, upt_id), d, upt_id)]

    async def unit_parts(self, upt_id: str, day: date) -> list[dict[str, Any]]:
        found = [p for (uid, d, _, _), p in sorted(self.parts.items()) if (uid, d) == (upt_id, day)]
        return [{k: v for k, v in dataclasses.asdict(p).items() if k not in ("upt_id", "day")} for p in found]

    async def dead_letter_count(self, since: datetime) -> int:
        return len(self.dead)

    async def account(self, username: str) -> Account | None:
        return self.accounts.get(username)

    async def list_accounts(self) -> list[Account]:
        return [self.accounts[k] for k in sorted(self.accounts)]

    async def usernames(self) -> set[str]:
        return set(self.accounts)

    async def upsert_accounts(self, accounts: Sequence[Account]) -> int:
        self.accounts |= {a.username: a for a in accounts}
        return len(accounts)

    async def create_account(self, account: Account) -> bool:
        if account.username in self.accounts:
            return False
        self.accounts[account.username] = account
        return True

    async def set_password(self, username: str, password_hash: str) -> bool:
        if username not in self.accounts:
            return False
        self.accounts[username] = dataclasses.replace(self.accounts[username], password_hash=password_hash)
        self.sessions = {t: s for t, s in self.sessions.items() if s[0] != username}
        return True

    async def set_disabled(self, username: str, disabled: bool) -> bool:
        if username not in self.accounts:
            return False
        self.accounts[username] = dataclasses.replace(self.accounts[username], disabled=disabled)
        if disabled:
            self.sessions = {t: s for t, s in self.sessions.items() if s[0] != username}
        return True

    async def create_session(self, token_hash: str, username: str, expires_at: datetime) -> None:
        self.sessions[token_hash] = (username, expires_at)

    async def session_user(self, token_hash: str, now: datetime) -> Account | None:
        username, expires = self.sessions.get(token_hash, ("", now))
        account = self.accounts.get(username) if expires > now else None
        return None if account is None or account.disabled else account

    async def end_session(self, token_hash: str) -> None:
        self.sessions.pop(token_hash, None)

    async def services_seen(self) -> dict[str, datetime]:
        return dict(self.seen)

    async def parts_by_hour(self, scope: Scope, day: date) -> list[tuple[int, str, int, int]]:
        assert self.units is not None
        out: dict[tuple[int, str], list[int]] = {}
        for (upt_id, d, _, _), p in self.parts.items():
            unit = self.units.upt(upt_id)
            if (
                d != day
                or unit is None
                or scope.role is Role.DUKCAPIL
                or not scope.sees(upt_id, unit.kanwil_id)
            ):
                continue
            hour = p.received_at.astimezone(WIB).hour
            counts = out.setdefault((hour, p.lateness or "on_time"), [0, 0])
            counts[0] += 1
            counts[1] += p.accepted
        return [(h, lateness, n, accepted) for (h, lateness), (n, accepted) in sorted(out.items())]

    async def cases(self, limit: int) -> list[dict[str, Any]]:
        open_ = sorted(
            (c for c in self.cases_kept.values() if c["decision"] is None), key=lambda c: c["opened_at"]
        )
        done = sorted((c for c in self.cases_kept.values() if c["decision"] is not None),
                      key=lambda c: c["decided_at"], reverse=True)  # fmt: skip
        return [*open_[:limit], *done[:20]]

    async def case(self, kabkota: str, packet_id: str, reader: str) -> dict[str, Any] | None:
        found = self.cases_kept.get((kabkota, packet_id))
        if found is None:
            return None
        self.case_reads.append((reader, kabkota, packet_id))
        self.case_read_at.append(datetime.now(UTC))
        reads = [
            (who, at)
            for (who, k, p), at in zip(self.case_reads, self.case_read_at, strict=True)
            if (k, p) == (kabkota, packet_id)
        ]
        return found | {"reads": reads}

    async def open_alerts(self) -> list[Alert]:
        found = [(opened, a.key, a) for a, opened, closed in self.alerts.values() if closed is None]
        return [a for _, _, a in sorted(found, key=lambda x: (x[0], x[1]))]

    async def recent_dead_letters(self, limit: int) -> list[dict[str, Any]]:
        letters = [dataclasses.asdict(d) | {"dead_at": at} for d, at in self.dead_at()]
        return sorted(letters, key=lambda d: (d["dead_at"], d["message_id"]), reverse=True)[:limit]

    async def dead_letter_reasons(self, since: datetime) -> dict[str, int]:
        out: dict[str, int] = {}
        for d, at in self.dead_at():
            if at >= since:
                out[d.reason] = out.get(d.reason, 0) + 1
        return out

    def dead_at(self) -> list[tuple[DeadLetterSeen, datetime]]:
        """(the fake keeps no time of death: every dead letter is as old as the fake's clock says)"""
        return [(d, self.now) for d in self.dead.values()]

    async def runs_of_day(self, day: date) -> list[dict[str, Any]]:
        found = [r for r in self.runs.values() if r["day"] == day]
        return sorted(found, key=lambda r: r["started_at"], reverse=True)

    async def run(self, run_id: str) -> dict[str, Any] | None:
        return self.runs.get(run_id)

    async def finished_runs_since(self, since: date) -> list[dict[str, Any]]:
        last: dict[date, dict[str, Any]] = {}
        for r in sorted(self.runs.values(), key=lambda r: (r["updated_at"], r["run_id"])):
            if r["state"] == "finished" and r["day"] >= since:
                last[r["day"]] = r
        return [last[d] for d in sorted(last)]

    async def lines_of_runs(
        self, scope: Scope, run_ids: Sequence[str], upt_id: str | None = None
    ) -> dict[str, list[dict[str, Any]]]:
        return {
            r: [x for x in await self.run_lines(scope, r) if upt_id in (None, x["upt_id"])] for r in run_ids
        }

    async def run_lines(self, scope: Scope, run_id: str) -> list[dict[str, Any]]:
        assert self.units is not None
        out = []
        for (rid, upt_id), line in sorted(self.run_lines_kept.items()):
            unit = self.units.upt(upt_id)
            if (
                rid != run_id
                or unit is None
                or scope.role is Role.DUKCAPIL
                or not scope.sees(upt_id, unit.kanwil_id)
            ):
                continue
            kanwil = next(k.name for k in self.units.kanwil if k.kanwil_id == unit.kanwil_id)
            out.append(
                dataclasses.asdict(line)
                | {"name": unit.name, "kanwil_id": unit.kanwil_id, "kanwil_name": kanwil,
                   "kabkota_code": unit.kabkota_code, "kabkota_name": unit.kabkota_name}
            )  # fmt: skip
        return sorted(out, key=lambda r: (r["kanwil_id"], r["upt_id"]))

    async def pipeline_captures(self, scope: Scope, since: datetime) -> list[CaptureTimes]:
        if scope.role not in (Role.PUSAT, Role.DUKCAPIL):
            return []
        assert self.units is not None
        mine = {d.kabkota_code for d in self.units.dukcapil if scope.sees(d.unit_id, None)}
        return [
            CaptureTimes(
                c.kabkota,
                c.packet_id,
                c.status,
                c.changed_at,
                c.sent_at,
                c.received_at,
                c.verdict_at,
                c.code,
                c.nik_masked,
            )
            for c in self.captures.values()
            if c.kabkota in mine and (c.changed_at >= since or c.status in OPEN_STATUSES)
        ]

    async def login_failures(self, keys: Sequence[str], since: datetime) -> dict[str, list[datetime]]:
        return {k: [at for at in self.failures.get(k, []) if at >= since] for k in keys}

    async def record_login_failure(self, keys: Sequence[str], at: datetime) -> None:
        for k in keys:
            self.failures.setdefault(k, []).append(at)

    async def clear_login_failures(self, keys: Sequence[str]) -> None:
        for k in keys:
            self.failures.pop(k, None)


class FakeMonitorStores:
    """One unit of work on a FakeMonitorStore: its writes land at once, its live events at the end."""

    def __init__(self, store: FakeMonitorStore) -> None:
        self.store = store
        self.events: list[LiveEvent] = []
        self.outgoing: list[db.Outgoing] = []

    def send(self, *messages: db.Outgoing) -> None:
        self.outgoing.extend(messages)

    async def save_case(self, c: AdjudicationCaseChanged) -> bool:
        key = (c.kabkota, c.packet_id)
        known = self.store.cases_kept.get(key)
        if c.state == "opened":
            if known is not None and not (known["decided_at"] and known["decided_at"] < c.produced_at):
                return False
            detail = c.model_dump(
                mode="json", exclude={"message_id", "produced_at", "decision", "operator", "reason"}
            )
            self.store.cases_kept[key] = {
                "kabkota": c.kabkota, "packet_id": c.packet_id, "opened_at": c.produced_at, "detail": detail,
                "requested": None, "requested_by": None, "requested_at": None, "decision": None, "operator": None,
                "reason": None, "decided_at": None,
            }  # fmt: skip
            return True
        if known is None or known["decision"] is not None:
            return False
        known |= {
            "decision": c.decision,
            "operator": c.operator,
            "reason": c.reason,
            "decided_at": c.produced_at,
        }
        return True

    async def load_case(self, kabkota: str, packet_id: str) -> CaseState:
        known = self.store.cases_kept.get((kabkota, packet_id))
        if known is None:
            return CaseState(known=False, decided=False)
        return CaseState(known=True, decided=known["decision"] is not None, requested=known["requested"])

    async def save_request(self, request: DecisionRequest, at: datetime) -> None:
        self.store.cases_kept[(request.kabkota, request.packet_id)] |= {
            "requested": request.decision, "requested_by": request.operator, "requested_at": at,
        }  # fmt: skip

    async def open_alert_keys(self) -> set[str]:
        return {k for k, (_, _, closed) in self.store.alerts.items() if closed is None}

    async def open_alert(self, alert: Alert, at: datetime) -> bool:
        known = self.store.alerts.get(alert.key)
        if known is not None and known[2] is None:
            return False
        self.store.alerts[alert.key] = (alert, at, None)
        return True

    async def close_alert(self, key: str, at: datetime) -> Alert | None:
        known = self.store.alerts.get(key)
        if known is None or known[2] is not None:
            return None
        self.store.alerts[key] = (known[0], known[1], at)
        return known[0]

    async def claim(self, message_id: str) -> bool:
        if message_id in self.store.consumed:
            return False
        self.store.consumed.add(message_id)
        return True

    def live(self, *events: LiveEvent) -> None:
        self.events.extend(events)

    async def take_live_turn(self) -> None:
        pass  # one event loop: a fake transaction never interleaves with another

    async def save_part(self, part: PartSeen) -> None:
        self.store.parts[(part.upt_id, part.day, part.snapshot, part.part)] = part

    async def count_refusal(self, refusal: RefusalSeen) -> None:
        key = (refusal.unit_id, refusal.day)
        self.store.refusals[key] = self.store.refusals.get(key, 0) + 1

    async def save_central(self, totals: CentralInmatesUpdated) -> None:
        known = self.store.central.get(totals.upt_id)
        if known is None or known.version < totals.version:
            self.store.central[totals.upt_id] = totals

    async def save_capture(self, capture: CaptureSeen) -> None:
        key = (capture.kabkota, capture.packet_id)
        known = self.store.captures.get(key)
        if known is None:
            self.store.captures[key] = capture
            return
        latest = capture if known.changed_at <= capture.changed_at else known

        def first(a: datetime | None, b: datetime | None) -> datetime | None:
            return min((t for t in (a, b) if t is not None), default=None)

        self.store.captures[key] = dataclasses.replace(
            latest,
            changed_at=max(known.changed_at, capture.changed_at),
            sent_at=first(known.sent_at, capture.sent_at),
            received_at=first(known.received_at, capture.received_at),
            verdict_at=first(known.verdict_at, capture.verdict_at),
            nik_masked=capture.nik_masked or known.nik_masked,
        )

    async def count_ektp_refusal(self, refusal: RefusalSeen) -> None:
        key = (refusal.unit_id, refusal.day)
        self.store.ektp_refusals[key] = self.store.ektp_refusals.get(key, 0) + 1

    async def save_dead_letter(self, letter: DeadLetterSeen) -> bool:
        new = letter.message_id not in self.store.dead
        self.store.dead.setdefault(letter.message_id, letter)
        return new

    async def dead_letters_since(self, since: datetime) -> int:
        return len(self.store.dead)

    async def save_run(self, run: RunSeen) -> dict[str, Any] | None:
        known = self.store.runs.get(run.run_id)
        if (
            known is not None
            and RunSeen(**{k: v for k, v in known.items() if k in RUN_FIELDS}).rank >= run.rank
        ):
            return None
        kept = dataclasses.asdict(run) | {
            "summary": run.summary if run.summary is not None else (known or {}).get("summary"),
            "started_at": min(run.at, known["started_at"]) if known else run.at, "updated_at": run.at,
        }  # fmt: skip
        self.store.runs[run.run_id] = kept
        return kept

    async def save_service_seen(self, service: str, at: datetime) -> None:
        self.store.seen[service] = max(at, self.store.seen.get(service, at))

    async def save_run_line(self, line: LineSeen) -> None:
        self.store.run_lines_kept.setdefault((line.run_id, line.upt_id), line)

    async def unit_row(self, upt_id: str, day: date) -> dict[str, Any] | None:
        rows = await self.store.unit_rows(CENTRE, day, upt_id)
        return rows[0] if rows else None

    async def office_row(self, kabkota: str, day: date) -> tuple[dict[str, Any], dict[str, int], int] | None:
        assert self.store.units is not None
        office = next((d for d in self.store.units.dukcapil if d.kabkota_code == kabkota), None)
        rows = await self.store.office_rows(CENTRE, day, office.unit_id) if office else []
        return rows[0] if rows else None

    async def kanwil_of(self, upt_id: str) -> str | None:
        assert self.store.units is not None
        unit = self.store.units.upt(upt_id)
        return unit.kanwil_id if unit else None


CENTRE = Scope(Role.PUSAT, "pusat")
RUN_FIELDS = {f.name for f in dataclasses.fields(RunSeen)}

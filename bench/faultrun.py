"""One scenario of the fault harness: the day played through an installation while faults are injected, then
what the installation holds, observed from outside (broker queues, the services' tables, the central feed).

The day: every sending UPT publishes its planted SDP snapshot, the Dukcapil offices their e-KTP packets (both as
well-written regional clients that connect again and resend what is unanswered), one UPT two messages that
can never be read (the planted bad input, for `dead.letters`); once every part is staged at the consolidator
the centre commands the day's run. A service manager's part is played by `faultkit.Supervisor`.
"""

from __future__ import annotations

import asyncio
import difflib
import json
import random
import re
import subprocess
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import aio_pika
import aiormq
import asyncpg

from bench import harness
from bench.faultkit import Broker, FaultError, Postgres, Supervisor
from deploy import credentials as creds
from deploy.sandbox import Processes, Sandbox
from services.consolidator.command import request_run
from services.consolidator.consolidation import PostgresConsolidationStore
from services.consolidator.domain.report import RunReport
from services.consolidator.feed import FeedMessage, read_feed
from services.consolidator.report.render import csv_files
from services.consolidator.stream_wire import stream_url
from shared import db
from shared.contracts import derive_message_id
from shared.runtime import Database
from shared.units import Units
from sim import centre, population
from sim.day import DayReport, run_day
from sim.ektp import PlannedPacket
from sim.ektp_day import EktpReport, run_ektp_day
from sim.publisher import RETRYABLE, UnitClient

PROCESSES = ("registry", "registry-2", "dedup", "consolidator", "monitor")
STAGED = (
    "SELECT count(*) FROM consolidator.sdp_parts WHERE as_of = $1 AND (checked OR (stored AND accepted = 0))"
)
PENDING = (
    "SELECT (SELECT count(*) FROM consolidator.persons WHERE version > fed_version)"
    " + (SELECT count(*) FROM consolidator.outbox WHERE published_at IS NULL)"
    " + (SELECT count(*) FROM registry.outbox WHERE published_at IS NULL)"
    " + (SELECT count(*) FROM dedup.outbox WHERE published_at IS NULL)"
)
CENTRAL = """
SELECT 'sdp/' || e.upt_id || '/' || e.inmate_id,
       concat_ws('|', p.nik, p.full_name, e.state, e.custody_status, e.register, e.register_number,
                 e.detention_expiry, e.first_seen, e.last_seen)
  FROM consolidator.episodes e JOIN consolidator.persons p USING (person_id)
UNION ALL
SELECT 'ektp/' || kabkota || '/' || packet_id, concat_ws('|', nik, status, finding) FROM consolidator.captures
"""
VERDICTS = "SELECT kabkota || '/' || packet_id, status || '|' || finding FROM dedup.verdicts"
# What a read of the installation's database may meet while a fault has it away.
DATABASE_AWAY: tuple[type[BaseException], ...] = (*db.TRANSIENT_ERRORS, asyncpg.PostgresError)
# What the broker may keep when the day is over: the planted dead letters and the central feed (a stream).
KEPT = ("dead.letters", "central.records")


@dataclass
class Rig:
    """What a scenario's faults act on, and what they record."""

    sandbox: Sandbox
    processes: Processes
    supervisor: Supervisor
    broker: Broker
    postgres: Postgres
    rng: random.Random
    span: float  # seconds a fault-free day takes here, from the first publish to the run's end
    started: float = field(default_factory=time.monotonic)
    run_requested: asyncio.Event = field(default_factory=asyncio.Event)
    faults: list[str] = field(default_factory=list)
    recoveries: list[float] = field(default_factory=list)

    async def at(self, fraction: float) -> None:
        """Until `fraction` of a fault-free day has gone by."""
        await asyncio.sleep(max(0.0, self.started + fraction * self.span - time.monotonic()))

    def note(self, fault: str) -> None:
        harness.say(f"    fault at {time.monotonic() - self.started:5.1f} s: {fault}")
        self.faults.append(fault)

    async def recovered(self) -> None:
        """Once a fault is lifted: how long until every service answers ready again."""
        self.recoveries.append(await self.supervisor.until_ready())


@dataclass
class Observed:
    """What one scenario's installation holds once the day is over."""

    seconds: float
    report: DayReport
    ektp: EktpReport
    # every receipt (by the message it answers, the status it tells and its own id), also those only read
    # afterwards from the queues
    answers: Counter[tuple[str, str, str]]
    central: dict[str, str]
    persons: int
    verdicts: dict[str, list[str]]
    feed_ids: Counter[str]
    feed_latest: dict[str, int]  # central id -> the newest version the feed told
    feed_versions: Counter[tuple[str, int]]  # (central id, version) -> how many different messages told it
    versions: dict[str, int]  # central id -> the version of the record in the consolidator
    report_files: dict[str, str]
    queues_left: dict[str, int]
    dead_letters: list[tuple[str, str]]  # (original message id, reason)
    crashes: list[str]
    planted_dead: set[str]


async def _fetch(dsn: str, sql: str, *args: Any) -> list[asyncpg.Record] | None:
    """A query on the installation's database, or None while it is away."""
    try:
        conn = await asyncpg.connect(dsn, timeout=5)
    except (OSError, asyncpg.PostgresError, TimeoutError):
        return None
    try:
        return list(await conn.fetch(sql, *args))
    except DATABASE_AWAY:
        return None
    finally:
        try:
            await conn.close(timeout=5)
        except DATABASE_AWAY:
            conn.terminate()  # a server gone in the middle: no goodbye


async def _plant_bad_input(sandbox: Sandbox, upt_id: str, day: date) -> set[str]:
    """Two messages no retry can fix, from one UPT: not JSON, and a snapshot number past PostgreSQL's integer.
    Each must end in `dead.letters` with its reason and be answered at once."""
    cred = creds.find(sandbox.credentials, "upt", upt_id)
    ids = {derive_message_id("faults", upt_id, day, n) for n in (1, 2)}
    first, second = sorted(ids)
    body = {"message_id": second, "schema_version": 1, "upt_id": upt_id, "as_of": day.isoformat(),
            "snapshot": 2**31, "part": 1, "parts": 1, "records": []}  # fmt: skip
    for attempt in range(10):
        try:
            async with UnitClient(sandbox.url_for("upt", upt_id), cred.username, upt_id) as client:
                await client.publish_body(b"not json {", message_id=first)
                await client.publish_body(json.dumps(body).encode(), message_id=second)
            return ids
        except RETRYABLE:
            await asyncio.sleep(2 * (attempt + 1))
    raise FaultError("the planted bad input could not be published")


async def run_day_of_consolidation(rig: Rig, day: date, parts: int) -> str:
    """Once every part is staged, the centre commands the run (again, under the same id, until the broker took
    it); the run id, once finished."""
    dsn = rig.sandbox.database_url

    async def staged() -> bool:
        rows = await _fetch(dsn, STAGED, day)
        return bool(rows) and rows is not None and rows[0][0] >= parts

    await harness.until(staged, f"{parts} parts staged at the consolidator", 1800)
    pusat = creds.find(rig.sandbox.credentials, "pusat", "pusat")
    message_id = derive_message_id("faults-run", day)
    for attempt in range(30):
        try:
            run_id = await request_run(
                rig.sandbox.url_for("pusat", "pusat"), pusat.username, day, requested_by="bench.faults",
                reason="fault harness", message_id=message_id,
            )  # fmt: skip
            break
        except (*RETRYABLE, aiormq.exceptions.AMQPError):
            await asyncio.sleep(min(2.0 * (attempt + 1), 10.0))
    else:
        raise FaultError("the run command could not be published")
    rig.run_requested.set()

    async def finished() -> bool:
        rows = await _fetch(dsn, "SELECT state, error FROM consolidator.runs WHERE run_id = $1", run_id)
        if rows and rows[0]["error"]:
            raise FaultError(f"run {run_id} failed: {rows[0]['error']}")
        return rows is not None and bool(rows) and rows[0]["state"] == "finished"

    await harness.until(finished, f"run {run_id}", 1800)
    return run_id


async def play(
    rig: Rig, inject: Callable[[Rig], Awaitable[None]], units: Units, by_upt: centre.Records, day: date,
    packets: list[PlannedPacket], part_size: int,
) -> tuple[float, DayReport, EktpReport, str, set[str]]:  # fmt: skip
    """The day with the scenario's faults; seconds from the first publish to the run's end."""
    rig.supervisor.start()
    rig.started = time.monotonic()
    faults = asyncio.ensure_future(inject(rig))
    watching = asyncio.create_task(watch(rig))
    sandbox = rig.sandbox
    planted = await _plant_bad_input(sandbox, units.upts[0].upt_id, day)
    sdp, ektp = await asyncio.gather(
        run_day(units=units, by_upt=by_upt, credentials=sandbox.credentials, amqp_url=sandbox.servers.amqp_url,
                vhost=sandbox.vhost, as_of=day, part_size=part_size, receipt_timeout=1800, progress=False),
        run_ektp_day(offices=units.dukcapil, packets=packets, credentials=sandbox.credentials,
                     amqp_url=sandbox.servers.amqp_url, vhost=sandbox.vhost, receipt_timeout=1800,
                     progress=False, wait_verdicts=True),
    )  # fmt: skip
    harness.say(
        f"    receipts after {time.monotonic() - rig.started:.1f} s ({sdp.reconnects + ektp.reconnects} "
        "reconnects of the senders)"
    )
    parts = sum(len(population.parts(by_upt[u.upt_id], part_size)) for u in units.upts)
    run_id = await run_day_of_consolidation(rig, day, parts)
    seconds = time.monotonic() - rig.started
    watching.cancel()
    await faults  # a fault still due (e.g. during the run) is injected and lifted before anything is observed
    return seconds, sdp, ektp, run_id, planted


async def _queues(sandbox: Sandbox) -> dict[str, int]:
    out = await asyncio.to_thread(
        Broker(sandbox.servers.rabbitmqctl).ctl,
        "list_queues", "-p", sandbox.vhost, "name", "messages", "--formatter", "json",
    )  # fmt: skip
    return {q["name"]: int(q.get("messages") or 0) for q in json.loads(out)}


async def watch(rig: Rig, every: float = 30.0) -> None:
    """Progress while the day runs: the queues holding messages, and how many of those are unacknowledged."""
    while True:
        await asyncio.sleep(every)
        try:
            out = await asyncio.to_thread(
                rig.broker.ctl, "list_queues", "-p", rig.sandbox.vhost, "name", "messages",
                "messages_unacknowledged", "consumers", "--formatter", "json", timeout=30,
            )  # fmt: skip
        except (FaultError, OSError, subprocess.SubprocessError) as failed:
            harness.say(f"    {time.monotonic() - rig.started:5.0f} s: the broker does not answer ({failed})")
            continue
        busy = [q for q in json.loads(out) if q.get("messages") and q["name"] not in KEPT]
        harness.say(f"    {time.monotonic() - rig.started:5.0f} s: " + (", ".join(
            f"{q['name']} {q['messages']} ({q['messages_unacknowledged']} unacked, {q['consumers']} consumers)"
            for q in busy[:8]) or "every queue empty"))  # fmt: skip


async def settle(rig: Rig, timeout: float) -> dict[str, int]:
    """Until every service is ready, every queue but the kept ones empty and every outbox relayed (twice in a
    row); the queues still holding messages when it gives up."""
    dsn, calm, left = rig.sandbox.database_url, 0, {}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        left = {q: n for q, n in (await _queues(rig.sandbox)).items() if n and q not in KEPT}
        pending = await _fetch(dsn, PENDING)
        busy = bool([q for q in left if not q.startswith("receipts.")]) or not pending or pending[0][0] > 0
        calm = 0 if busy or not await asyncio.to_thread(rig.supervisor.all_ready) else calm + 1
        if calm >= 2:
            break
        await asyncio.sleep(1.0)
    return left


async def _take_all(url: str, queue: str) -> list[aio_pika.abc.AbstractIncomingMessage]:
    connection = await aio_pika.connect(url)
    got = []
    try:
        channel = await connection.channel()
        q = await channel.get_queue(queue, ensure=False)
        while (message := await q.get(no_ack=True, fail=False)) is not None:
            got.append(message)
    finally:
        await connection.close()
    return got


async def load_report(dsn: str, run_id: str) -> RunReport | None:
    """The run's report, as the consolidator reads it (None when there is no such run)."""
    database = Database.of_service(dsn, "consolidator")
    await database.open()
    try:
        return await PostgresConsolidationStore(database).load_report(run_id)
    finally:
        with suppress(*DATABASE_AWAY):
            await database.close()


async def report_files(dsn: str, run_id: str) -> dict[str, str]:
    """The run's report as its CSV files (none when there is no such run)."""
    report = await load_report(dsn, run_id)
    return csv_files(report) if report is not None else {}


async def observe(
    rig: Rig, seconds: float, sdp: DayReport, ektp: EktpReport, run_id: str, planted: set[str],
    settle_timeout: float,
) -> Observed:  # fmt: skip
    sandbox = rig.sandbox
    left = await settle(rig, settle_timeout)
    answers = Counter(sdp.answers) + Counter(ektp.answers)
    for queue in [q for q in left if q.startswith("receipts.")]:  # answers nobody waited for any more
        for message in await _take_all(sandbox.admin_url, queue):
            receipt = json.loads(message.body)
            answers[
                str(receipt.get("in_reply_to")),
                str(receipt.get("status", "")),
                str(receipt.get("message_id")),
            ] += 1
        left.pop(queue)
    letters = [
        (
            str((m.headers or {}).get("x-original-message-id") or m.message_id),
            str((m.headers or {}).get("x-dead-reason", "?")),
        )
        for m in await _take_all(sandbox.admin_url, "dead.letters")
    ]
    dsn = sandbox.database_url
    central = {r[0]: r[1] for r in await _fetch(dsn, CENTRAL) or []}
    persons = await _fetch(dsn, "SELECT count(*) FROM consolidator.persons WHERE merged_into IS NULL")
    verdicts: dict[str, list[str]] = {}
    for key, value in await _fetch(dsn, VERDICTS) or []:
        verdicts.setdefault(key, []).append(value)
    feed_ids = Counter[str]()

    feed_latest: dict[str, int] = {}

    feed_versions = Counter[tuple[str, int]]()

    def seen(message: FeedMessage) -> None:
        feed_ids[str(message.message_id)] += 1
        change = json.loads(message.body)
        central_id, version = str(change["central_id"]), int(change["version"])
        feed_latest[central_id] = max(version, feed_latest.get(central_id, 0))
        if feed_ids[str(message.message_id)] == 1:
            feed_versions[central_id, version] += 1

    amqp = sandbox.url_for("pusat", "pusat")
    await read_feed(
        stream_url(amqp, sandbox.servers.stream_port), start="first", follow=False, limit=None, idle=3.0,
        on_message=seen, notice=harness.say, fallback_url=amqp,
    )  # fmt: skip
    versions = {
        f"C{r[0]}": int(r[1])
        for r in await _fetch(dsn, "SELECT person_id, version FROM consolidator.persons") or []
    }
    files = await report_files(dsn, run_id)
    return Observed(
        seconds, sdp, ektp, answers, central, int(persons[0][0]) if persons else 0, verdicts, feed_ids,
        feed_latest, feed_versions, versions,
        comparable(files), left, letters,
        list(rig.supervisor.crashes), planted,
    )  # fmt: skip


CENTRAL_ID = re.compile(r"\bC\d+\b")


def comparable(files: dict[str, str]) -> dict[str, str]:
    """The run's report files as two installations can agree on them: a person's central id is a number drawn
    in the order persons happened to be created (e-KTP captures and runs interleave differently), so it is
    left out; who the person is, the episodes and captures, are compared separately."""
    return {name: CENTRAL_ID.sub("C…", text) for name, text in files.items()}


@dataclass
class Tally:
    expected: int = 0
    found: int = 0
    lost: int = 0
    doubled: int = 0

    def __add__(self, other: Tally) -> Tally:
        return Tally(*(a + b for a, b in zip(self.row(), other.row(), strict=True)))

    def row(self) -> tuple[int, int, int, int]:
        return self.expected, self.found, self.lost, self.doubled


def distinct_answers(o: Observed) -> Counter[tuple[str, str]]:
    """Different answers (by their own id) per message and status told."""
    return Counter((mid, status) for mid, status, _ in o.answers)


def repeated_answers(o: Observed) -> int:
    """Answers delivered again under the same id (the outbox relay's at-least-once after a failure): a client
    keeps the first of each id (docs/clients.md)."""
    return sum(n - 1 for n in o.answers.values())


def receipts(o: Observed) -> Tally:
    """Every message published got its answer, and no message got more different answers (per status told)
    than it was published; a notice not answering a publication (dedup's verdict, told to the office) once."""
    publishes = o.report.publishes + o.ektp.publishes + Counter(dict.fromkeys(o.planted_dead, 1))
    distinct = distinct_answers(o)
    answered = {mid for mid, _ in distinct}
    doubled = sum(max(0, n - (publishes[mid] or 1)) for (mid, _), n in distinct.items())
    return Tally(len(publishes), len(answered & publishes.keys()), len(publishes.keys() - answered), doubled)


def feed(o: Observed) -> Tally:
    """Every central record's newest version told on the feed, and no version of a record told by two
    different messages. (The same message again, under its id, is counted apart: the relay publishes a row again
    when it died between the broker's confirm and its record of it; readers keep the first of each id.)"""
    lost = sum(1 for cid, version in o.versions.items() if o.feed_latest.get(cid) != version)
    doubled = sum(n - 1 for n in o.feed_versions.values())
    return Tally(len(o.versions), len(o.versions) - lost, lost, doubled)


def repeated_feed(o: Observed) -> int:
    return sum(n - 1 for n in o.feed_ids.values())


def against(expected: dict[str, str], found: dict[str, str], extra_persons: int = 0) -> Tally:
    lost = sum(1 for k, v in expected.items() if found.get(k) != v)
    return Tally(len(expected), len(found), lost, len(found.keys() - expected.keys()) + max(0, extra_persons))


def tallies(o: Observed, baseline: Observed) -> dict[str, Tally]:
    verdicts = {k: v[0] for k, v in o.verdicts.items()}
    return {
        "receipts": receipts(o),
        "central": against(baseline.central, o.central, o.persons - baseline.persons),
        "verdicts": against({k: v[0] for k, v in baseline.verdicts.items()}, verdicts)
        + Tally(doubled=sum(len(v) - 1 for v in o.verdicts.values())),
        "feed": feed(o),
    }


def examples(o: Observed, baseline: Observed, n: int = 5) -> list[str]:
    """A few of the differences behind each tally, to start looking from."""
    publishes = o.report.publishes + o.ektp.publishes + Counter(dict.fromkeys(o.planted_dead, 1))
    distinct = distinct_answers(o)
    answered = {mid for mid, _ in distinct}
    out = [f"unanswered {mid}" for mid in sorted(publishes.keys() - answered)[:n]]
    out += [f"answered {c}x (sent {publishes[mid]}x) {mid} {status}" for (mid, status), c in distinct.items()
            if c > (publishes[mid] or 1)][:n]  # fmt: skip
    out += [f"feed told {o.feed_latest.get(cid)} of {cid}, version {v}" for cid, v in o.versions.items()
            if o.feed_latest.get(cid) != v][:n]  # fmt: skip
    out += [f"central {k}: {v!r} -> {o.central.get(k)!r}" for k, v in baseline.central.items()
            if o.central.get(k) != v][:n]  # fmt: skip
    out += [
        f"central extra {k}: {o.central[k]!r}" for k in sorted(o.central.keys() - baseline.central.keys())[:n]
    ]
    out += [f"verdict {k}: {v} -> {o.verdicts.get(k)}" for k, v in baseline.verdicts.items()
            if o.verdicts.get(k) != v][:n]  # fmt: skip
    out += [
        f"feed told {cid} version {v} in {c} messages" for (cid, v), c in o.feed_versions.items() if c > 1
    ][:n]
    for name in sorted(set(o.report_files) | set(baseline.report_files)):
        before, after = baseline.report_files.get(name, ""), o.report_files.get(name, "")
        if before != after:
            diff = difflib.unified_diff(before.splitlines(), after.splitlines(), lineterm="", n=0)
            out += [f"report {name}: {line}" for line in list(diff)[2 : 2 + n]]
    return out

"""A national SDP day and the next through the suite and the centre's consolidation runs, against planted truth.

python -m bench.sdp_day [--total 275600] [--upts 0] [--day YYYY-MM-DD] [--workers 2] [--no-record]

Registry, dedup and consolidator run on an isolated installation. Day D (default yesterday, WIB: the registry
refuses snapshot dates after today, and D+1 must be sendable too): every UPT but one silent one publishes its
snapshot with planted transfers, releases, admissions and overstayers (receipts checked against the truth);
once every part is staged at the consolidator the centre commands the run of D, and its report is compared
with the report the truth predicts (sim/centre.py). Day D+1 (about 1 % changed, one UPT's snapshot halved)
follows the same way. Then the central feed is replayed from its first message (stream protocol), and 50
clients look persons up by NIK through the centre's API. A plain COPY and upsert of D's accepted rows is
measured for comparison.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import random
import time
from collections import Counter
from datetime import date, datetime, timedelta
from typing import Any

import asyncpg

from bench import harness
from bench import planted as planted_day
from bench.http_client import KeepAlive
from deploy import credentials as creds
from deploy.sandbox import Processes, Sandbox
from services.consolidator.command import request_run
from services.consolidator.consolidation import PostgresConsolidationStore
from services.consolidator.domain.runs import STEPS
from services.consolidator.feed import read_feed
from services.consolidator.stream_wire import stream_url
from shared.contracts import WIB, InmateRecord
from shared.runtime import Database
from shared.units import Units
from sim import centre, population
from sim.day import DayReport, run_day

UPSERT = """
INSERT INTO bench_records AS r (upt_id, as_of, inmate_id, snapshot, part, nik, record, submission_id)
SELECT upt_id, as_of, inmate_id, snapshot, part, nik, record, submission_id FROM bench_load
ON CONFLICT (upt_id, as_of, snapshot, inmate_id) DO UPDATE SET nik = EXCLUDED.nik, record = EXCLUDED.record
"""
STAGED = (
    "SELECT count(*) FROM consolidator.sdp_parts WHERE as_of = $1 AND (checked OR (stored AND accepted = 0))"
)
# The feed is written after a run, in batches (persons whose version is not fed yet), then relayed.
PENDING = (
    "SELECT (SELECT count(*) FROM consolidator.persons WHERE version > fed_version)"
    " + (SELECT count(*) FROM consolidator.outbox WHERE published_at IS NULL)"
)


async def copy_and_upsert(dsn: str, rows: list[tuple[Any, ...]]) -> float:
    """Seconds to COPY the rows into a staging table and upsert them into a table shaped like the registry's."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(
            "DROP TABLE IF EXISTS bench_records; CREATE TABLE bench_records "
            "(LIKE registry.sdp_records INCLUDING DEFAULTS INCLUDING INDEXES)"
        )
        started = time.perf_counter()
        async with conn.transaction():
            await conn.execute(
                "CREATE TEMP TABLE bench_load (LIKE registry.sdp_records INCLUDING DEFAULTS) ON COMMIT DROP"
            )
            columns = ("upt_id", "as_of", "inmate_id", "snapshot", "part", "nik", "record", "submission_id")
            await conn.copy_records_to_table("bench_load", records=rows, columns=columns)
            await conn.execute(UPSERT)
        elapsed = time.perf_counter() - started
        await conn.execute("DROP TABLE bench_records")
        return elapsed
    finally:
        await conn.close()


def baseline_rows(
    by_upt: dict[str, list[population.PlannedRecord]], as_of: date, part_size: int
) -> list[tuple[Any, ...]]:
    """The accepted records as the registry stores them (validated, serialised), ready for COPY."""
    rows = []
    for upt_id, records in by_upt.items():
        for n, chunk in enumerate(population.parts(records, part_size), start=1):
            for p in chunk:
                if p.accepted:
                    r = InmateRecord.model_validate(p.raw)
                    rows.append(
                        (upt_id, as_of, r.inmate_id, 1, n, r.nik, r.model_dump_json(), f"{upt_id}-{n}")
                    )
    return rows


class Bench:
    def __init__(
        self, sandbox: Sandbox, processes: Processes, units: Units, args: argparse.Namespace
    ) -> None:
        self.sandbox, self.processes, self.units, self.args = sandbox, processes, units, args
        self.database = Database.of_service(sandbox.database_url, "consolidator")
        self.reports = PostgresConsolidationStore(self.database)

    async def scalar(self, sql: str, *params: Any) -> Any:
        return await self.database.pool.fetchval(sql, *params)

    async def publish(self, by_upt: centre.Records, day: date, wave: int) -> tuple[DayReport, float]:
        """Every UPT publishes its day as itself, `wave` UPTs connected at a time (0: all at once); the
        receipts against the truth, and when the first part was published (epoch seconds)."""
        upts, merged, first = list(self.units.upts), DayReport(upts=len(self.units.upts)), 0.0
        for start in range(0, len(upts), wave or len(upts)):
            report = await run_day(
                units=self.units.subset({u.upt_id for u in upts[start : start + (wave or len(upts))]}),
                by_upt=by_upt, credentials=self.sandbox.credentials, amqp_url=self.sandbox.servers.amqp_url,
                vhost=self.sandbox.vhost, as_of=day, part_size=self.args.part_size, receipt_timeout=1800,
                progress=False,
            )  # fmt: skip
            first = first or time.time() - report.receipt_seconds
            merged.parts, merged.records = merged.parts + report.parts, merged.records + report.records
            merged.accepted += report.accepted
            merged.mismatches += report.mismatches
        merged.receipt_seconds = time.time() - first
        return merged, first

    async def day(
        self, label: str, by_upt: centre.Records, day: date, truth: centre.DayTruth | centre.NextDayTruth,
        wave: int = 0,
    ) -> dict[str, Any]:  # fmt: skip
        """Publish the day, wait until the consolidator staged every part, run it; figures and mismatches."""
        records = sum(len(v) for v in by_upt.values())
        harness.say(f"{label}: {day}, {records:,} records from {len(self.units.upts)} UPTs")
        report, first_publish = await self.publish(by_upt, day, wave)
        harness.say(
            f"  receipts in {report.receipt_seconds:.1f} s ({len(report.mismatches)} against the truth)"
        )
        planned = sum(len(population.parts(by_upt[u.upt_id], self.args.part_size)) for u in self.units.upts)
        if report.parts != planned:  # a UPT that could not publish at all: the day is not the one measured
            raise RuntimeError(f"{planned - report.parts} parts not published: {report.mismatches[:3]}")

        async def staged() -> bool:
            return bool(await self.scalar(STAGED, day) >= report.parts)

        await harness.until(staged, f"{report.parts} parts staged at the consolidator", 3600)
        harness.say(f"  staged {time.time() - first_publish:.1f} s after the first publish; running {day}")
        pusat = creds.find(self.sandbox.credentials, "pusat", "pusat")
        run_id = await request_run(
            self.sandbox.url_for("pusat", "pusat"), pusat.username, day, requested_by="bench", reason="bench"
        )

        steps: dict[int, float] = {}

        async def finished() -> asyncpg.Record | None:
            row = await self.database.pool.fetchrow("SELECT * FROM runs WHERE run_id = $1", run_id)
            if row is not None and row["error"]:
                raise RuntimeError(f"run {run_id} failed: {row['error']}")
            if row is not None:
                steps.setdefault(row["step"], time.monotonic())
            return row if row is not None and row["state"] == "finished" else None

        run = await harness.until(finished, f"run {run_id}", 3600)
        # When each step committed, as polled (half a second apart): where the run spends its time.
        marks = sorted(steps.items())
        harness.say("  steps: " + ", ".join(
            f"{'+'.join(STEPS[a:b])} {t2 - t1:.1f} s" for (a, t1), (b, t2) in itertools.pairwise(marks)
        ))  # fmt: skip
        loaded = await self.reports.load_report(run_id)
        assert loaded is not None
        mismatches = centre.compare(loaded, truth)
        seconds = run["finished_at"].timestamp() - first_publish
        run_seconds = (run["finished_at"] - run["started_at"]).total_seconds()
        harness.say(
            f"  run {run_seconds:.1f} s; {seconds:.1f} s from the first publish; {len(mismatches)} mismatches"
        )
        for line in mismatches[:30]:
            harness.say(f"    mismatch: {line}")
        kinds = Counter(planted_day.category(line) for line in mismatches)
        return {"mismatch_kinds": "; ".join(f"{k}: {n}" for k, n in kinds.most_common()) or "none",
                "records": report.records, "accepted": report.accepted, "parts": report.parts,
                "receipt_mismatches": len(report.mismatches), "seconds": round(seconds, 2),
                "run_seconds": round(run_seconds, 2), "mismatches": len(mismatches)}  # fmt: skip

    async def drained(self) -> float:
        began = time.monotonic()
        await harness.until(lambda: self._empty(), "the run's changes on the central feed", 3600)
        return time.monotonic() - began

    async def _empty(self) -> bool:
        return bool(await self.scalar(PENDING) == 0)

    async def replay(self) -> dict[str, Any]:
        """The whole central feed from its first message, as the centre reads it."""
        outbox = await self.scalar("SELECT count(*) FROM outbox WHERE routing_key = 'central.record.changed'")
        harness.say(f"replaying the central feed ({outbox:,} central.record.changed messages sent)")
        cpu = time.process_time()
        amqp = self.sandbox.url_for("pusat", "pusat")
        summary = await read_feed(
            stream_url(amqp, harness.servers().stream_port), start="first", follow=False, limit=None, idle=5.0,
            on_message=lambda m: None, notice=harness.say, fallback_url=amqp,
        )  # fmt: skip
        if summary.notices:
            raise RuntimeError(f"the replay did not go as measured: {summary.notices}")
        # The reader's own CPU per second of replay: near 1.0, the client (one Python process) is the limit.
        busy = (time.process_time() - cpu) / max(summary.seconds, 1e-9)  # the idle wait costs no CPU
        return {"feed_messages": summary.messages, "feed_outbox_rows": outbox,
                "replay_records_per_s": round(summary.rate), "replay_client_cpu_share": round(busy, 2)}  # fmt: skip

    async def lookups(self, niks: list[str]) -> dict[str, Any]:
        """Clients, each on its own keep-alive connection, looking random inmates up by NIK: one alone for a
        few seconds (the unloaded latency), then all of them at once. The client is a minimal HTTP/1.1 one
        (bench/http_client.py): on this machine the clients share the CPU with the API and the database, and a
        full client library cost more CPU per request than the API answering it."""
        login = creds.find(self.sandbox.credentials, "monitor", "pusat")
        rng = random.Random(self.args.seed)
        errors = 0

        async def ask(http: KeepAlive, latencies: list[float]) -> None:
            nonlocal errors
            began = time.perf_counter()
            status, _ = await http.get(f"/persons/by-nik/{rng.choice(niks)}?purpose=bench")
            latencies.append((time.perf_counter() - began) * 1000)
            errors += status != 200

        async def loop(http: KeepAlive, deadline: float, latencies: list[float]) -> None:
            while time.monotonic() < deadline:
                await ask(http, latencies)

        clients = [
            await KeepAlive.open(self.processes.api_url, login.username, login.password)
            for _ in range(self.args.clients)
        ]
        try:
            await asyncio.gather(*(ask(http, []) for http in clients))  # connected and logged in
            alone: list[float] = []
            await loop(clients[0], time.monotonic() + 3, alone)
            harness.say(f"{len(clients)} clients looking persons up by NIK for {self.args.lookup_seconds} s")
            ms: list[float] = []
            began, cpu = time.monotonic(), time.process_time()
            await asyncio.gather(*(loop(http, began + self.args.lookup_seconds, ms) for http in clients))
            elapsed = time.monotonic() - began
        finally:
            for http in clients:
                await http.close()
        busy = (time.process_time() - cpu) / elapsed
        alone.sort()
        ms.sort()
        return {"lookups": len(ms), "lookup_errors": errors, "lookups_per_s": round(len(ms) / elapsed),
                "lookup_p50_ms": round(ms[len(ms) // 2], 1),
                "lookup_p99_ms": round(ms[min(len(ms) - 1, int(len(ms) * 0.99))], 1),
                "lookup_one_client_p50_ms": round(alone[len(alone) // 2], 1),
                "lookup_client_cpu_share": round(busy, 2)}  # fmt: skip


async def measure(
    sandbox: Sandbox, processes: Processes, units: Units, args: argparse.Namespace, by_upt: centre.Records,
    options: centre.CentreOptions, truth: centre.DayTruth,
) -> dict[str, Any]:  # fmt: skip
    bench = Bench(sandbox, processes, units, args)
    await bench.database.open()
    try:
        first = await bench.day("day D", by_upt, truth.day, truth)
        drain = await bench.drained()
        harness.say(f"D's changes were on the central feed {drain:.1f} s after the run; generating D+1")
        following, next_truth = centre.next_day(by_upt, truth, options)
        second = await bench.day("day D+1", following, next_truth.day, next_truth, args.next_day_wave)
        await bench.drained()
        feed = await bench.replay()
        held = [e.record["nik"] for e in next_truth.central.episodes.values() if e.state == "active"]
        lookups = await bench.lookups([str(nik) for nik in held if nik])
        harness.say("D's accepted rows once more with a plain COPY and upsert, for comparison")
        baseline = await copy_and_upsert(
            sandbox.database_url, baseline_rows(by_upt, truth.day, args.part_size)
        )
        version = await harness.database_version(sandbox.database_url)
    finally:
        await bench.database.close()
    return {
        "registry_processes": args.workers, "upts": len(options.units.upts), "upts_sent": len(units.upts),
        "parts": first["parts"], "records": first["records"], "accepted": first["accepted"],
        "receipt_mismatches": first["receipt_mismatches"] + second["receipt_mismatches"],
        "planted_transfers": len(truth.transfers), "planted_releases": len(truth.releases),
        "planted_admissions": len(truth.admissions), "planted_overstayers": len(truth.overstayers),
        "seconds": first["seconds"], "run_seconds": first["run_seconds"],
        "records_per_s": round(first["records"] / first["seconds"]),
        "copy_upsert_seconds": round(baseline, 2), "ratio_to_copy_upsert": round(first["seconds"] / baseline, 1),
        "feed_after_run_seconds": round(drain, 1),
        "next_day_wave": args.next_day_wave, "next_day_records": second["records"],
        "next_day_changed": next_truth.changed,
        "next_day_seconds": second["seconds"], "next_day_run_seconds": second["run_seconds"],
        "mismatches_day": first["mismatches"], "mismatches_next_day": second["mismatches"],
        "mismatches": first["mismatches"] + second["mismatches"],
        "mismatch_kinds_day": first["mismatch_kinds"], "mismatch_kinds_next_day": second["mismatch_kinds"],
        **feed, **lookups, "_postgresql": version,
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    planted_day.add_arguments(parser)
    parser.add_argument(
        "--day", type=date.fromisoformat, help="D (default: yesterday, WIB); D+1 at most today"
    )
    parser.add_argument("--workers", type=int, default=2, help="registry processes consuming the same queue")
    parser.add_argument(
        "--next-day-wave", type=int, default=105,
        help="D+1's UPTs connect this many at a time (0: all at once, as on D); see the record's notes",
    )  # fmt: skip
    parser.add_argument("--clients", type=int, default=50, help="concurrent lookup clients")
    parser.add_argument("--lookup-seconds", type=float, default=10.0)
    parser.add_argument("--no-record", action="store_true", help="do not append to BENCHMARKS.md")
    args = parser.parse_args()
    today = datetime.now(WIB).date()
    day = args.day or today - timedelta(days=1)
    if day + timedelta(days=1) > today:
        parser.error(f"--day {day}: D+1 would be after today ({today}, WIB), which the registry refuses")

    planted = planted_day.plant(args, day)
    units, by_upt, options, truth = planted.units, planted.by_upt, planted.options, planted.truth
    sending = units.subset({u.upt_id for u in units.upts} - {truth.silent_upt})
    with harness.installation(units, ("registry", "dedup", "consolidator")) as (sandbox, processes):
        for instance in range(2, args.workers + 1):  # the harness starts one process per service
            processes.start("registry", instance=instance, LOG_LEVEL="WARNING")
        figures = harness.run(measure(sandbox, processes, sending, args, by_upt, options, truth))
    info = harness.machine(figures.pop("_postgresql"))
    if not args.no_record:
        harness.record("national SDP day and the next through the consolidation run, against planted truth", figures, [
            f"Registry ({args.workers} processes on one queue), dedup and consolidator (one process each) on an "
            "isolated vhost and database; the UPTs publish from the same machine. The registry refuses snapshot "
            f"dates after today, so D is {day} (yesterday, WIB, by default: its parts count as late) and D+1 "
            f"{day + timedelta(days=1)}. `seconds`: D's first publish to the end of D's run (registry, dedup's "
            "checks, staging, the run); `run_seconds`: the run alone. `mismatches`: differences between the "
            "runs' reports and the reports sim/centre.py predicts from the planted data (UPT figures and listed "
            "items). `copy_upsert_seconds`: one COPY of D's accepted rows into a staging table and one upsert, in "
            "one transaction. `feed_after_run_seconds`: from the end of D's run until every person it changed is "
            "on the central feed (written in batches after the run, then relayed from the outbox). D's UPTs all "
            f"connect at once; D+1's {args.next_day_wave or 'all'} at a time (`--next-day-wave`): with RabbitMQ's "
            "default open-files limit, the handles D's queues keep no longer leave a socket for every UPT. The "
            "consolidator publishes the feed over the stream protocol (a relay batch per frame, large chunks); "
            "`replay_records_per_s`: the whole stream read from its first message over the stream protocol, as "
            "`python -m services.consolidator.feed` reads it. The feed replay and the lookups run in the bench's "
            "own process (one asyncio loop).",
        ], info)  # fmt: skip
    harness.finish(figures)


if __name__ == "__main__":
    main()

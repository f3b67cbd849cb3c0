"""The consolidation run alone: a national day staged straight into the consolidator's tables, run, and the next.

python -m bench.consolidation_run [--total 275600] [--upts 0] [--part-size 500] [--seed 2025] [--no-record]

No broker and no other service: the planted day of bench.sdp_day (sim/centre.py) is staged through the
consolidator's own use cases (each part as the registry's status and dedup's checked records would stage it),
into a scratch database. Then the run of D, the next day D+1 (about 1 % changed, one UPT's snapshot halved)
and its run, each step timed. The reports are compared with the truth; dedup's flags are not staged
here (its population checks are, as against an empty population record), so bench.sdp_day remains the
measure of correctness. What this measures is the run: `run_seconds` and `next_day_run_seconds`, per step.
"""

from __future__ import annotations

import argparse
import itertools
import time
import uuid
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from typing import Any

from bench import harness
from bench import planted as planted_day
from services.consolidator.consolidation import Announce, PostgresConsolidationStore, RunRow
from services.consolidator.domain.runs import STEPS, RunPolicy
from services.consolidator.rules import load_rules
from services.consolidator.store import postgres_unit_of_work
from services.consolidator.usecases import Consolidator
from shared import db
from shared.contracts import (
    WIB,
    ConsolidationRunRequested,
    InmateRecord,
    Lateness,
    PopulationCheck,
    ReceiptStatus,
    SdpRecordsChecked,
    SnapshotState,
    SubmissionProcessed,
)
from shared.runtime import Database
from sim import centre, population

_ids = itertools.count(1)


def absent(record: InmateRecord) -> PopulationCheck:
    """Dedup's check of a record against an empty population record (as in bench.sdp_day)."""
    return PopulationCheck(inmate_id=record.inmate_id, codes=["NIK_NOT_IN_POPULATION"] if record.nik else [])


class TimedStore(PostgresConsolidationStore):
    """The run's store, with the seconds each step took (in its transaction, commit included)."""

    def __init__(self, database: Database) -> None:
        super().__init__(database)
        self.steps: dict[str, float] = {}

    async def execute_step(self, run: RunRow, index: int, policy: RunPolicy, announce: Announce) -> None:
        began = time.perf_counter()
        try:
            await super().execute_step(run, index, policy, announce)
        finally:
            self.steps[STEPS[index]] = time.perf_counter() - began

    async def line_breakdowns(self, run_id: str) -> dict[str, dict[str, dict[str, int]]]:
        """(read before the last step, for its per-UPT events: timed as `breakdowns`)"""
        began = time.perf_counter()
        try:
            return await super().line_breakdowns(run_id)
        finally:
            self.steps["breakdowns"] = time.perf_counter() - began


class Run:
    def __init__(self, consolidator: Consolidator, store: TimedStore, now: list[datetime]) -> None:
        self.consolidator, self.store, self.now = consolidator, store, now

    async def stage(self, by_upt: centre.Records, day: date, part_size: int) -> int:
        """Every UPT's day as complete snapshot 1, part by part; the records staged."""
        staged = 0
        for upt, records in sorted(by_upt.items()):
            chunks = population.parts(records, part_size)
            for n, chunk in enumerate(chunks, start=1):
                kept = [InmateRecord.model_validate(p.raw) for p in chunk if p.accepted]
                seq = next(_ids)
                await self.consolidator.record_part_status(SubmissionProcessed(
                    message_id=f"status-{seq}", produced_at=self.now[0], submission_id=f"{upt}-{day}-{n}",
                    upt_id=upt, as_of=day, snapshot=1, part=n, parts=len(chunks), status=ReceiptStatus.ACCEPTED,
                    received=len(chunk), accepted=len(kept), rejected=len(chunk) - len(kept), warnings=0,
                    lateness=Lateness.ON_TIME,
                    snapshot_state=SnapshotState(parts=len(chunks), parts_received=n, complete=n == len(chunks)),
                ))  # fmt: skip
                if kept:
                    await self.consolidator.stage_checked_part(SdpRecordsChecked(
                        message_id=f"checked-{seq}", produced_at=self.now[0], submission_id=f"{upt}-{day}-{n}",
                        upt_id=upt, as_of=day, snapshot=1, part=n, parts=len(chunks), records=kept, flag_seq=seq,
                        population_checks=[absent(r) for r in kept],
                    ))  # fmt: skip
                staged += len(kept)
        return staged

    async def run(self, day: date) -> tuple[str, float, dict[str, float]]:
        """The run of the day, requested as the centre; its id, seconds and seconds per step."""
        self.now[0] = datetime.combine(day, datetime.min.time(), tzinfo=UTC) + timedelta(hours=9)
        command = ConsolidationRunRequested(
            message_id=f"run-{day}", produced_at=self.now[0], day=day, requested_by="bench", reason="bench"
        )
        run_id = await self.consolidator.request_run(command, publisher="pusat", centre="pusat")
        assert run_id is not None
        self.store.steps.clear()
        assert await self.consolidator.execute(run_id)
        row = await self.store.database.pool.fetchrow(
            "SELECT started_at, finished_at FROM runs WHERE run_id = $1", run_id
        )  # as bench.sdp_day counts it: the run's own record, from its request to its last step
        assert row is not None
        return run_id, (row["finished_at"] - row["started_at"]).total_seconds(), dict(self.store.steps)

    async def day(
        self, label: str, by_upt: centre.Records, truth: centre.DayTruth | centre.NextDayTruth, part_size: int
    ) -> dict[str, Any]:
        began = time.perf_counter()
        staged = await self.stage(by_upt, truth.day, part_size)
        stage_seconds = time.perf_counter() - began
        harness.say(f"{label}: {staged:,} records of {truth.day} staged in {stage_seconds:.1f} s; running")
        run_id, seconds, steps = await self.run(truth.day)
        harness.say(f"  run {seconds:.2f} s: " + ", ".join(f"{k} {v:.2f} s" for k, v in steps.items()))
        report = await self.store.load_report(run_id)
        assert report is not None
        mismatches = centre.compare(report, truth)
        kinds = Counter(planted_day.category(line) for line in mismatches)
        harness.say(
            f"  {len(mismatches)} differences from the truth (dedup's flags not staged)"
            + "".join(f"; {kind}: {n}" for kind, n in kinds.most_common(5))
        )
        return {"staged": staged, "stage_seconds": round(stage_seconds, 1), "run_seconds": round(seconds, 2),
                "steps": {k: round(v, 2) for k, v in steps.items()}, "mismatches": len(mismatches)}  # fmt: skip


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    planted = planted_day.plant(args, datetime.now(WIB).date() - timedelta(days=1))
    units, by_upt, options, truth = planted.units, planted.by_upt, planted.options, planted.truth
    sending = {u: r for u, r in by_upt.items() if u != truth.silent_upt}
    url = db.with_database(args.database_url, f"simpul_bench_run_{uuid.uuid4().hex[:8]}")
    await db.ensure_database(url)
    try:
        database = Database.of_service(url, "consolidator")
        await database.open()
        try:
            store = TimedStore(database)
            await store.load_reference(units, load_rules())
            now = [datetime.now(UTC)]
            policy = RunPolicy(max_loss=0.2, transfer_window_days=7, keep_days=3650, schedule=None)
            bench = Run(
                Consolidator(postgres_unit_of_work(database), store, policy, lambda: now[0]), store, now
            )
            first = await bench.day("day D", sending, truth, args.part_size)
            following, next_truth = centre.next_day(by_upt, truth, options)
            following = {u: r for u, r in following.items() if u != truth.silent_upt}
            second = await bench.day("day D+1", following, next_truth, args.part_size)
            version = await harness.database_version(url)
        finally:
            await database.close()
    finally:
        await db.drop_database(url)
    return {
        "upts": len(units.upts), "records": first["staged"], "run_seconds": first["run_seconds"],
        "next_day_records": second["staged"], "next_day_changed": next_truth.changed,
        "next_day_run_seconds": second["run_seconds"],
        **{f"step_{k}_seconds": v for k, v in first["steps"].items()},
        **{f"next_day_step_{k}_seconds": v for k, v in second["steps"].items()},
        "stage_seconds": first["stage_seconds"], "differences_day": first["mismatches"],
        "differences_next_day": second["mismatches"], "_postgresql": version,
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    planted_day.add_arguments(parser)
    parser.add_argument("--database-url", default=harness.servers().database_url)
    parser.add_argument("--no-record", action="store_true", help="do not append to BENCHMARKS.md")
    args = parser.parse_args()
    figures = harness.run(measure(args))
    info = harness.machine(figures.pop("_postgresql"))
    if not args.no_record:
        harness.record("the consolidation run alone, a national day and the next", figures, [
            "The planted day of bench.sdp_day staged straight into the consolidator's tables of a scratch "
            "database through its use cases (no broker, no registry or dedup: their flags and population "
            "checks are absent, so `differences_*` are not a measure of correctness), then the runs of D and "
            "D+1, each step timed in the run's process.",
        ], info)  # fmt: skip
    harness.finish(figures)


if __name__ == "__main__":
    main()

"""A national SDP day through the registry, beside a plain COPY and upsert of the same rows.

python -m bench.sdp_day [--total 275600] [--upts 0] [--part-size 500] [--no-record]

526 UPTs (as their own broker users, 16 at a time) publish their daily snapshots to a registry running alone
on an isolated installation; every part's receipt is timed and checked against the simulation's truth. In
the same run, the accepted rows are written once more into PostgreSQL with COPY and an upsert, the least any
registry must do with them, for comparison.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from datetime import date, datetime
from typing import Any

import asyncpg

from bench import harness
from shared.contracts import WIB, InmateRecord
from shared.settings import PROJECT_ROOT
from shared.units import load_units
from sim import population
from sim.day import run_day

UPSERT = """
INSERT INTO bench_records AS r (upt_id, as_of, inmate_id, snapshot, part, nik, record, submission_id)
SELECT upt_id, as_of, inmate_id, snapshot, part, nik, record, submission_id FROM bench_load
ON CONFLICT (upt_id, as_of, snapshot, inmate_id) DO UPDATE SET nik = EXCLUDED.nik, record = EXCLUDED.record
"""


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
            await conn.copy_records_to_table(
                "bench_load",
                records=rows,
                columns=(
                    "upt_id",
                    "as_of",
                    "inmate_id",
                    "snapshot",
                    "part",
                    "nik",
                    "record",
                    "submission_id",
                ),
            )
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


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--total", type=int, default=275_600)
    parser.add_argument("--upts", type=int, default=0, help="only the first N UPTs (0 = all 526)")
    parser.add_argument("--part-size", type=int, default=500)
    parser.add_argument("--seed", type=int, default=2025)
    parser.add_argument("--workers", type=int, default=2, help="registry processes consuming the same queue")
    parser.add_argument("--no-record", action="store_true", help="do not append to BENCHMARKS.md")
    args = parser.parse_args()

    units = load_units(PROJECT_ROOT / "deploy" / "units")
    chosen = units.upts[: args.upts] if args.upts else units.upts
    units = units.subset({u.upt_id for u in chosen})
    as_of = datetime.now(WIB).date()
    harness.say(f"generating {args.total:,} inmates for {len(units.upts)} UPTs")
    by_upt = population.generate(
        units, population.Options(as_of=as_of, total=args.total, seed=args.seed, part_size=args.part_size)
    )
    with harness.installation(units, ("registry",), instances=args.workers) as (sandbox, _):
        report = asyncio.run(
            run_day(
                units=units,
                by_upt=by_upt,
                credentials=sandbox.credentials,
                amqp_url=sandbox.servers.amqp_url,
                vhost=sandbox.vhost,
                as_of=as_of,
                part_size=args.part_size,
                receipt_timeout=900,
            )
        )
        harness.say("the same rows with a plain COPY and upsert, for comparison")
        rows = baseline_rows(by_upt, as_of, args.part_size)
        baseline = asyncio.run(copy_and_upsert(sandbox.database_url, rows))
        info = harness.machine(asyncio.run(harness.database_version(sandbox.database_url)))
    s = report.summary()
    seconds = s["receipt_seconds"]
    figures = {
        "registry_processes": args.workers,
        "upts": s["upts"],
        "parts": s["parts"],
        "records": s["records"],
        "accepted": s["accepted"],
        "refused": s["rejected"],
        "mismatches_against_truth": s["mismatches"],
        "seconds_first_publish_to_last_receipt": seconds,
        "records_per_s": round(s["records"] / seconds),
        "publish_seconds": s["publish_seconds"],
        "p50_publish_to_receipt_s": s["p50_receipt_s"],
        "p99_publish_to_receipt_s": s["p99_receipt_s"],
        "copy_upsert_seconds_same_rows": round(baseline, 2),
        "registry_to_copy_upsert_ratio": round(seconds / baseline, 1),
    }
    if not args.no_record:
        harness.record(
            "national SDP day through the registry",
            figures,
            [
                f"The registry ran alone ({args.workers} processes on one queue) on an isolated vhost and database; "
                "the UPTs published from "
                "the same machine. `copy_upsert_seconds_same_rows` is one COPY of the accepted rows into a staging "
                "table and one upsert into a table shaped like the registry's, in one transaction."
            ],
            info,
        )
    harness.finish(figures)


if __name__ == "__main__":
    main()

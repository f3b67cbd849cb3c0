"""One UPT floods the registry while the others send their day: how much later do the others get their receipts?

python -m bench.flood [--upts 100] [--total 52400] [--times 10] [--spread 40] [--processes 2] [--no-record]

On an isolated installation (the registry only, `--processes` of it), `--upts` UPTs send their day of `--total`
inmates in all (parts of 500, each UPT as itself, sim/day.py), group after group over `--spread` seconds as a day
comes, twice: first alone (the baseline), then as a new snapshot of the same day while, a quarter of the way in,
the largest of them (the flooder) sends `--times` its day at once. Figures: the other UPTs' receipt delays (from
publishing a part to its receipt) in both rounds, the p99 added by the flood, every receipt present (`lost`),
and how many of the flooder's parts the registry answered SENDER_OVER_RATE (unread, sent again after the
pause: registry settings `sdp_burst_records`, `sdp_records_per_second`).
"""

from __future__ import annotations

import argparse
import asyncio
from datetime import datetime, timedelta
from typing import Any

from bench import harness
from deploy.sandbox import Sandbox
from shared.contracts import WIB
from shared.settings import PROJECT_ROOT
from shared.units import Units, load_units
from sim import population
from sim.day import DayReport, run_day

GROUPS = 20


def quantiles(report: DayReport) -> dict[str, float | None]:
    lat = sorted(report.latencies)

    def at(q: float) -> float | None:
        return round(lat[min(len(lat) - 1, int(q * len(lat)))], 3) if lat else None

    return {"p50": at(0.5), "p99": at(0.99), "max": round(lat[-1], 3) if lat else None}


async def paced(
    units: Units, by_upt: dict[str, Any], snapshot: int, spread: float, **common: Any
) -> DayReport:
    """The UPTs' day as a day comes: groups of UPTs start one after another over `spread` seconds."""
    groups = [units.subset({u.upt_id for u in units.upts[i::GROUPS]}) for i in range(GROUPS)]

    async def group(n: int, part: Units) -> DayReport:
        await asyncio.sleep(n * spread / GROUPS)
        mine = {u.upt_id: by_upt[u.upt_id] for u in part.upts}
        return await run_day(units=part, by_upt=mine, snapshot=snapshot, **common)

    merged = DayReport(upts=len(units.upts))
    for r in await asyncio.gather(*(group(n, g) for n, g in enumerate(groups) if g.upts)):
        merged.receipts += r.receipts
        merged.latencies += r.latencies
        merged.mismatches += r.mismatches
        merged.over_rate += r.over_rate
    return merged


async def measure(sandbox: Sandbox, units: Units, flooder: str, args: argparse.Namespace) -> dict[str, Any]:
    day = datetime.now(WIB).date() - timedelta(days=1)
    others = units.subset({u.upt_id for u in units.upts} - {flooder})
    flooding = units.subset({flooder})
    by_upt = population.generate(others, population.Options(as_of=day, total=args.total, seed=args.seed))
    weight = {u.upt_id: u.weight for u in units.upts}
    normal = round(args.total * weight[flooder] / sum(weight[u.upt_id] for u in others.upts))  # its own day
    flood = population.generate(
        flooding, population.Options(as_of=day, total=normal * args.times, seed=args.seed + 1)
    )
    common: dict[str, Any] = {
        "credentials": sandbox.credentials, "amqp_url": sandbox.servers.amqp_url, "vhost": sandbox.vhost,
        "as_of": day, "part_size": 500, "progress": False,
    }  # fmt: skip
    harness.say(f"baseline: {len(others.upts)} UPTs send {args.total:,} inmates")
    base = await paced(others, by_upt, 1, args.spread, **common)
    harness.say(f"  {base.receipts} receipts, p99 {quantiles(base)['p99']} s")
    records = len(flood[flooder])
    harness.say(
        f"flood: {flooder} sends {records:,} inmates ({args.times} × its day) as the others send again"
    )
    again = asyncio.create_task(paced(others, by_upt, 2, args.spread, **common))
    await asyncio.sleep(args.spread / 4)  # a quarter into the others' sending
    flood_report = await run_day(units=flooding, by_upt=flood, snapshot=1, **common)
    await again
    again_report = again.result()
    harness.say(
        f"  others: {again_report.receipts} receipts, p99 {quantiles(again_report)['p99']} s; flooder: "
        f"{flood_report.receipts} receipts, {flood_report.over_rate} parts told SENDER_OVER_RATE"
    )
    expected = sum(len(population.parts(r, 500)) for r in by_upt.values())
    b, a = quantiles(base), quantiles(again_report)
    return {
        "upts": len(others.upts), "records": args.total, "flood_records": records, "times": args.times,
        "base_p50_s": b["p50"], "base_p99_s": b["p99"], "base_max_s": b["max"],
        "flood_p50_s": a["p50"], "flood_p99_s": a["p99"], "flood_max_s": a["max"],
        "added_p99_s": round((a["p99"] or 0) - (b["p99"] or 0), 3),
        "lost": (expected - base.receipts) + (expected - again_report.receipts)
        + (len(population.parts(flood[flooder], 500)) - flood_report.receipts),
        "flooder_seconds": round(flood_report.receipt_seconds, 1),
        "over_rate_parts": flood_report.over_rate,
        "mismatches": len(base.mismatches) + len(again_report.mismatches) + len(flood_report.mismatches),
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--upts", type=int, default=100, help="UPTs that send their day (the flooder among them)"
    )
    parser.add_argument("--total", type=int, default=52_400, help="inmates of the other UPTs together")
    parser.add_argument("--times", type=int, default=10, help="the flooder sends this many times its day")
    parser.add_argument("--processes", type=int, default=2, help="registry processes")
    parser.add_argument(
        "--spread", type=float, default=40.0, help="seconds over which the others start sending"
    )
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--no-record", action="store_true", help="do not append to BENCHMARKS.md")
    args = parser.parse_args()
    everything = load_units(PROJECT_ROOT / "deploy" / "units")
    chosen = sorted(everything.upts, key=lambda u: (-u.weight, u.upt_id))[: args.upts]
    flooder = chosen[0].upt_id  # the largest: ten times its day is the biggest flood a normal day can make
    units = everything.subset({u.upt_id for u in chosen})
    with harness.installation(units, ("registry",), label="flood", instances=args.processes) as (sandbox, _):
        figures = harness.run(measure(sandbox, units, flooder, args))
        info = harness.machine(harness.run(harness.database_version(sandbox.database_url)))
    if not args.no_record:
        harness.record(
            "one UPT floods the registry: the other UPTs' receipt delays",
            figures,
            [
                f"{args.processes} registry processes. The other UPTs send their day alone (`base_*`), then again "
                f"as a new snapshot while the largest UPT sends {args.times} times its day at once (`flood_*`); "
                "delays from publishing a part to its receipt, as the sending UPT sees them. `lost`: parts "
                "without a receipt; `over_rate_parts`: the flooder's parts answered SENDER_OVER_RATE (not "
                "read; sent again after the pause, all answered in the end)."
            ],
            info,
        )
    harness.finish(figures)


if __name__ == "__main__":
    main()

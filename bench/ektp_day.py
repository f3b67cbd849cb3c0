"""A day of e-KTP enrolment packets from every kab/kota office.

python -m bench.ektp_day --registry-only [--total 30000] [--offices 0] [--workers 2] [--no-record]

With `--registry-only`, 514 Dukcapil offices (as their own broker users) publish 30,000 enrolment packets
with synthetic templates to a registry running alone on an isolated installation; every packet's receipt is
timed and its status checked against the simulation's truth (planted region, template and quality faults).
Accepted packets wait in the dedup queue: this measures the front door only.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import datetime

from bench import harness
from shared.contracts import WIB
from shared.settings import PROJECT_ROOT
from shared.units import load_units
from sim.ektp import CaptureStations, PacketOptions
from sim.ektp_day import run_ektp_day


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--registry-only",
        action="store_true",
        help="measure the registry alone (packets stop at dedup's queue)",
    )
    parser.add_argument("--total", type=int, default=30_000)
    parser.add_argument(
        "--offices", type=int, default=0, help="only the first N kab/kota offices (0 = all 514)"
    )
    parser.add_argument("--seed", type=int, default=2025)
    parser.add_argument("--workers", type=int, default=2, help="registry processes consuming the same queue")
    parser.add_argument("--no-record", action="store_true", help="do not append to BENCHMARKS.md")
    args = parser.parse_args()
    if not args.registry_only:
        sys.exit(
            "bench.ektp_day: only --registry-only is available so far; the end-to-end run (1:N search against a "
            "seeded gallery, verdict latency and accuracy) comes with the dedup service's biometric search."
        )

    units = load_units(PROJECT_ROOT / "deploy" / "units")
    offices = units.dukcapil[: args.offices] if args.offices else units.dukcapil
    units = units.subset({o.unit_id for o in offices})
    as_of = datetime.now(WIB).date()
    harness.say(f"generating {args.total:,} e-KTP captures in {len(offices)} kab/kota")
    planned = CaptureStations(offices, PacketOptions(as_of=as_of, total=args.total, seed=args.seed)).day()
    faulty = sum(1 for p in planned if p.expected_status != "SENT_FOR_DEDUP")
    with harness.installation(units, ("registry",), instances=args.workers, label="bench-ektp") as (
        sandbox,
        _,
    ):
        report = asyncio.run(
            run_ektp_day(
                offices=offices,
                packets=planned,
                credentials=sandbox.credentials,
                amqp_url=sandbox.servers.amqp_url,
                vhost=sandbox.vhost,
                receipt_timeout=900,
            )
        )
        info = harness.machine(asyncio.run(harness.database_version(sandbox.database_url)))
    s = report.summary()
    seconds = s["receipt_seconds"]
    figures = {
        "registry_processes": args.workers,
        "offices": len(offices),
        "packets": s["packets"],
        "planted_faults": faulty,
        "receipts": s["receipts"],
        "statuses": s["statuses"],
        "mismatches_against_truth": s["mismatches"],
        "seconds_first_publish_to_last_receipt": seconds,
        "packets_per_s": round(s["packets"] / seconds) if seconds else None,
        "publish_seconds": s["publish_seconds"],
        "p50_publish_to_receipt_s": s["p50_receipt_s"],
        "p99_publish_to_receipt_s": s["p99_receipt_s"],
    }
    for line in report.mismatches[:10]:
        harness.say(f"  mismatch: {line}")
    if not args.no_record:
        harness.record(
            "e-KTP packets through the registry (registry only)",
            figures,
            [
                f"The registry ran alone ({args.workers} processes on one queue) on an isolated vhost and "
                "database; the offices published from the same machine, 16 at a time, up to 200 packets in "
                "flight each. A packet's receipt comes when it is RECEIVED_AT_CENTRAL and checked (templates "
                "decoded, quality and exceptions, region against sender and NIK) and then SENT_FOR_DEDUP or "
                "refused; dedup was not running."
            ],
            info,
        )
    harness.finish(figures)
    if report.mismatches:
        sys.exit(1)


if __name__ == "__main__":
    main()

"""A simulated SDP day: every UPT publishes its snapshot as its own user; receipts are checked against truth.

python -m sim.day [--total 275600] [--upts 526] [--as-of 2026-11-21] [--no-wait]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from deploy import credentials as creds
from shared.contracts import WIB
from shared.settings import PROJECT_ROOT
from shared.units import Units, load_units

from . import population
from .publisher import EncodedPart, SentPart, UnitClient, riding_out, submission_body


@dataclass
class DayReport:
    """What was sent, what came back, and where the answers disagree with the ground truth."""

    upts: int = 0
    parts: int = 0
    records: int = 0
    expected_accepted: int = 0
    expected_rejected: int = 0
    receipts: int = 0
    accepted: int = 0
    rejected: int = 0
    publish_seconds: float = 0.0
    receipt_seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    mismatches: list[str] = field(default_factory=list)
    receipt_bodies: dict[str, dict[str, Any]] = field(default_factory=dict)
    over_rate: int = 0  # parts the registry answered SENDER_OVER_RATE (not read), sent again after the pause
    reconnects: int = 0  # connections lost (a broker restart) after which a UPT connected and sent again
    gave_up: list[str] = field(default_factory=list)  # units that stopped sending (refused, or out of time)
    publishes: Counter[str] = field(default_factory=Counter)  # by message id: each publication of a part
    answers: Counter[tuple[str, str, str]] = field(
        default_factory=Counter
    )  # Receipts.counts of each listener

    def summary(self) -> dict[str, Any]:
        lat = sorted(self.latencies)

        def pct(q: float) -> float | None:
            return round(lat[min(len(lat) - 1, int(q * len(lat)))], 3) if lat else None

        return {
            "upts": self.upts,
            "parts": self.parts,
            "records": self.records,
            "expected_accepted": self.expected_accepted,
            "expected_rejected": self.expected_rejected,
            "receipts": self.receipts,
            "accepted": self.accepted,
            "rejected": self.rejected,
            "publish_seconds": round(self.publish_seconds, 2),
            "receipt_seconds": round(self.receipt_seconds, 2),
            "p50_receipt_s": pct(0.5),
            "p99_receipt_s": pct(0.99),
            "mean_receipt_s": round(statistics.fmean(lat), 3) if lat else None,
            "mismatches": len(self.mismatches),
            "reconnects": self.reconnects,
            "over_rate": self.over_rate,
        }


def compare(records: list[population.PlannedRecord], receipt: dict[str, Any]) -> list[str]:
    """Each record refused exactly when the truth says so, with the code the truth expects."""
    refused: dict[int, set[str]] = {}
    for problem in receipt.get("rejected", []):
        if problem.get("index") is None:
            return [f"{receipt.get('in_reply_to')}: whole part refused ({problem.get('code')})"]
        refused.setdefault(problem["index"], set()).add(problem["code"])
    out = []
    for index, planned in enumerate(records):
        got = refused.get(index, set())
        if planned.expected_codes and not (planned.expected_codes & got):
            out.append(
                f"{planned.inmate_id}: expected {sorted(planned.expected_codes)}, got {sorted(got) or 'accepted'}"
            )
        elif not planned.expected_codes and got:
            out.append(f"{planned.inmate_id}: expected accepted, got {sorted(got)}")
    if receipt.get("accepted") != sum(1 for p in records if p.accepted):
        out.append(
            f"{receipt.get('in_reply_to')}: accepted {receipt.get('accepted')}, "
            f"expected {sum(1 for p in records if p.accepted)}"
        )
    return out


async def run_day(
    *,
    units: Units,
    by_upt: dict[str, list[population.PlannedRecord]],
    credentials: list[creds.Credential],
    amqp_url: str,
    vhost: str,
    as_of: date,
    part_size: int = 500,
    concurrency: int = 16,
    wait_receipts: bool = True,
    receipt_timeout: float = 600.0,
    progress: bool = True,
    snapshot: int = 1,
) -> DayReport:
    """Every UPT connects as itself, publishes its parts, then (optionally) waits for all its receipts."""
    report = DayReport(upts=len(units.upts))
    gate = asyncio.Semaphore(concurrency)
    encoded: dict[str, list[EncodedPart]] = {}
    for upt in units.upts:
        chunks = population.parts(by_upt.get(upt.upt_id, []), part_size)
        encoded[upt.upt_id] = [
            EncodedPart.of(
                submission_body(upt.upt_id, as_of, snapshot, n, len(chunks), [p.raw for p in chunk])
            )
            for n, chunk in enumerate(chunks, start=1)
        ]
    started = time.monotonic()
    published = Counter[str]()

    def say(text: str) -> None:
        if progress:
            print(text, flush=True)

    async def send_all(
        upt_id: str, url: str, username: str, got: dict[str, dict[str, Any]], sent: dict[str, SentPart]
    ) -> None:
        """Connect, send every part not yet answered, and wait for their receipts; `sent` keeps when each part
        was first sent (confirmed by the broker), also across a lost connection, which raises: the caller
        connects and sends again."""
        waiting = [p for p in encoded[upt_id] if p.message_id not in got]
        async with UnitClient(url, username, upt_id) as client:
            listener = await client.listen() if wait_receipts else None
            try:
                async with gate:
                    for part in waiting:
                        report.publishes[part.message_id] += 1
                        first = await client.publish_part(part)
                        sent.setdefault(first.message_id, first)
                if listener is not None:
                    expected = {p.message_id for p in waiting}
                    until = time.monotonic() + receipt_timeout
                    while not expected <= listener.found.keys() and time.monotonic() < until:
                        await listener.wait_for(expected, 1.0)
                        client.ensure_open()
                        due = listener.due()
                        for part in (p for p in waiting if p.message_id in due):
                            report.publishes[part.message_id] += 1  # told to slow down: the same part again
                            report.over_rate += 1
                            await client.publish_part(part)
            finally:
                if listener is not None:  # what came before a drop is kept
                    await listener.hand_over(got, report.answers)

    async def one_upt(upt_id: str) -> None:
        """Like a well-written regional client: after a lost connection (a broker restart), connect again and
        send again, under the same message ids, every part not yet answered; the registry stores each once."""
        records = by_upt.get(upt_id, [])
        chunks = population.parts(records, part_size)
        cred = creds.find(credentials, "upt", upt_id)
        url = creds.amqp_url(amqp_url, cred, vhost)
        got: dict[str, dict[str, Any]] = {}
        first_sent: dict[str, SentPart] = {}

        async def connected() -> None:
            await send_all(upt_id, url, cred.username, got, first_sent)

        _, reconnects = await riding_out(connected, receipt_timeout)
        report.reconnects += reconnects
        report.publish_seconds = max(report.publish_seconds, time.monotonic() - started)
        published["upts"] += 1
        published["parts"] += len(chunks)
        if progress and published["upts"] % 50 == 0:
            say(f"  published {published['upts']}/{report.upts} UPTs ({published['parts']} parts)")
        report.parts += len(chunks)
        report.records += len(records)
        report.expected_accepted += sum(1 for p in records if p.accepted)
        report.expected_rejected += sum(1 for p in records if not p.accepted)
        if not wait_receipts:
            return
        # Each part beside its own receipt, by message id: a part answered before a lost connection is not
        # sent again, and counting on the list of what was sent once paired later parts with earlier receipts.
        for part, chunk in zip(encoded[upt_id], chunks, strict=True):
            receipt = got.get(part.message_id)
            s = first_sent.get(part.message_id)
            if receipt is None or s is None:
                report.mismatches.append(f"{upt_id} part {part.part}: no receipt")
                continue
            report.receipts += 1
            report.accepted += int(receipt.get("accepted", 0))
            report.rejected += int(receipt.get("received", 0)) - int(receipt.get("accepted", 0))
            report.latencies.append(receipt["_received_at"] - s.sent_at)
            report.receipt_bodies[s.message_id] = receipt
            report.mismatches += compare(chunk, receipt)

    say(f"publishing {sum(len(v) for v in by_upt.values()):,} records from {report.upts} UPTs")
    tasks = [asyncio.create_task(one_upt(u.upt_id)) for u in units.upts]
    results = await asyncio.gather(*tasks, return_exceptions=True)
    for upt, result in zip(units.upts, results, strict=True):
        if isinstance(result, BaseException):
            report.mismatches.append(f"{upt.upt_id}: {result!r}")
            report.gave_up.append(f"{upt.upt_id}: {result!r}")
    report.receipt_seconds = time.monotonic() - started
    return report


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--units", type=Path, default=PROJECT_ROOT / "deploy" / "units")
    parser.add_argument("--credentials", type=Path, default=PROJECT_ROOT / ".run" / "credentials.csv")
    parser.add_argument("--amqp-url", default="amqp://127.0.0.1:5672/")
    parser.add_argument("--vhost", default="simpul")
    parser.add_argument("--upts", type=int, default=0, help="only the first N UPTs (0 = all)")
    parser.add_argument("--total", type=int, default=275_600, help="inmates across the chosen UPTs")
    parser.add_argument(
        "--as-of", type=date.fromisoformat, default=None, help="snapshot date (default: today WIB)"
    )
    parser.add_argument("--seed", type=int, default=2025)
    parser.add_argument("--no-wait", action="store_true", help="do not wait for receipts")
    parser.add_argument(
        "--snapshot",
        type=int,
        default=0,
        help="snapshot number (0 = minutes since midnight WIB + 1: each run of the same day is a later "
        "snapshot that supersedes the earlier one, as a UPT resending its day would)",
    )
    args = parser.parse_args()
    now = datetime.now(WIB)
    snapshot = args.snapshot or now.hour * 60 + now.minute + 1

    units = load_units(args.units)
    if args.upts:
        units = units.subset({u.upt_id for u in units.upts[: args.upts]})
    as_of = args.as_of or datetime.now(WIB).date()
    options = population.Options(as_of=as_of, total=args.total, seed=args.seed)
    print(
        f"generating {args.total:,} inmates for {len(units.upts)} UPTs (date {as_of}, snapshot {snapshot})",
        flush=True,
    )
    by_upt = population.generate(units, options)
    report = asyncio.run(
        run_day(
            units=units,
            by_upt=by_upt,
            credentials=creds.read(args.credentials),
            amqp_url=args.amqp_url,
            vhost=args.vhost,
            as_of=as_of,
            part_size=options.part_size,
            wait_receipts=not args.no_wait,
            snapshot=snapshot,
        )
    )
    summary = report.summary()
    print(f"day done: {summary}")
    for line in report.mismatches[:20]:
        print(f"  mismatch: {line}")
    sys.exit(1 if report.mismatches else 0)


if __name__ == "__main__":
    main()

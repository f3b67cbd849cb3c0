"""A simulated e-KTP day: every kab/kota sends its packets as its own user; receipts are checked against truth.

python -m sim.ektp_day [--total 30000] [--offices 514] [--no-wait]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from deploy import credentials as creds
from shared.contracts import WIB
from shared.settings import PROJECT_ROOT
from shared.units import Dukcapil, load_units

from .ektp import SENT, CaptureStations, PacketOptions, PlannedPacket
from .publisher import DEDUP_VERDICTS, UnitClient, packet_message, riding_out

# Where a capture may already be when it is sent again after dedup decided it.
AFTER_DEDUP = DEDUP_VERDICTS


@dataclass
class EktpReport:
    packets: int = 0
    receipts: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    publish_seconds: float = 0.0
    receipt_seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    mismatches: list[str] = field(default_factory=list)
    verdicts: dict[str, dict[str, Any]] = field(default_factory=dict)  # packet id -> dedup's answer
    verdict_latencies: list[float] = field(default_factory=list)  # publish -> the office has the verdict
    reconnects: int = 0  # connections lost (a broker restart) after which an office connected and sent again
    publishes: Counter[str] = field(default_factory=Counter)  # by message id: each publication of a packet
    answers: Counter[tuple[str, str, str]] = field(
        default_factory=Counter
    )  # Receipts.counts of each listener

    def summary(self) -> dict[str, Any]:
        lat = sorted(self.latencies)

        def pct(q: float, values: list[float] = lat) -> float | None:
            return round(values[min(len(values) - 1, int(q * len(values)))], 3) if values else None

        vlat = sorted(self.verdict_latencies)

        return {
            "packets": self.packets,
            "receipts": self.receipts,
            "statuses": dict(self.statuses),
            "publish_seconds": round(self.publish_seconds, 2),
            "receipt_seconds": round(self.receipt_seconds, 2),
            "p50_receipt_s": pct(0.5),
            "p99_receipt_s": pct(0.99),
            "mismatches": len(self.mismatches),
            "verdicts": len(self.verdicts),
            "p50_verdict_s": pct(0.5, vlat),
            "p99_verdict_s": pct(0.99, vlat),
        }


def compare(planned: PlannedPacket, receipt: dict[str, Any]) -> list[str]:
    """The capture ended in the status the truth predicts, for the reason it predicts."""
    got = receipt.get("status")
    codes = {p["code"] for p in receipt.get("problems", []) + receipt.get("refused", [])}
    if planned.expected_status == SENT and got in AFTER_DEDUP and not codes:
        return []  # sent again after dedup decided it: answered with where it is now
    if got != planned.expected_status:
        return [f"{planned.packet_id}: expected {planned.expected_status}, got {got} {sorted(codes)}"]
    if planned.expected_codes and not planned.expected_codes & codes:
        return [f"{planned.packet_id}: expected {sorted(planned.expected_codes)}, got {sorted(codes)}"]
    return []


async def run_ektp_day(
    *,
    offices: tuple[Dukcapil, ...],
    packets: list[PlannedPacket],
    credentials: list[creds.Credential],
    amqp_url: str,
    vhost: str,
    concurrency: int = 16,
    in_flight: int = 200,
    wait_receipts: bool = True,
    receipt_timeout: float = 600.0,
    progress: bool = True,
    rate: float | None = None,
    wait_verdicts: bool = False,
) -> EktpReport:
    """Each office connects as itself and sends its packets (many in flight), then reads its receipts.

    `rate`: packets per second offered, all offices together, in the packets' order (every office connects
    at once); `wait_verdicts`: also wait, per packet the registry sent on, for the receipt with dedup's verdict.
    """
    report = EktpReport(packets=len(packets))
    by_office: dict[str, list[PlannedPacket]] = defaultdict(list)
    for p in packets:
        by_office[p.kabkota].append(p)
    gate = asyncio.Semaphore(len(offices) if rate else concurrency)
    due = {p.packet_id: i / rate for i, p in enumerate(packets)} if rate else {}
    started = time.monotonic()
    sent_count = Counter[str]()

    async def connected(
        office: Dukcapil, url: str, username: str, bodies: list[dict[str, Any]], sent_at: dict[str, float],
        got: dict[str, dict[str, Any]], verdicts: dict[str, dict[str, Any]],
        forwarded: Callable[[dict[str, dict[str, Any]]], set[str]],
    ) -> None:  # fmt: skip
        """One connection: send every packet not yet answered, then wait for the receipts (and verdicts). A
        lost connection raises: the caller connects and sends again."""
        async with UnitClient(url, username, office.unit_id) as client:
            listener = await client.listen() if wait_receipts else None
            window = asyncio.Semaphore(in_flight)
            first = not sent_at

            async def send(body: dict[str, Any]) -> None:
                if rate and first:
                    await asyncio.sleep(max(0.0, started + due[str(body["packet_id"])] - time.monotonic()))
                async with window:
                    sent_at.setdefault(body["message_id"], time.monotonic())
                    report.publishes[body["message_id"]] += 1
                    await client.publish_body(
                        json.dumps(body).encode(),
                        message_id=body["message_id"],
                        routing_key=f"ektp.{office.kabkota_code}.packet",
                    )

            try:
                async with gate:
                    await asyncio.gather(*(send(b) for b in bodies if b["message_id"] not in got))
                    report.publish_seconds = max(report.publish_seconds, time.monotonic() - started)
                    if first:
                        sent_count["packets"] += len(bodies)
                        sent_count["offices"] += 1
                        if progress and sent_count["offices"] % 50 == 0:
                            print(
                                f"  published {sent_count['packets']:,}/{len(packets):,} packets", flush=True
                            )
                if listener is None:
                    return
                until = time.monotonic() + receipt_timeout
                expected = {b["message_id"] for b in bodies}
                while time.monotonic() < until:
                    missing = expected - got.keys() - listener.found.keys()
                    pending = forwarded(got | listener.found) - verdicts.keys() - listener.verdicts.keys()
                    if missing:
                        await listener.wait_for(missing, 1.0)
                    elif wait_verdicts and pending:
                        await listener.wait_for_verdicts(pending, 1.0)
                    else:
                        break
                    client.ensure_open()
            finally:
                if listener is not None:
                    await listener.hand_over(got, report.answers, verdicts)

    def forwarded_of(
        mine: list[PlannedPacket], bodies: list[dict[str, Any]]
    ) -> Callable[[dict[str, dict[str, Any]]], set[str]]:
        """The packets the registry sent on to dedup, by the receipts so far."""

        def forwarded(got: dict[str, dict[str, Any]]) -> set[str]:
            return {
                p.packet_id
                for p, b in zip(mine, bodies, strict=True)
                if got.get(b["message_id"], {}).get("status") in (SENT, *AFTER_DEDUP)
            }

        return forwarded

    async def one_office(office: Dukcapil) -> None:
        """Like a well-written regional client: after a lost connection (a broker restart), connect again and
        send again, under the same message ids, every packet not yet answered; the registry keeps each once."""
        mine = by_office.get(office.kabkota_code, [])
        if not mine:
            return
        cred = creds.find(credentials, "dukcapil", office.unit_id)
        url = creds.amqp_url(amqp_url, cred, vhost)
        bodies = [packet_message(p.body) for p in mine]
        sent_at: dict[str, float] = {}
        got: dict[str, dict[str, Any]] = {}
        verdicts: dict[str, dict[str, Any]] = {}
        _, reconnects = await riding_out(
            lambda: connected(
                office, url, cred.username, bodies, sent_at, got, verdicts, forwarded_of(mine, bodies)
            ),
            receipt_timeout,
        )
        report.reconnects += reconnects
        if not wait_receipts:
            return
        sent_forward = forwarded_of(mine, bodies)(got)
        for planned, body in zip(mine, bodies, strict=True):
            receipt = got.get(body["message_id"])
            if receipt is None:
                report.mismatches.append(f"{planned.packet_id}: no receipt")
                continue
            report.receipts += 1
            report.statuses[str(receipt.get("status"))] += 1
            report.latencies.append(receipt["_received_at"] - sent_at[body["message_id"]])
            report.mismatches += compare(planned, receipt)
            verdict = verdicts.get(planned.packet_id)
            if verdict is not None:
                report.verdicts[planned.packet_id] = verdict
                report.verdict_latencies.append(verdict["_received_at"] - sent_at[body["message_id"]])
            elif wait_verdicts and planned.packet_id in sent_forward:
                report.mismatches.append(f"{planned.packet_id}: no verdict")

    if progress:
        print(f"publishing {len(packets):,} e-KTP packets from {len(by_office)} kab/kota", flush=True)
    results = await asyncio.gather(*(one_office(o) for o in offices), return_exceptions=True)
    for office, result in zip(offices, results, strict=True):
        if isinstance(result, BaseException):
            report.mismatches.append(f"{office.unit_id}: {result!r}")
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
    parser.add_argument("--offices", type=int, default=0, help="only the first N offices (0 = all)")
    parser.add_argument("--total", type=int, default=30_000)
    parser.add_argument("--as-of", type=date.fromisoformat, default=None)
    parser.add_argument("--seed", type=int, default=2025)
    parser.add_argument("--no-wait", action="store_true")
    args = parser.parse_args()
    offices = load_units(args.units).dukcapil
    if args.offices:
        offices = offices[: args.offices]
    as_of = args.as_of or datetime.now(WIB).date()
    print(f"generating {args.total:,} e-KTP captures in {len(offices)} kab/kota", flush=True)
    packets = CaptureStations(offices, PacketOptions(as_of=as_of, total=args.total, seed=args.seed)).day()
    report = asyncio.run(
        run_ektp_day(
            offices=offices,
            packets=packets,
            credentials=creds.read(args.credentials),
            amqp_url=args.amqp_url,
            vhost=args.vhost,
            wait_receipts=not args.no_wait,
        )
    )
    print(f"e-KTP day done: {report.summary()}")
    for line in report.mismatches[:20]:
        print(f"  mismatch: {line}")
    sys.exit(1 if report.mismatches else 0)


if __name__ == "__main__":
    main()

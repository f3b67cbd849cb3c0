"""A day of e-KTP enrolment packets from every kab/kota office, through the registry and dedup.

python -m bench.ektp_day [--gallery 1000000] [--total 30000] [--rate 100] [--latency-share 0.2]
                         [--exact-probes 20] [--no-record]
python -m bench.ektp_day --registry-only [--total 30000] [--offices 0] [--workers 2] [--no-record]

End to end: an isolated installation, its dedup gallery seeded with `--gallery` synthetic people (COPY, as
`python -m sim.gallery` does; a share of them enrolled twice under two NIKs), and a day of captures in which
the simulator planted its ground truth: re-enrolments under a new NIK, a third NIK for people holding two,
borderline recaptures (grey zone), identical twins, NIKs reused by another person and NIKs contradicting
the packet, besides the registry's region and template faults. Three phases:

1. throughput: (1 - latency-share) of the packets go through the registry while dedup is stopped; dedup
   then starts (loading the gallery) and works the backlog: packets per second sustained is the backlog
   over the time from dedup ready to its last verdict;
2. latency: the other packets, from 64 offices, offered at `--rate` packets/s with everything running;
   publish-to-verdict is timed at the office (the receipt telling it dedup's verdict);
3. accuracy: every verdict (from dedup's store) against the truth — missed duplicates (mated searches that
   got neither DUPLICATE_RECORD nor ADJUDICATE_RECORD), false biometric DUPLICATE_RECORD among non-mated
   searches, adjudication rate — and, with dedup stopped, the exact brute force on `--exact-probes`
   probes of the same day against the same seeded gallery.

With `--registry-only`, the registry runs alone and packets stop at dedup's queue: the front door only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from collections import Counter
from datetime import UTC, date, datetime
from typing import Any

import asyncpg
import numpy as np

from bench import harness
from services.dedup import gallery as dedup_gallery
from services.dedup.domain import biometrics as bio
from services.dedup.domain import verdicts as rules
from services.dedup.domain.probes import probe_of
from services.dedup.enrolment import SearchSettings, nik_contradicts
from services.dedup.store import PostgresGalleryStore
from services.dedup.vault import Vault
from shared import nik as niks
from shared.contracts import WIB, Biometrics
from shared.runtime import Database
from shared.settings import PROJECT_ROOT
from shared.units import Units, load_units
from sim import gallery as seeding
from sim.ektp import SENT, TRUTHS, CaptureStations, PacketOptions, PlannedPacket
from sim.ektp_day import run_ektp_day

BIOMETRIC_DUPLICATES = {"one_to_one", "one_to_many", "already_enrolled"}
LATENCY_OFFICES = 64


async def stored_verdicts(dsn: str) -> dict[str, dict[str, Any]]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch("SELECT packet_id, status, finding, verdict, decided_at FROM dedup.verdicts")
    finally:
        await conn.close()
    return {
        r["packet_id"]: {
            "status": r["status"],
            "finding": r["finding"],
            "verdict": json.loads(r["verdict"]),
            "decided_at": r["decided_at"],
        }
        for r in rows
    }


async def wait_for_verdicts(dsn: str, expected: int, timeout: float) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        deadline, last = time.monotonic() + timeout, -1
        while time.monotonic() < deadline:
            done = int(await conn.fetchval("SELECT count(*) FROM dedup.verdicts"))
            if done != last:
                harness.say(f"  dedup decided {done:,}/{expected:,}")
                last = done
            if done >= expected:
                return
            await asyncio.sleep(2)
    finally:
        await conn.close()


def accuracy(planned: list[PlannedPacket], verdicts: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Verdicts against the truth, per planted case and as the issue's rates."""
    per_truth: dict[str, Counter[str]] = {}
    mated = missed = nonmated = false_dup = decided = adjudicated = no_verdict = 0
    for p in planned:
        if p.expected_status != SENT:
            continue
        v = verdicts.get(p.packet_id)
        if v is None:
            no_verdict += 1
            continue
        decided += 1
        status, finding = v["status"], v["finding"]
        per_truth.setdefault(p.truth, Counter())[f"{status}/{finding.split(':')[0]}"] += 1
        adjudicated += status == "ADJUDICATE_RECORD"
        if p.mated:
            mated += 1
            missed += status not in ("DUPLICATE_RECORD", "ADJUDICATE_RECORD")
        elif p.truth != "nik_reuse":  # a reused NIK is a duplicate by NIK, not by biometrics
            nonmated += 1
            false_dup += status == "DUPLICATE_RECORD" and finding in BIOMETRIC_DUPLICATES
    expected = {t: "/".join(v) for t, v in TRUTHS.items()}
    wrong = {
        t: sum(n for outcome, n in c.items() if outcome != expected[t]) for t, c in sorted(per_truth.items())
    }
    return {
        "verdicts": decided,
        "no_verdict": no_verdict,
        "mated_searches": mated,
        "missed_duplicates": missed,
        "missed_duplicates_pct": round(100 * missed / mated, 4) if mated else None,
        "non_mated_searches": nonmated,
        "false_duplicates": false_dup,
        "false_duplicates_pct": round(100 * false_dup / nonmated, 4) if nonmated else None,
        "adjudicated": adjudicated,
        "adjudication_pct": round(100 * adjudicated / decided, 3) if decided else None,
        "outcomes_by_truth": {t: dict(c) for t, c in sorted(per_truth.items())},
        "unexpected_by_truth": wrong,
    }


async def brute_force(
    dsn: str, spec: seeding.GallerySpec, probes: list[PlannedPacket], verdicts: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    """The same probes decided by comparing every modality with everyone in the seeded gallery."""
    database = Database.of_service(dsn, "dedup")
    await database.open()
    try:
        gallery = await dedup_gallery.load(
            PostgresGalleryStore(database),
            Vault.from_environment(dedup_gallery.LAYOUT),
            progress=lambda done, total: harness.say(f"  brute force: loaded {done:,}/{total:,}"),
        )
    finally:
        await database.close()
    gallery.truncate(spec.count)  # the seeded people only (the day's additions came after)
    settings = SearchSettings()
    limits = bio.Thresholds.for_gallery(
        spec.count, duplicate_fpir=settings.duplicate_fpir, adjudicate_fpir=settings.adjudicate_fpir
    )
    agree = 0
    disagreements: list[str] = []
    started = time.monotonic()
    for i, p in enumerate(probes):
        probe = probe_of(Biometrics.model_validate(p.body["biometrics"]))
        best = gallery.exact(probe.templates, settings.model, top=10)[0] if probe.usable else []
        holders = gallery.rows_of_nik.get(p.body["nik"], [])
        held = (
            gallery.score_rows(probe.templates, holders, settings.model) if holders and probe.usable else []
        )

        def candidate(m: Any) -> rules.Candidate:
            return rules.Candidate(gallery.niks[m.row], m.llr, m.modalities, ref=m.row)

        exact = rules.decide(
            nik=p.body["nik"],
            usable_modalities=probe.usable,
            nik_contradicts=contradicts(p),
            matches=[candidate(m) for m in best],
            nik_holder=candidate(held[0]) if held else None,
            thresholds=limits,
        )
        service = verdicts.get(p.packet_id, {})
        if (exact.status.value, exact.finding.value) == (service.get("status"), service.get("finding")):
            agree += 1
        else:
            disagreements.append(
                f"{p.truth}: exact {exact.status.value}/{exact.finding.value}, "
                f"service {service.get('status')}/{service.get('finding')}"
            )
        harness.say(f"  brute force: {i + 1}/{len(probes)} probes ({time.monotonic() - started:.0f} s)")
    seconds = time.monotonic() - started
    for line in disagreements:
        harness.say(f"  disagreement: {line}")
    return {
        "exact_probes": len(probes),
        "exact_agrees_with_service": agree,
        "exact_searches_per_s": round(len(probes) / seconds, 3) if seconds else None,
    }


def contradicts(p: PlannedPacket) -> bool:
    """The NIK's sex or birth date differ from the packet's (as dedup reads them)."""
    d = p.body["demographics"]
    return nik_contradicts(
        p.body["nik"],
        sex=niks.Sex(d["sex"]),
        birth_date=date.fromisoformat(d["birth_date"]),
        today=datetime.now(WIB).date(),
    )


def pick_probes(planned: list[PlannedPacket], n: int, seed: int) -> list[PlannedPacket]:
    """Half mated (every planted kind), half not, among the captures the registry sent on."""
    rng = np.random.default_rng(seed)
    sent = [p for p in planned if p.expected_status == SENT]
    mated = [p for p in sent if p.mated]
    other = [p for p in sent if not p.mated]
    take = n // 2
    chosen = [mated[i] for i in rng.choice(len(mated), min(take, len(mated)), replace=False)] if mated else []
    chosen += [other[i] for i in rng.choice(len(other), min(n - len(chosen), len(other)), replace=False)]
    return chosen


def end_to_end(args: argparse.Namespace, units: Units) -> None:
    offices = units.dukcapil
    as_of = datetime.now(WIB).date()
    spec = seeding.GallerySpec(args.gallery, seed=args.seed)
    latency_total = round(args.total * args.latency_share)
    harness.say(f"generating {args.total:,} e-KTP captures against a gallery of {args.gallery:,}")
    first = CaptureStations(
        offices, PacketOptions(as_of=as_of, total=args.total - latency_total, seed=args.seed, gallery=spec)
    ).day()
    paced = CaptureStations(
        offices[:LATENCY_OFFICES],
        PacketOptions(as_of=as_of, total=latency_total, seed=args.seed + 1, gallery=spec),
    ).day()
    planned = first + paced
    with harness.installation(units, ("registry",), instances=args.workers, label="bench-ektp-e2e") as (
        sandbox,
        processes,
    ):
        os.environ["DEDUP_GALLERY_KEY"] = sandbox.gallery_key()
        started = time.monotonic()
        harness.run(seeding.seed(sandbox.database_url, spec))
        seed_seconds = time.monotonic() - started

        harness.say(f"phase 1: {len(first):,} packets through the registry, dedup stopped")
        phase1 = harness.run(
            run_ektp_day(
                offices=offices,
                packets=first,
                credentials=sandbox.credentials,
                amqp_url=sandbox.servers.amqp_url,
                vhost=sandbox.vhost,
                receipt_timeout=1800,
            )
        )
        backlog = phase1.statuses.get(SENT, 0)
        harness.say(f"phase 1: {backlog:,} packets wait for dedup; starting dedup (loading the gallery)")
        started = time.monotonic()
        if args.first_stage_k:
            processes.start("dedup", timeout=3600, LOG_LEVEL="WARNING", FIRST_STAGE_K=str(args.first_stage_k))
        else:
            processes.start("dedup", timeout=3600, LOG_LEVEL="WARNING")
        load_seconds = time.monotonic() - started
        ready_at = datetime.now(UTC)
        harness.run(wait_for_verdicts(sandbox.database_url, backlog, timeout=3600))
        decided = harness.run(stored_verdicts(sandbox.database_url))
        last = max(v["decided_at"] for v in decided.values())
        throughput_seconds = (last - ready_at).total_seconds()

        harness.say(
            f"phase 2: {len(paced):,} packets offered at {args.rate:g}/s from {LATENCY_OFFICES} offices"
        )
        phase2 = harness.run(
            run_ektp_day(
                offices=offices[:LATENCY_OFFICES],
                packets=paced,
                credentials=sandbox.credentials,
                amqp_url=sandbox.servers.amqp_url,
                vhost=sandbox.vhost,
                receipt_timeout=1800,
                rate=args.rate,
                wait_verdicts=True,
            )
        )
        memory = harness.memory_mb(processes.pid("dedup"))
        verdicts = harness.run(stored_verdicts(sandbox.database_url))
        processes.stop("dedup")
        figures_accuracy = accuracy(planned, verdicts)
        exact = (
            harness.run(
                brute_force(
                    sandbox.database_url, spec, pick_probes(planned, args.exact_probes, args.seed), verdicts
                )
            )
            if args.exact_probes
            else {}
        )
        info = harness.machine(harness.run(harness.database_version(sandbox.database_url)))
    s2 = phase2.summary()
    figures: dict[str, Any] = {
        "gallery_people": args.gallery,
        "first_stage_k": args.first_stage_k or "default",
        "legacy_duplicate_pairs_in_gallery": len(spec.legacy_pairs()),
        "seeding_seconds": round(seed_seconds, 1),
        "dedup_gallery_load_seconds": round(load_seconds, 1),
        "packets": len(planned),
        "planted": dict(Counter(p.truth for p in planned if p.expected_status == SENT)),
        "registry_refusals_planted": sum(1 for p in planned if p.expected_status != SENT),
        "throughput_backlog_packets": backlog,
        "throughput_seconds_dedup_ready_to_last_verdict": round(throughput_seconds, 1),
        "dedup_packets_per_s_sustained": round(backlog / throughput_seconds, 1)
        if throughput_seconds
        else None,
        "latency_packets_offered": len(paced),
        "latency_offered_per_s": args.rate,
        "latency_publish_seconds": s2["publish_seconds"],
        "p50_publish_to_verdict_s": s2["p50_verdict_s"],
        "p99_publish_to_verdict_s": s2["p99_verdict_s"],
        "p50_publish_to_registry_receipt_s": s2["p50_receipt_s"],
        **figures_accuracy,
        **exact,
        "dedup_rss_mb": memory["rss"],
        "dedup_peak_rss_mb": memory["peak"],
        "registry_mismatches": len(phase1.mismatches) + len(phase2.mismatches),
    }
    for line in (phase1.mismatches + phase2.mismatches)[:10]:
        harness.say(f"  mismatch: {line}")
    if not args.no_record:
        harness.record(
            f"e-KTP day end to end against a {args.gallery:,}-person gallery",
            figures,
            [
                f"{args.workers} registry processes and one dedup process on an isolated vhost and database. "
                "Throughput: the backlog left by phase 1 over the time from dedup ready (gallery loaded) to "
                f"its last verdict. Latency: {len(paced):,} packets from {LATENCY_OFFICES} offices offered "
                f"at {args.rate:g}/s; publish to the office's receipt carrying dedup's verdict. Accuracy: "
                "every stored verdict against the simulator's truth (`sim/ektp.py` TRUTHS); the brute force "
                "decides the sampled probes by comparing every modality with every seeded person."
            ],
            info,
        )
    harness.finish(figures)


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
    parser.add_argument("--gallery", type=int, default=1_000_000, help="people seeded into dedup's gallery")
    parser.add_argument("--rate", type=float, default=100.0, help="packets/s offered in the latency phase")
    parser.add_argument(
        "--latency-share", type=float, default=0.2, help="share of packets in the latency phase"
    )
    parser.add_argument("--exact-probes", type=int, default=20, help="probes also decided by brute force")
    parser.add_argument(
        "--first-stage-k", type=int, default=0, help="dedup's FIRST_STAGE_K (0 = the service's default)"
    )
    parser.add_argument("--no-record", action="store_true", help="do not append to BENCHMARKS.md")
    args = parser.parse_args()
    units = load_units(PROJECT_ROOT / "deploy" / "units")
    if args.offices:
        units = units.subset({o.unit_id for o in units.dukcapil[: args.offices]})
    if not args.registry_only:
        end_to_end(args, units)
        return
    registry_only(args, units)


def registry_only(args: argparse.Namespace, units: Units) -> None:
    offices = units.dukcapil
    as_of = datetime.now(WIB).date()
    harness.say(f"generating {args.total:,} e-KTP captures in {len(offices)} kab/kota")
    planned = CaptureStations(offices, PacketOptions(as_of=as_of, total=args.total, seed=args.seed)).day()
    faulty = sum(1 for p in planned if p.expected_status != "SENT_FOR_DEDUP")
    with harness.installation(units, ("registry",), instances=args.workers, label="bench-ektp") as (
        sandbox,
        _,
    ):
        report = harness.run(
            run_ektp_day(
                offices=offices,
                packets=planned,
                credentials=sandbox.credentials,
                amqp_url=sandbox.servers.amqp_url,
                vhost=sandbox.vhost,
                receipt_timeout=900,
            )
        )
        info = harness.machine(harness.run(harness.database_version(sandbox.database_url)))
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

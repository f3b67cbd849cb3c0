"""The suite under faults: a national SDP day, an e-KTP batch and the consolidation run, faults injected in turn
and together, each scenario compared with a fault-free run of the same day.

python -m bench.faults [--scenarios none,kill9,...] [--rounds 3] [--seed N] [--total 275600] [--upts 0]
                       [--packets 3000] [--offices 40] [--refuse-seconds 30] [--no-record]

Every scenario gets its own installation (vhost, users, database) with two registry processes, dedup, the
consolidator and the monitor, kept running by a supervisor as a service manager would (a process that dies is
started again). Scenarios (`--scenarios`, comma-separated; `none`, the fault-free reference, always runs first):

  kill9         kill -9 of every service process at random moments, `--rounds` times each, and of the
                consolidator once more during the run (the seed is printed: `--seed` replays the moments)
  broker-app    rabbitmqctl stop_app, 10 s, start_app
  broker-node   the whole broker node stopped and started again (with `ulimit -n 65536`)
  pg-restart    PostgreSQL restarted (pg_ctlcluster restart)
  pg-refuse     the installation's database refuses every connection for `--refuse-seconds`
  pg-refuse-run the same, a moment after the consolidation run was commanded
  disk-alarm    the broker's free-disk limit above the free space for 15 s (every publisher blocked)
  memory-alarm  the broker's memory watermark at nothing for 15 s (every publisher blocked)
  combined      kill -9 of a registry, stop_app/start_app, a PostgreSQL restart, a disk alarm, kill -9 of dedup
                and of the consolidator during the run, in one day

After each scenario, against the fault-free run: every message answered and no answer more often than its
message was sent (`receipts`), every central record and capture as in the reference (`central`), every
verdict (`verdicts`), every central feed message once (`feed`), the run report byte-identical, no message left
in any queue, `dead.letters` holding exactly the planted bad input. The broker and PostgreSQL are brought back
even when a scenario fails; a broker that is to be restarted is first given an open-files limit that lets it
recover every queue.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from datetime import date, datetime, timedelta
from typing import Any

from bench import harness
from bench import planted as planted_day
from bench.faultkit import Broker, Postgres, Supervisor
from bench.faultrun import (
    PROCESSES,
    Observed,
    Rig,
    Tally,
    examples,
    observe,
    play,
    repeated_answers,
    repeated_feed,
    tallies,
)
from shared.contracts import WIB
from shared.settings import PROJECT_ROOT
from shared.units import Units, load_units
from sim import centre
from sim.ektp import CaptureStations, PacketOptions, PlannedPacket

Inject = Callable[[Rig], Awaitable[None]]


async def nothing(rig: Rig) -> None:
    return None


async def _kill(rig: Rig, name: str) -> None:
    rig.note(f"kill -9 {name}")
    rig.supervisor.kill(name)
    await asyncio.sleep(0.5)  # until the supervisor has seen it go
    await rig.recovered()


def kill9(rounds: int) -> Inject:
    async def inject(rig: Rig) -> None:
        moments = sorted((rig.rng.uniform(0.03, 0.85), name) for _ in range(rounds) for name in PROCESSES)
        for fraction, name in moments:
            await rig.at(fraction)
            await _kill(rig, name)
        await rig.run_requested.wait()
        await asyncio.sleep(rig.rng.uniform(0.1, 1.0))
        await _kill(rig, "consolidator")

    return inject


async def broker_app(rig: Rig, down: float = 10.0) -> None:
    rig.note("rabbitmqctl stop_app")
    try:
        await asyncio.to_thread(rig.broker.stop_app)
        await asyncio.sleep(down)
    finally:
        await asyncio.to_thread(rig.broker.ensure_running)
    rig.note("rabbitmqctl start_app (done)")
    await rig.recovered()


async def broker_node(rig: Rig) -> None:
    await rig.at(0.3)
    rig.note("broker node stopped")
    try:
        await asyncio.to_thread(rig.broker.stop_node)
        await asyncio.sleep(5)
    finally:
        await asyncio.to_thread(rig.broker.ensure_running)
    rig.note("broker node started (ulimit -n 65536)")
    await rig.recovered()


async def pg_restart(rig: Rig) -> None:
    rig.note("PostgreSQL restart")
    await rig.postgres.restart()
    await rig.recovered()


def pg_refuse(seconds: float, *, in_run: bool = False) -> Inject:
    async def inject(rig: Rig) -> None:
        if in_run:  # while the consolidation run holds its lock and writes its steps
            await rig.run_requested.wait()
            await asyncio.sleep(rig.rng.uniform(0.05, 1.0))
        else:
            await rig.at(0.3)
        rig.note(f"the database refuses connections for {seconds:.0f} s")
        async with rig.postgres.refusing():
            await asyncio.sleep(seconds)
        await rig.recovered()

    return inject


def alarm(kind: str, seconds: float = 15.0) -> Inject:
    async def inject(rig: Rig) -> None:
        await rig.at(0.3)
        rig.note(f"{kind} alarm on the broker for {seconds:.0f} s")
        async with rig.broker.disk_alarm() if kind == "disk" else rig.broker.memory_alarm():
            await asyncio.sleep(seconds)
        await rig.recovered()

    return inject


async def combined(rig: Rig) -> None:
    await rig.at(0.1)
    await _kill(rig, "registry")
    await rig.at(0.25)
    await broker_app(rig, down=5.0)
    await rig.at(0.45)
    await pg_restart(rig)
    await alarm("disk", 10.0)(rig)
    await rig.at(0.7)
    await _kill(rig, "dedup")
    await rig.run_requested.wait()
    await asyncio.sleep(rig.rng.uniform(0.1, 1.0))
    await _kill(rig, "consolidator")


def scenarios(args: argparse.Namespace) -> dict[str, Inject]:
    async def at_third(rig: Rig) -> None:
        await rig.at(0.3)

    async def app(rig: Rig) -> None:
        await at_third(rig)
        await broker_app(rig)

    async def restart(rig: Rig) -> None:
        await at_third(rig)
        await pg_restart(rig)

    return {
        "none": nothing, "kill9": kill9(args.rounds), "broker-app": app, "broker-node": broker_node,
        "pg-restart": restart, "pg-refuse": pg_refuse(args.refuse_seconds),
        "pg-refuse-run": pg_refuse(args.refuse_seconds, in_run=True), "disk-alarm": alarm("disk"),
        "memory-alarm": alarm("memory"), "combined": combined,
    }  # fmt: skip


RESTARTS_BROKER = {"broker-app", "broker-node", "combined"}


def one(
    name: str, inject: Inject, units: Units, by_upt: centre.Records, day: date, packets: list[PlannedPacket],
    args: argparse.Namespace, span: float, seed: int,
) -> tuple[Observed, list[str], list[float]]:  # fmt: skip
    broker = Broker(harness.servers().rabbitmqctl)
    if name in RESTARTS_BROKER:  # before the installation: its queues too must be recovered after a restart
        broker.ensure_handles(2 * (len(units.upts) + len(units.dukcapil)) + 100)
    services = ("registry", "dedup", "consolidator", "monitor")
    logs = PROJECT_ROOT / "tmp" / "faults" / name
    with harness.installation(units, services, label="faults", log_level="INFO", keep_logs=logs) as (
        sandbox,
        processes,
    ):
        processes.start("registry", instance=2, LOG_LEVEL="INFO")
        postgres = Postgres(harness.servers().database_url, sandbox.database_url)
        rig = Rig(
            sandbox, processes, Supervisor(processes, PROCESSES), broker, postgres, random.Random(seed), span
        )

        async def scenario() -> Observed:
            try:
                seconds, sdp, ektp, run_id, planted = await play(
                    rig, inject, units, by_upt, day, packets, args.part_size
                )
                return await observe(rig, seconds, sdp, ektp, run_id, planted, args.settle_seconds)
            finally:
                await rig.supervisor.stop()
                await asyncio.to_thread(broker.ensure_running)
                await postgres.ensure_running()

        observed = harness.run(scenario())
    return observed, rig.faults, rig.recoveries


COLUMNS = ("expected", "found", "lost", "doubled")


def row(name: str, faults: list[str], recoveries: list[float], o: Observed, base: Observed) -> dict[str, Any]:
    kinds = tallies(o, base)
    total = sum(kinds.values(), Tally())
    unexpected_dead = sorted({reason for mid, reason in o.dead_letters if mid not in o.planted_dead})
    planted_found = {mid for mid, _ in o.dead_letters if mid in o.planted_dead}
    return {
        "scenario": name, "faults": len(faults), "expected": total.expected, "found": total.found,
        "lost": total.lost, "doubled": total.doubled,
        **{f"{k}_{f}": v for k, t in kinds.items() for f, v in zip(COLUMNS, t.row(), strict=True)},
        "report_same": o.report_files == base.report_files and bool(o.report_files),
        "queues_left": sum(o.queues_left.values()), "queues_left_names": ",".join(sorted(o.queues_left)),
        "dead_letters_planted": f"{len(planted_found)}/{len(o.planted_dead)}",
        "dead_letters_other": len([1 for mid, _ in o.dead_letters if mid not in o.planted_dead]),
        "dead_letter_reasons_other": ",".join(unexpected_dead),
        "receipts_again": repeated_answers(o), "feed_again": repeated_feed(o), "crashes": len(o.crashes),
        "recover_s": round(max(recoveries, default=0.0), 1),
        "seconds": round(o.seconds, 1), "overhead_s": round(o.seconds - base.seconds, 1),
        "examples": examples(o, base),
    }  # fmt: skip


TABLE = ("scenario", "faults", "expected", "found", "lost", "doubled", "report_same", "queues_left",
         "dead_letters_planted", "dead_letters_other", "receipts_again", "feed_again", "crashes", "recover_s",
         "seconds", "overhead_s")  # fmt: skip


def table(rows: list[dict[str, Any]]) -> list[str]:
    lines = ["| " + " | ".join(TABLE) + " |", "|" + " --- |" * len(TABLE)]
    lines += ["| " + " | ".join(str(r[c]) for c in TABLE) + " |" for r in rows]
    return lines


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    planted_day.add_arguments(parser)
    parser.add_argument("--scenarios", default="none,kill9,broker-app,broker-node,pg-restart,pg-refuse,pg-refuse-run,"
                        "disk-alarm,memory-alarm,combined")  # fmt: skip
    parser.add_argument("--rounds", type=int, default=3, help="kill -9 rounds of every process (kill9)")
    parser.add_argument("--packets", type=int, default=3_000, help="e-KTP packets of the day")
    parser.add_argument("--offices", type=int, default=40, help="Dukcapil offices sending them")
    parser.add_argument("--refuse-seconds", type=float, default=30.0)
    parser.add_argument(
        "--settle-seconds", type=float, default=600.0, help="wait this long for queues to empty"
    )
    parser.add_argument("--no-record", action="store_true", help="do not append to BENCHMARKS.md")
    return parser


def run(args: argparse.Namespace) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Every chosen scenario after the fault-free one: their table rows and the figures of the whole run."""
    chosen = ["none", *[s for s in args.scenarios.split(",") if s and s != "none"]]
    known = scenarios(args)
    if unknown := [s for s in chosen if s not in known]:
        raise ValueError(f"unknown scenarios: {', '.join(unknown)} (known: {', '.join(known)})")
    day = datetime.now(WIB).date() - timedelta(days=1)
    planted = planted_day.plant(args, day)
    offices = load_units(PROJECT_ROOT / "deploy" / "units").dukcapil[: args.offices]
    sending = {u.upt_id for u in planted.units.upts} - {planted.truth.silent_upt}
    units = load_units(PROJECT_ROOT / "deploy" / "units").subset(sending | {o.unit_id for o in offices})
    packets = CaptureStations(
        units.dukcapil, PacketOptions(as_of=day, total=args.packets, seed=args.seed)
    ).day()
    records = sum(len(v) for v in planted.by_upt.values())
    harness.say(
        f"{len(units.upts)} UPTs send {records:,} records, {len(units.dukcapil)} Dukcapil offices "
        f"{len(packets):,} packets; scenarios: {', '.join(chosen)}"
    )
    rows: list[dict[str, Any]] = []
    base: Observed | None = None
    for index, name in enumerate(chosen):
        seed = args.seed * 1000 + index
        harness.say(f"scenario {name} (seed {seed})")
        began = time.monotonic()
        observed, faults, recoveries = one(
            name, known[name], units, planted.by_upt, day, packets, args, base.seconds if base else 60.0, seed
        )
        base = base or observed
        rows.append(row(name, faults, recoveries, observed, base))
        r = rows[-1]
        harness.say(
            f"  {name}: {len(faults)} faults, {r['lost']} lost, {r['doubled']} doubled, report "
            f"{'same' if r['report_same'] else 'DIFFERENT'}, {r['queues_left']} messages left, dead letters "
            f"{r['dead_letters_planted']} planted + {r['dead_letters_other']} other, {r['crashes']} crashes, "
            f"recovered in {r['recover_s']} s ({time.monotonic() - began:.0f} s in all)"
        )
        kinds = tallies(observed, base)
        harness.say("    " + "; ".join(f"{k} {'/'.join(map(str, t.row()))}" for k, t in kinds.items()))
        for line in r["examples"]:
            harness.say(f"    {line}")
        for crash in observed.crashes[:10]:
            harness.say(f"    unplanned exit: {crash}")
    for line in table(rows):
        harness.say(line)
    figures: dict[str, Any] = {
        "scenarios": len(rows), "lost": sum(r["lost"] for r in rows), "doubled": sum(r["doubled"] for r in rows),
        "reports_different": sum(not r["report_same"] for r in rows),
        "messages_left": sum(r["queues_left"] for r in rows),
        "dead_letters_other": sum(r["dead_letters_other"] for r in rows),
        "receipts_again": sum(r["receipts_again"] for r in rows),
        "feed_again": sum(r["feed_again"] for r in rows),
        "upts": len(units.upts), "records": records, "packets": len(packets),
        "baseline_seconds": rows[0]["seconds"],
        **{f"{r['scenario']}_recover_s": r["recover_s"] for r in rows[1:]},
        **{f"{r['scenario']}_overhead_s": r["overhead_s"] for r in rows[1:]},
    }  # fmt: skip
    return rows, figures


def main() -> None:
    arguments = parser()
    args = arguments.parse_args()
    known = scenarios(args)
    if unknown := [s for s in args.scenarios.split(",") if s and s not in known]:
        arguments.error(f"unknown scenarios: {', '.join(unknown)} (known: {', '.join(known)})")
    rows, figures = run(args)
    if not args.no_record:
        info = harness.machine(harness.run(harness.database_version(harness.servers().database_url)))
        harness.record("the suite under faults: a day, an e-KTP batch and a run per scenario", figures, [
            *table(rows), "",
            "Each scenario on its own installation (2 registry processes, dedup, consolidator, monitor, restarted "
            "by the harness when they die), against the fault-free run (`none`) of the same planted day. "
            "`expected`/`found`/`lost`/`doubled`: receipts (every message answered, none more often than it was "
            "sent), central records and captures, dedup verdicts and central feed messages together. "
            "`receipts_again`: receipts delivered a second time under the same id (the outbox relay is "
            "at-least-once when the database fails between a publish and its record; clients keep the first of "
            "each id); `feed_again`: the same for central feed messages (a version of a record told by two "
            "different messages counts as doubled). "
            "`recover_s`: longest wait, after a fault was lifted, until every service answered ready; "
            "`overhead_s`: the day's time (first publish to the run's end) beyond the fault-free one.",
        ], info)  # fmt: skip
    harness.finish(figures)


if __name__ == "__main__":
    main()

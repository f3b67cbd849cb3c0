"""The soak: national SDP days back to back through one installation, one fault a minute, memory watched.

python -m bench.soak [--days 10] [--fault-every 60] [--faults broker-app,broker-node,pg-restart,pg-refuse,
                     disk-alarm,memory-alarm] [--total 275600] [--upts 0] [--part-size 500] [--seed 2025]
                     [--census consolidator [--held-through shared.contracts.InmateRecord]] [--no-record]

One installation (two registry processes, dedup, the consolidator and the monitor, kept running by a
supervisor as a service manager would) lives through `--days` consecutive days. Each day every sending UPT
publishes its snapshot (sim/centre.py chains the days: about 1 % of the inmates change, one UPT's snapshot is
halved), and once every part is staged the centre commands the day's run, whose report is compared with the
report the simulator predicts. Meanwhile a fault starts every `--fault-every` seconds, day and night, taking
the kinds of `--faults` in a seeded shuffled turn (`kill9` kills a random service process):

  broker-app    rabbitmqctl stop_app, 10 s, start_app       pg-restart    PostgreSQL restarted
  broker-node   the broker node stopped and started again   pg-refuse     the database refuses connections 20 s
  disk-alarm    the broker's disk alarm for 15 s            memory-alarm  the broker's memory alarm for 15 s

At the end: every part answered exactly once per publication (`receipts`), every central record's newest
version on the central feed and no version told twice (`feed`), no message left in a queue, no unplanned exit,
and the resident memory (RSS) of every service process after the first day and after the last, each taken at
rest (the day's work done everywhere, its central feed published, then one of the services' memory passes): a
service whose memory grows day after day under the same load leaks. (The very first figure, before any day, is
printed as well; it is an empty process's.) Killed processes restart with empty memory, so `kill9` is not in
the default turn: bench.faults measures kill -9 at every moment of a day.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from bench import harness
from bench import planted as planted_day
from bench.faultkit import Broker, FaultError, Postgres, Supervisor
from bench.faultrun import (
    DATABASE_AWAY,
    PROCESSES,
    Rig,
    feed,
    load_report,
    observe,
    receipts,
    repeated_answers,
    run_day_of_consolidation,
    settle,
    watch,
)
from services.consolidator.domain.report import RunReport
from shared import allocator
from shared.contracts import WIB
from shared.runtime import COLLECT_EVERY_SECONDS
from shared.settings import PROJECT_ROOT
from shared.units import Units
from sim import centre, population
from sim.day import DayReport, run_day
from sim.ektp_day import EktpReport

SERVICES = ("registry", "dedup", "consolidator", "monitor")
FAULTS = ("broker-app", "broker-node", "pg-restart", "pg-refuse", "disk-alarm", "memory-alarm", "kill9")
DEFAULT_FAULTS = FAULTS[:-1]
GROWTH_LIMIT_PCT = 10.0


async def inject(rig: Rig, kind: str) -> None:
    """One fault, lifted again, and the wait until every service is ready."""
    if kind in ("broker-app", "broker-node"):
        app = kind == "broker-app"
        rig.note("rabbitmqctl stop_app" if app else "broker node stopped")
        try:
            await asyncio.to_thread(rig.broker.stop_app if app else rig.broker.stop_node)
            await asyncio.sleep(10 if app else 5)
        finally:
            await asyncio.to_thread(rig.broker.ensure_running)
    elif kind == "pg-restart":
        rig.note("PostgreSQL restart")
        await rig.postgres.restart()
    elif kind == "pg-refuse":
        rig.note("the database refuses connections for 20 s")
        async with rig.postgres.refusing():
            await asyncio.sleep(20)
    elif kind in ("disk-alarm", "memory-alarm"):
        rig.note(f"{kind} on the broker for 15 s")
        async with rig.broker.disk_alarm() if kind == "disk-alarm" else rig.broker.memory_alarm():
            await asyncio.sleep(15)
    elif kind == "kill9":
        name = rig.rng.choice(PROCESSES)
        rig.note(f"kill -9 {name}")
        rig.supervisor.kill(name)
        await asyncio.sleep(0.5)
    else:
        raise ValueError(f"unknown fault {kind}")
    await rig.recovered()


def turn(kinds: list[str], rng: random.Random) -> Callable[[], str]:
    """The kinds in a shuffled order, again and again (each round shuffled anew): every kind as often."""
    queue: list[str] = []

    def next_kind() -> str:
        if not queue:
            queue.extend(rng.sample(kinds, len(kinds)))
        return queue.pop(0)

    return next_kind


async def faulting(rig: Rig, kinds: list[str], every: float, quiet: asyncio.Lock) -> None:
    """A fault starting every `every` seconds (right after the last one is lifted if it took longer), none while
    the memory at rest is taken (`quiet` held)."""
    next_kind = turn(kinds, rig.rng)
    due = time.monotonic() + every
    while True:
        await asyncio.sleep(max(0.0, due - time.monotonic()))
        async with quiet:
            due = time.monotonic() + every
            await inject(rig, next_kind())


def rss(rig: Rig) -> dict[str, int]:
    """Resident memory of every service process now, in MB."""
    out = {}
    for name in PROCESSES:
        try:
            out[name] = harness.memory_mb(rig.processes.pid(name))["rss"]
        except (OSError, KeyError, RuntimeError):
            out[name] = 0
    return out


async def at_rest(rig: Rig, timeout: float, quiet: asyncio.Lock) -> dict[str, int]:
    """Every service's resident memory at rest: once the day's work is done everywhere (every queue and outbox
    empty, every service ready: the run's central feed is published too), with no fault in progress and none
    started (`quiet` held: the fault being injected is lifted first, the next waits), after one more of the
    services' memory passes (a full garbage collection and the freed pages returned,
    shared.runtime.keep_memory_returned): what a process holds then is what it keeps from one day to the
    next, not the day's work in flight nor a reconnection's (taken in the middle of a fault's recovery, the same
    installation's consolidator read anywhere from 105 to 206 MB at rest from one day to the next)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            await settle(rig, deadline - time.monotonic())
            break
        except (FaultError, subprocess.TimeoutExpired) as away:
            # the broker stopped: its queues cannot be listed
            harness.say(f"    waiting for the broker to list its queues ({type(away).__name__})")
            await asyncio.sleep(5.0)
    async with quiet:
        await settle(rig, max(60.0, deadline - time.monotonic()))  # what the last fault's recovery stirred up
        await asyncio.sleep(COLLECT_EVERY_SECONDS + 5.0)
        return rss(rig)


async def sampling(rig: Rig, peaks: dict[str, int], every: float = 2.0, jump_mb: int = 50) -> None:
    """Every service's memory every `every` seconds: the peaks, and each jump of `jump_mb` or more said at once
    with the fault before it (where memory goes is where to look for what holds it)."""
    last = rss(rig)
    while True:
        await asyncio.sleep(every)
        now = rss(rig)
        for name, mb in now.items():
            peaks[name] = max(peaks.get(name, 0), mb)
            if mb - last.get(name, mb) >= jump_mb:
                after = rig.faults[-1] if rig.faults else "no fault yet"
                harness.say(
                    f"    memory at {time.monotonic() - rig.started:5.1f} s: {name} {last[name]} -> {mb} MB "
                    f"(the last fault: {after})"
                )
        last = now


def growth(start: dict[str, int], end: dict[str, int]) -> dict[str, float]:
    """Per process, how much its memory grew from `start` to `end`, in per cent of `start`."""
    return {name: round(100.0 * (end[name] - start[name]) / start[name], 1) for name in start if start[name]}


@dataclass
class Soak:
    rig: Rig
    units: Units
    args: argparse.Namespace
    days: list[dict[str, Any]] = field(default_factory=list)
    sent: DayReport = field(default_factory=DayReport)
    memory: list[dict[str, int]] = field(default_factory=list)
    quiet: asyncio.Lock = field(default_factory=asyncio.Lock)  # held: no fault starts

    async def day(self, by_upt: centre.Records, truth: centre.DayTruth | centre.NextDayTruth) -> None:
        day, began = truth.day, time.monotonic()
        records = sum(len(v) for v in by_upt.values())
        faults_before = len(self.rig.faults)
        harness.say(f"day {len(self.days) + 1} of {self.args.days}: {day}, {records:,} records")
        sandbox = self.rig.sandbox
        report = await run_day(
            units=self.units, by_upt=by_upt, credentials=sandbox.credentials, amqp_url=sandbox.servers.amqp_url,
            vhost=sandbox.vhost, as_of=day, part_size=self.args.part_size, receipt_timeout=3600, progress=False,
        )  # fmt: skip
        if report.gave_up:  # its parts will never be staged: said now, not after an hour of waiting for them
            raise RuntimeError(f"{len(report.gave_up)} UPTs stopped sending: {report.gave_up[:3]}")
        self.sent.publishes += report.publishes
        self.sent.answers += report.answers
        parts = sum(len(population.parts(by_upt[u.upt_id], self.args.part_size)) for u in self.units.upts)
        run_id = await run_day_of_consolidation(self.rig, day, parts)
        mismatches = centre.compare(await self.report(run_id), truth)
        memory = await at_rest(self.rig, self.args.settle_seconds, self.quiet)
        self.memory.append(memory)
        self.days.append({
            "day": day.isoformat(), "records": records, "seconds": round(time.monotonic() - began, 1),
            "faults": len(self.rig.faults) - faults_before, "reconnects": report.reconnects,
            "receipt_mismatches": len(report.mismatches), "mismatches": len(mismatches),
        })  # fmt: skip
        harness.say(
            f"  {self.days[-1]['seconds']} s, {self.days[-1]['faults']} faults, {report.reconnects} reconnects "
            f"of the senders, {len(report.mismatches)} receipts and {len(mismatches)} report lines against the "
            "truth; RSS MB " + ", ".join(f"{k} {v}" for k, v in memory.items())
        )
        for line in [*report.mismatches[:5], *mismatches[:20]]:
            harness.say(f"    mismatch: {line}")

    async def report(self, run_id: str) -> RunReport:
        """The run's report, read again until the database answers (the faults go on meanwhile)."""
        for attempt in range(1, 61):
            try:
                loaded = await load_report(self.rig.sandbox.database_url, run_id)
            except DATABASE_AWAY as away:
                harness.say(f"    the report of {run_id} could not be read yet ({away!r}); attempt {attempt}")
                await asyncio.sleep(2.0)
                continue
            if loaded is None:
                raise RuntimeError(f"run {run_id} has no report")
            return loaded
        raise RuntimeError(f"the report of {run_id} could not be read for two minutes")


async def soak(
    rig: Rig, units: Units, planted: planted_day.PlantedDay, args: argparse.Namespace
) -> dict[str, Any]:
    s = Soak(rig, units, args)
    rig.supervisor.start()
    idle = rss(rig)
    harness.say("RSS MB before the first day: " + ", ".join(f"{k} {v}" for k, v in idle.items()))
    kinds = [k for k in args.faults.split(",") if k]
    rig.started = time.monotonic()
    faults = asyncio.create_task(faulting(rig, kinds, args.fault_every, s.quiet))
    peaks: dict[str, int] = {}
    watching = [asyncio.create_task(sampling(rig, peaks)), asyncio.create_task(watch(rig))]
    by_upt: centre.Records = planted.by_upt
    truth: centre.DayTruth | centre.NextDayTruth = planted.truth
    try:
        for n in range(args.days):
            if n:
                by_upt, truth = centre.next_day(by_upt, truth, planted.options)
            await s.day(by_upt, truth)
    finally:
        for task in watching:
            task.cancel()
        faults.cancel()
        with suppress(asyncio.CancelledError):
            await faults  # a fault being injected is lifted (its `finally`) before anything is observed
        await asyncio.to_thread(rig.broker.ensure_running)
        await rig.postgres.ensure_running()
    seconds = time.monotonic() - rig.started
    harness.say(
        "the days are over: waiting for every queue and outbox to empty, then reading the central feed"
    )
    observed = await observe(rig, seconds, s.sent, EktpReport(), "", set(), args.settle_seconds)
    await rig.supervisor.stop()
    answers, told = receipts(observed), feed(observed)
    grew = growth(s.memory[0], s.memory[-1])
    return {
        "days": len(s.days), "upts": len(units.upts), "records_per_day": s.days[0]["records"],
        "faults": len(rig.faults), "fault_kinds": ",".join(kinds),
        "faults_by_kind": ", ".join(f"{k} {n}" for k, n in Counter(f.split(" (")[0] for f in rig.faults).items()),
        "lost": answers.lost + told.lost, "doubled": answers.doubled + told.doubled,
        "receipts_expected": answers.expected, "receipts_lost": answers.lost, "receipts_doubled": answers.doubled,
        "receipts_again": repeated_answers(observed),
        "feed_records": told.expected, "feed_lost": told.lost, "feed_doubled": told.doubled,
        "mismatches": sum(d["mismatches"] + d["receipt_mismatches"] for d in s.days),
        "messages_left": sum(observed.queues_left.values()), "crashes": len(observed.crashes),
        "restarts": rig.supervisor.restarts,
        "recover_max_s": round(max(rig.recoveries, default=0.0), 1),
        "seconds": round(seconds, 1), "day_seconds_max": max(d["seconds"] for d in s.days),
        **{f"rss_idle_mb_{k}": v for k, v in idle.items()},
        **{f"rss_start_mb_{k}": v for k, v in s.memory[0].items()},
        **{f"rss_end_mb_{k}": v for k, v in s.memory[-1].items()},
        **{f"rss_growth_pct_{k}": v for k, v in grew.items()},
        **{f"rss_peak_mb_{k}": v for k, v in peaks.items()},
        "rss_growth_max_pct": max(grew.values(), default=0.0),
        "allocator": allocator.chosen(os.environ),
        "_days": s.days,
    }  # fmt: skip


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    planted_day.add_arguments(parser)
    parser.add_argument("--days", type=int, default=10)
    parser.add_argument(
        "--fault-every", type=float, default=60.0, help="seconds from one fault's start to the next"
    )
    parser.add_argument(
        "--faults", default=",".join(DEFAULT_FAULTS), help=f"comma-separated, of {', '.join(FAULTS)}"
    )
    parser.add_argument(
        "--settle-seconds", type=float, default=900.0, help="wait this long for queues to empty"
    )
    parser.add_argument(
        "--census", default="", metavar="SERVICES",
        help="comma-separated services started with MEMORY_CENSUS=1: their memory passes log the kinds of "
        "object they hold, the most numerous first (`census`; about a second a pass, for finding what they keep)",
    )  # fmt: skip
    parser.add_argument(
        "--held-through",
        default="",
        metavar="KIND",
        help="with --census: each pass also logs what keeps one object of KIND (module.QualName) alive",
    )
    parser.add_argument("--no-record", action="store_true", help="do not append to BENCHMARKS.md")
    return parser


def main() -> None:
    arguments = parser()
    args = arguments.parse_args()
    if unknown := [k for k in args.faults.split(",") if k and k not in FAULTS]:
        arguments.error(f"unknown faults: {', '.join(unknown)} (known: {', '.join(FAULTS)})")
    if unknown := [s for s in args.census.split(",") if s and s not in SERVICES]:
        arguments.error(f"--census: unknown services: {', '.join(unknown)}")
    if args.days < 2:
        arguments.error("--days: at least 2 (memory is compared between the first day and the last)")
    # The registry takes no snapshot dated after today (WIB): the last day is yesterday.
    first = datetime.now(WIB).date() - timedelta(days=args.days)
    planted = planted_day.plant(args, first)
    sending = {u.upt_id for u in planted.units.upts} - {planted.truth.silent_upt}
    units = planted.units.subset(sending)
    broker = Broker(harness.servers().rabbitmqctl)
    broker.ensure_handles(2 * len(planted.units.upts) + 100)  # its queues too must come back after a restart
    seed = args.seed * 1000 + 7
    harness.say(f"{args.days} days from {first}, a fault every {args.fault_every:.0f} s (seed {seed})")
    logs = PROJECT_ROOT / "tmp" / "soak"
    # Every UPT is provisioned (the silent one's line says it sent nothing); the others send.
    diagnosis = {"MEMORY_CENSUS": "1"} | (
        {"MEMORY_HELD_THROUGH": args.held_through} if args.held_through else {}
    )
    diagnosed = {s: diagnosis for s in args.census.split(",") if s}
    with harness.installation(
        planted.units, SERVICES, label="soak", log_level="INFO", keep_logs=logs, env=diagnosed
    ) as (sandbox, processes):
        processes.start("registry", instance=2, LOG_LEVEL="INFO")
        postgres = Postgres(harness.servers().database_url, sandbox.database_url)
        rig = Rig(
            sandbox, processes, Supervisor(processes, PROCESSES), broker, postgres, random.Random(seed), 0.0
        )

        async def run() -> dict[str, Any]:
            try:
                return await soak(rig, units, planted, args)
            finally:
                await rig.supervisor.stop()
                await asyncio.to_thread(broker.ensure_running)
                await postgres.ensure_running()

        figures = harness.run(run())
    days = figures.pop("_days")
    table = [
        "| day | records | seconds | faults | reconnects | mismatches |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    table += [f"| {d['day']} | {d['records']} | {d['seconds']} | {d['faults']} | {d['reconnects']} | "
              f"{d['mismatches'] + d['receipt_mismatches']} |" for d in days]  # fmt: skip
    for line in table:
        harness.say(line)
    over = figures["rss_growth_max_pct"] > GROWTH_LIMIT_PCT
    harness.say(f"largest memory growth from the first day to the last: {figures['rss_growth_max_pct']} % "
                f"({'above' if over else 'within'} the {GROWTH_LIMIT_PCT:.0f} % allowed)")  # fmt: skip
    if not args.no_record:
        info = harness.machine(harness.run(harness.database_version(harness.servers().database_url)))
        harness.record("the soak: national SDP days back to back, one fault a minute", figures, [
            *table, "",
            "One installation (2 registry processes, dedup, consolidator, monitor, restarted by the harness when "
            "they die) through consecutive simulated days (sim/centre.py chains them), each ended by the centre's "
            "run; a fault started every `--fault-every` seconds, in a seeded turn of the kinds in `fault_kinds`. "
            "`lost`/`doubled`: parts without their receipt or answered more often than published, and central "
            "records whose newest version is not on the central feed or a version told twice. `mismatches`: "
            "receipts and run report lines that differ from the simulator's truth. RSS: resident memory of each "
            "service process after the first day (`rss_start_mb_*`) and after the last (`rss_end_mb_*`), each at rest "
            "(queues and outboxes empty, no fault in progress and none started meanwhile, then one of the services' "
            "minute-by-minute full garbage collections and returns of freed pages); `rss_idle_mb_*` before any "
            "day; `rss_peak_mb_*` sampled every 2 s. Allocator: `allocator` (shared/allocator.py).",
        ], info)  # fmt: skip
    harness.finish(figures)


if __name__ == "__main__":
    main()

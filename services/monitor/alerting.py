"""Watches what the monitor knows for the conditions of its alerts, every half minute, in every instance (the
alerts table makes sure each opens and closes once)."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from shared.runtime import Clock
from shared.tasks import Background, every

from .config import Settings
from .domain import operations, pipeline
from .domain.alerts import AlertPolicy, UnitDay, Watched
from .domain.scope import Role, Scope
from .domain.views import today_wib
from .probe import QueueProbe
from .store import MonitorStore
from .usecases import Monitor

log = logging.getLogger("simpul.monitor.alerts")
CENTRE = Scope(Role.PUSAT, "pusat")


async def plumbing(
    store: MonitorStore, probe: QueueProbe, settings: Settings, now: datetime
) -> tuple[list[operations.QueueState], list[operations.ServiceState]]:
    """Each queue and each service as the probe's last two samples and the services' last messages show them
    (what the operations view shows, and what its alerts watch)."""
    queues = [
        operations.decide_queue(probe.current.get(q), probe.previous.get(q), q, settings.queue_backlog)
        for q in probe.queues
    ]
    last_seen = await store.services_seen()
    return queues, operations.decide_services(
        queues, last_seen, now, timedelta(minutes=settings.quiet_after_minutes)
    )


async def gather(store: MonitorStore, probe: QueueProbe, settings: Settings, clock: Clock) -> Watched:
    now = clock()
    day = today_wib(now)
    rows = await store.unit_rows(CENTRE, day)
    overstaying: dict[str, int] = {}
    finished = [r for r in await store.runs_of_day(day) if r["state"] == "finished"]
    if finished:
        for line in await store.run_lines(CENTRE, finished[0]["run_id"]):
            overstaying[line["upt_id"]] = int(line["figures"].get("overstaying", 0))
    units = [
        UnitDay(
            r["upt_id"],
            r["kanwil_id"],
            r["name"],
            bool(r.get("parts_received")),
            overstaying.get(r["upt_id"], 0),
        )
        for r in rows
    ]
    summary = pipeline.summarise(
        await store.pipeline_captures(CENTRE, now - timedelta(days=30)), now,
        stuck_after=timedelta(hours=settings.stuck_after_hours), recent=timedelta(hours=24), limit=1_000_000,
    )  # fmt: skip
    stuck: dict[str, int] = {}
    newly: dict[str, int] = {}  # stuck for less than an hour: the rate at which captures become stuck
    for s in summary.stuck:
        office = f"dukcapil-{s.kabkota}"
        stuck[office] = stuck.get(office, 0) + 1
        if s.hours < settings.stuck_after_hours + 1:
            newly[office] = newly.get(office, 0) + 1
    queues, services = await plumbing(store, probe, settings, now)
    return Watched(
        now=now, units=units, stuck_by_office=stuck, newly_stuck_by_office=newly,
        dead_letters_recent=await store.dead_letter_count(now - timedelta(minutes=15)),
        # Before the first sample nothing is known of the queues: no alert about them yet.
        services=services if probe.sampled_at else (), queues=queues if probe.sampled_at else (),
    )  # fmt: skip


class AlertWatch:
    def __init__(
        self, monitor: Monitor, store: MonitorStore, probe: QueueProbe, settings: Settings, clock: Clock
    ) -> None:
        self.monitor, self.store, self.probe, self.settings, self.clock = (
            monitor,
            store,
            probe,
            settings,
            clock,
        )
        self.policy = AlertPolicy()
        self._task = Background(
            "monitor-alerts",
            lambda: every(settings.alert_seconds, self._once_logged),
            retry_after=settings.alert_seconds,
        )

    async def once(self) -> tuple[int, int]:
        watched = await gather(self.store, self.probe, self.settings, self.clock)
        return await self.monitor.watch(watched, self.policy)

    async def _once_logged(self) -> None:
        opened, closed = await self.once()
        if opened or closed:
            log.info("alerts changed", extra={"opened": opened, "closed": closed})

    def start(self) -> None:
        self._task.start()

    async def stop(self) -> None:
        await self._task.stop()

"""Composition root of the monitor."""

from __future__ import annotations

import asyncio
import logging

from faststream import FastStream

from shared import messaging, metrics
from shared.runtime import Clock, Database, build_service_app, utcnow
from shared.units import load_units

from . import handlers, web
from .alerting import AlertWatch
from .config import Settings
from .hub import Hub
from .journal import LiveLog, PostgresLiveLog, UnitOfWork, postgres_unit_of_work
from .live import LiveFeed
from .probe import QueueProbe
from .scrape import MetricsScraper
from .store import MonitorStore, PostgresMonitorStore
from .usecases import Monitor

log = logging.getLogger("simpul.monitor")


def build_app(
    settings: Settings | None = None,
    *,
    store: MonitorStore | None = None,
    unit_of_work: UnitOfWork | None = None,
    live_log: LiveLog | None = None,
    database: Database | None = None,
    hub: Hub | None = None,
    clock: Clock = utcnow,
) -> FastStream:
    settings = settings or Settings()
    hub = hub or Hub()
    broker, _ = messaging.build_broker("monitor", settings)
    if store is None or unit_of_work is None or live_log is None:
        database = database or Database.of_service(settings.database_url, "monitor")
        store = PostgresMonitorStore(database)
        unit_of_work = postgres_unit_of_work(database)
        live_log = PostgresLiveLog(database)
    monitor = Monitor(unit_of_work, clock)
    broker.include_router(handlers.build_router(monitor, settings))
    feed = LiveFeed(live_log, hub)
    probe = QueueProbe(
        settings.amqp_url, clock, interval=settings.queue_poll_seconds, api_url=settings.rabbitmq_api_url
    )
    watch = AlertWatch(monitor, store, probe, settings, clock)
    scraper = MetricsScraper(settings.metrics_targets, clock, interval=settings.queue_poll_seconds)
    metrics.gauge_from(metrics.LIVE_CLIENTS, lambda: hub.clients)

    stopping = asyncio.Event()

    async def broker_ready() -> bool:
        return bool(await broker.ping(timeout=2))

    checks: dict[str, web.Check] = {"broker": broker_ready}
    if database is not None:
        checks["database"] = database.ping
    server = web.WebServer(
        web.build_web(
            store,
            hub,
            live_log,
            probe,
            monitor,
            settings,
            clock=clock,
            checks=checks,
            stopping=stopping,
            scraper=scraper,
        ),
        settings.web_host,
        settings.web_port,
        stopping,
    )
    monitor_store = store

    async def started() -> None:
        await monitor_store.load_units(load_units(settings.units_dir))
        await feed.start()
        probe.start()
        watch.start()
        scraper.start()
        await server.start()
        log.info("monitor web listening", extra={"url": f"http://{settings.web_host}:{server.port}/"})

    async def stopping_() -> None:
        await server.stop()
        await feed.stop()
        await probe.stop()
        await watch.stop()
        await scraper.stop()

    return build_service_app(
        service="monitor",
        settings=settings,
        broker=broker,
        database=database,
        description="Live status for supervisors over SSE, scoped to each login.",
        on_started=started,
        on_stopping=stopping_,
    )

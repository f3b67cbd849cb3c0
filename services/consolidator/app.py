"""Composition root of the consolidator."""

from __future__ import annotations

import asyncio
import logging

from faststream import FastStream

from shared import messaging
from shared.runtime import Clock, Database, build_service_app, utcnow
from shared.units import load_units
from shared.webserver import WebServer

from . import handlers
from .api import build_api
from .config import Settings
from .consolidation import ConsolidationStore, PostgresConsolidationStore
from .feed_publisher import FeedPublisher
from .rules import load_rules
from .store import UnitOfWork, postgres_unit_of_work
from .usecases import Consolidator
from .worker import RunWorker

log = logging.getLogger("simpul.consolidator")


def build_app(
    settings: Settings | None = None,
    *,
    database: Database | None = None,
    unit_of_work: UnitOfWork | None = None,
    runs_store: ConsolidationStore | None = None,
    clock: Clock = utcnow,
) -> FastStream:
    settings = settings or Settings()
    # Fails here, before anything starts, when the units or the detention limits cannot be read.
    units = load_units(settings.units_dir)
    rules = load_rules(settings.detention_rules)
    broker, _ = messaging.build_broker("consolidator", settings)
    if unit_of_work is None or runs_store is None:
        database = database or Database.of_service(settings.database_url, "consolidator")
        unit_of_work = unit_of_work or postgres_unit_of_work(database)
        runs_store = runs_store or PostgresConsolidationStore(database)
    consolidator = Consolidator(unit_of_work, runs_store, settings.policy(), clock)
    worker = RunWorker(consolidator, settings.run_check_interval)
    feed = FeedPublisher(settings.feed_stream_url(), messaging.broker_user(settings.amqp_url))
    broker.include_router(handlers.build_router(consolidator, settings, run_requested=worker.wake))

    api: WebServer | None = None
    if database is not None and isinstance(runs_store, PostgresConsolidationStore) and settings.api_port:
        pool = database
        api = WebServer(
            build_api(lambda: pool.pool, runs_store, clock=clock),
            settings.api_host,
            settings.api_port,
            asyncio.Event(),
        )

    async def opened() -> None:
        await consolidator.runs.load_reference(units, rules)

    async def started() -> None:
        worker.start()  # its first pass resumes any run a crash left unfinished
        if api is not None:
            await api.start()
            log.info("lookup API listening", extra={"url": f"http://{settings.api_host}:{api.port}/"})

    async def stopping() -> None:
        if api is not None:
            await api.stop()
        await worker.stop()

    return build_service_app(
        service="consolidator",
        settings=settings,
        broker=broker,
        database=database,
        description="Builds the central person records, runs the centre's daily consolidation and "
        "publishes the central feed.",
        on_opened=opened,
        on_started=started,
        on_stopping=stopping,
        details=lambda: {"run_pass_failures": worker.failures, "feed_over_stream": feed.over_stream},
        route_outbox=feed.route,
        on_closing=feed.close,
    )

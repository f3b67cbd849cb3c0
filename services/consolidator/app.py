"""Composition root of the consolidator."""

from __future__ import annotations

from faststream import FastStream

from shared import messaging
from shared.runtime import Database, build_service_app

from . import handlers
from .config import Settings
from .store import InmateStore, PostgresInmateStore


def build_app(
    settings: Settings | None = None, *, store: InmateStore | None = None, database: Database | None = None
) -> FastStream:
    settings = settings or Settings()
    broker, _ = messaging.build_broker("consolidator", settings)
    if store is None:
        database = database or Database.of_service(settings.database_url, "consolidator")
        store = PostgresInmateStore(database)
    broker.include_router(handlers.build_router(store, settings))
    return build_service_app(
        service="consolidator",
        settings=settings,
        broker=broker,
        database=database,
        description="Builds the central records and runs the daily consolidation.",
    )

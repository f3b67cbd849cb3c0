"""Composition root of dedup."""

from __future__ import annotations

from faststream import FastStream

from shared import messaging
from shared.runtime import Database, build_service_app

from . import handlers
from .config import Settings
from .store import ClaimStore, PostgresClaimStore


def build_app(
    settings: Settings | None = None, *, store: ClaimStore | None = None, database: Database | None = None
) -> FastStream:
    settings = settings or Settings()
    broker, _ = messaging.build_broker("dedup", settings)
    if store is None:
        database = database or Database.of_service(settings.database_url, "dedup")
        store = PostgresClaimStore(database)
    broker.include_router(handlers.build_router(store, settings))
    return build_service_app(
        service="dedup",
        settings=settings,
        broker=broker,
        database=database,
        description="Flags NIKs claimed by two people and duplicate biometrics; runs adjudication.",
    )

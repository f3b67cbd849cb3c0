"""Composition root of the registry."""

from __future__ import annotations

from faststream import FastStream

from shared import messaging
from shared.runtime import Database, build_service_app

from . import handlers
from .config import Settings
from .store import PostgresSubmissionStore, SubmissionStore


def build_app(
    settings: Settings | None = None,
    *,
    store: SubmissionStore | None = None,
    database: Database | None = None,
) -> FastStream:
    settings = settings or Settings()
    broker, consumer = messaging.build_broker("registry", settings)
    if store is None:
        database = database or Database.of_service(settings.database_url, "registry")
        store = PostgresSubmissionStore(database)
    consumer.answer = handlers.build_answer(broker, settings)
    broker.include_router(handlers.build_router(store, settings, broker))
    return build_service_app(
        service="registry",
        settings=settings,
        broker=broker,
        database=database,
        description="Validates UPT submissions and Dukcapil packets, stores them and answers every sender.",
    )

"""Composition root of the registry."""

from __future__ import annotations

from faststream import FastStream

from shared import messaging
from shared.runtime import Clock, Database, build_service_app, utcnow

from . import handlers
from .config import Settings
from .store import CaptureStore, PostgresCaptureStore, PostgresSubmissionStore, SubmissionStore


def build_app(
    settings: Settings | None = None,
    *,
    parts: SubmissionStore | None = None,
    captures: CaptureStore | None = None,
    database: Database | None = None,
    clock: Clock = utcnow,
) -> FastStream:
    """The registry; stores given here replace the Postgres ones (tests), and then no database is opened
    unless one is given too."""
    settings = settings or Settings()
    broker, consumer = messaging.build_broker("registry", settings)
    if parts is None or captures is None:
        database = database or Database.of_service(settings.database_url, "registry")
        parts = parts or PostgresSubmissionStore(database)
        captures = captures or PostgresCaptureStore(database)
    registry = handlers.Registry(parts, captures, settings, broker, clock)
    consumer.answer = handlers.build_answer(registry)
    broker.include_router(handlers.build_router(registry))
    return build_service_app(
        service="registry",
        settings=settings,
        broker=broker,
        database=database,
        description="Validates UPT submissions and Dukcapil packets, stores them and answers every sender.",
    )

"""Composition root of dedup."""

from __future__ import annotations

import faiss
from faststream import FastStream

from shared import messaging, metrics
from shared.runtime import Database, build_service_app, utcnow

from . import gallery as gallery_loader
from . import handlers
from .config import Settings
from .ektp import EnrolmentPipeline
from .enrolment import Engine, SearchSettings
from .population import PopulationStore
from .search import Gallery
from .store import (
    AdjudicationStore,
    ClaimStore,
    GalleryStore,
    PostgresAdjudicationStore,
    PostgresClaimStore,
    PostgresGalleryStore,
    PostgresPopulationStore,
    PostgresVerdictStore,
    VerdictStore,
)
from .vault import Vault


def build_app(
    settings: Settings | None = None,
    *,
    store: ClaimStore | None = None,
    database: Database | None = None,
    verdicts: VerdictStore | None = None,
    gallery_store: GalleryStore | None = None,
    vault: Vault | None = None,
    adjudications: AdjudicationStore | None = None,
    population: PopulationStore | None = None,
) -> FastStream:
    settings = settings or Settings()
    faiss.omp_set_num_threads(settings.search_threads)
    broker, consumer = messaging.build_broker("dedup", settings)
    if store is None:
        database = database or Database.of_service(settings.database_url, "dedup")
        store = PostgresClaimStore(database)
    pipeline: EnrolmentPipeline | None = None
    if database is not None or verdicts is not None:
        # Fails here, before anything starts, when DEDUP_GALLERY_KEY is missing or malformed.
        vault = vault or Vault.from_environment(gallery_loader.LAYOUT)
        if database is not None:
            verdicts = verdicts or PostgresVerdictStore(database)
            gallery_store = gallery_store or PostgresGalleryStore(database)
            adjudications = adjudications or PostgresAdjudicationStore(database)
        assert verdicts is not None
        engine = Engine(
            Gallery(gallery_loader.LAYOUT.face_dim, gallery_loader.LAYOUT.finger_dim),
            SearchSettings(settings.duplicate_fpir, settings.adjudicate_fpir, settings.first_stage_k),
        )
        pipeline = EnrolmentPipeline(
            engine,
            verdicts,
            vault,
            consumer,
            registry_user=settings.service_user("registry"),
            centre_user=settings.unit_user("pusat"),
            desk_user=settings.service_user("monitor"),
            adjudications=adjudications,
            clock=utcnow,
            batch_size=settings.batch_size,
            batch_wait=settings.batch_wait,
            search_attempts=settings.search_attempts,
        )
    if population is None and database is not None:
        population = PostgresPopulationStore(database)
    broker.include_router(handlers.build_router(store, settings, pipeline=pipeline, population=population))

    loaded = {"gallery": pipeline is None or gallery_store is None}

    async def open_gallery() -> None:
        if pipeline is not None and gallery_store is not None and vault is not None:
            pipeline.engine.gallery = await gallery_loader.load(gallery_store, vault)
        loaded["gallery"] = True

    async def gallery_ready() -> bool:
        return loaded["gallery"]

    async def drain() -> None:
        if pipeline is not None:
            await pipeline.drain()

    metrics.gauge_from(metrics.GALLERY_SIZE, lambda: pipeline.engine.gallery.size if pipeline else 0)
    return build_service_app(
        service="dedup",
        settings=settings,
        broker=broker,
        database=database,
        description="Flags NIKs claimed by two people and duplicate biometrics; runs adjudication.",
        extra_checks={"gallery": gallery_ready},
        on_opened=open_gallery,
        on_stopping=drain,
        details=lambda: {
            "gallery_size": pipeline.engine.gallery.size if pipeline else 0,
            "captures_decided": pipeline.decided if pipeline else 0,
        },
    )

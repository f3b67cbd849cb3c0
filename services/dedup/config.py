"""Dedup settings."""

from __future__ import annotations

from pydantic import Field

from shared.settings import ServiceSettings


class Settings(ServiceSettings):
    health_port: int = 8082
    duplicate_fpir: float = Field(
        default=1e-4, gt=0, lt=1, description="Target false-positive identification rate of DUPLICATE_RECORD."
    )
    adjudicate_fpir: float = Field(
        default=1e-2, gt=0, lt=1, description="Target rate of strangers sent to adjudication (grey zone)."
    )
    first_stage_k: int = Field(
        default=100, ge=1, le=10_000, description="First-stage candidates per modality."
    )
    batch_size: int = Field(default=128, ge=1, le=1000, description="Captures searched together.")
    batch_wait: float = Field(default=0.05, ge=0, le=5, description="Seconds a batch waits to fill.")
    search_threads: int = Field(
        default=1,
        ge=1,
        le=256,
        description="Threads of the first-stage scan. One by default: on a machine shared with the broker, "
        "the database and the registry, a second thread spinning for a busy core made the scan slower.",
    )
    search_attempts: int = Field(
        default=3,
        ge=1,
        le=9,
        description="Deliveries of a capture whose search fails before it is SEARCH_FAILURE_AT_CENTRAL "
        "(below the queue's delivery limit, so the failure is a verdict, not a dead letter).",
    )

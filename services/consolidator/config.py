"""Consolidator settings."""

from __future__ import annotations

from datetime import time
from pathlib import Path

from pydantic import Field

from shared.settings import ServiceSettings

from .domain.runs import RunPolicy
from .stream_wire import stream_url


class Settings(ServiceSettings):
    health_port: int = 8083
    api_host: str = Field(default="127.0.0.1", description="Where the person lookup API listens.")
    api_port: int = Field(default=8093, ge=0, le=65535, description="0 = no lookup API.")
    max_snapshot_loss: float = Field(
        default=0.20,
        ge=0,
        le=1,
        description="A complete snapshot that lost more than this share of the UPT's inmates is held.",
    )
    transfer_window_days: int = Field(
        default=7, ge=0, le=90, description="Days a departed inmate may take to appear in another UPT."
    )
    keep_days: int = Field(default=30, ge=1, le=3650, description="Days back a run may consolidate.")
    consolidation_schedule: str = Field(
        default="15:00",
        pattern=r"^(|([01]\d|2[0-3]):[0-5]\d)$",
        description="The centre's daily run, HH:MM WIB; empty = no scheduled run (commands only).",
    )
    detention_rules: Path | None = Field(
        default=None, description="Detention limits file; the packaged data/detention_limits.yaml if unset."
    )
    feed_stream_port: int = Field(
        default=5552,
        ge=0,
        le=65535,
        description="The broker's stream-protocol port (rabbitmq_stream plugin), on the host of AMQP_URL, "
        "for publishing the central feed; 0 = publish it over AMQP 0-9-1 (slower to replay).",
    )
    run_check_interval: float = Field(
        default=30.0, gt=0, description="Seconds between checks for due or unfinished runs."
    )

    def feed_stream_url(self) -> str | None:
        return stream_url(self.amqp_url, self.feed_stream_port) if self.feed_stream_port else None

    def policy(self) -> RunPolicy:
        schedule = time.fromisoformat(self.consolidation_schedule) if self.consolidation_schedule else None
        return RunPolicy(self.max_snapshot_loss, self.transfer_window_days, self.keep_days, schedule)

"""Registry settings."""

from __future__ import annotations

from pydantic import Field

from shared.settings import ServiceSettings


class Settings(ServiceSettings):
    health_port: int = 8081
    packet_retry_limit: int = Field(
        default=5,
        ge=1,
        le=9,
        description="Deliveries of a packet hit by faults at the centre before it fails "
        "(below the queue's delivery limit of 10, so that the failure is answered, not only dead-lettered).",
    )

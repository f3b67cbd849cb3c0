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
    sdp_burst_records: int = Field(
        default=10_000,
        ge=1,
        description="Records one UPT may send at once, per registry process, before its further parts are "
        "answered SENDER_OVER_RATE (unread, to be resent after a pause): days of the largest UPT, a few "
        "seconds of the registry's time.",
    )
    sdp_records_per_second: float = Field(
        default=100.0,
        gt=0,
        description="Records added back to each UPT's allowance every second (8.6 million a day).",
    )

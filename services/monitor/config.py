"""Monitor settings."""

from __future__ import annotations

from pydantic import Field

from shared.settings import ServiceSettings


class Settings(ServiceSettings):
    web_host: str = "127.0.0.1"
    web_port: int = Field(default=8080, ge=0, le=65535, description="0 = any free port.")
    session_hours: float = Field(default=12.0, gt=0)
    secure_cookies: bool = Field(
        default=False, description="Set behind HTTPS so cookies never travel in clear."
    )
    sse_heartbeat_seconds: float = 15.0
    stuck_after_hours: float = Field(
        default=24.0,
        gt=0,
        description="A capture waiting longer than this in critical time I or II is listed as stuck.",
    )
    queue_poll_seconds: float = Field(default=15.0, gt=0, description="How often the queues are sampled.")
    rabbitmq_api_url: str | None = Field(
        default=None,
        description="The broker's management API (e.g. http://127.0.0.1:15672), read with the monitor's own broker "
        "user (tag `management`): each queue's messages in delivery (unacknowledged) are counted beside the ready "
        "ones. Unset or not answering: the queues are sampled over AMQP, ready messages alone.",
    )
    queue_backlog: int = Field(
        default=10_000, ge=0, description="A queue holding more than this is a backlog."
    )
    quiet_after_minutes: float = Field(
        default=10.0,
        gt=0,
        description="A service is quiet when work waits for it and it said nothing this long.",
    )
    metrics_targets: dict[str, str] = Field(
        default_factory=dict,
        description='Each service\'s Prometheus endpoint, e.g. {"registry": "http://127.0.0.1:8081/metrics"} '
        "(JSON in METRICS_TARGETS): the operations view shows their key figures. Empty: none shown.",
    )
    alert_seconds: float = Field(
        default=30.0, gt=0, description="How often the alerts' conditions are checked."
    )
    login_max_failures: int = Field(
        default=5,
        ge=1,
        description="Failed logins (per username or address) within 15 minutes before a 15-minute wait.",
    )
    allowed_origins: list[str] = Field(
        default_factory=list,
        description="Origins, besides the one a request names in its Host header, from which a browser may post "
        "(e.g. https://monitor.example.go.id behind a TLS proxy).",
    )

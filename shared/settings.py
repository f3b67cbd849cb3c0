"""Settings every service shares, read from the environment (defaults point at the local servers)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class ServiceSettings(BaseSettings):
    """Connection and runtime knobs; each service subclasses this with its own."""

    model_config = SettingsConfigDict(env_file=None, extra="ignore", frozen=True)

    amqp_url: str = Field(
        default="amqp://guest:guest@127.0.0.1:5672/simpul",
        description="Broker URL, with this service's own user and the suite's vhost.",
    )
    database_url: str = Field(default="postgresql://postgres@127.0.0.1:5432/simpul")
    broker_namespace: str = Field(
        default="",
        description="Prefix of every broker user name of this installation (lets test runs share a broker).",
    )
    prefetch_count: int = Field(default=64, ge=1, le=1000)
    graceful_timeout: float = Field(default=20.0, gt=0, description="Seconds in-flight messages may finish.")
    retry_backoff_max: float = Field(
        default=30.0, ge=0, description="Longest wait before a failed message goes back to its queue."
    )
    health_host: str = "127.0.0.1"
    health_port: int = Field(default=0, ge=0, le=65535, description="0 = no health endpoint.")
    log_level: str = "INFO"
    log_json: bool | None = Field(default=None, description="None = JSON unless stderr is a terminal.")
    units_dir: Path = Field(default=PROJECT_ROOT / "deploy" / "units")

    def service_user(self, service: str) -> str:
        return f"{self.broker_namespace}svc-{service}"

    def unit_user(self, unit_id: str) -> str:
        return f"{self.broker_namespace}{unit_id}"

    def unit_of_user(self, user_id: str) -> str | None:
        """The unit id behind a broker user of this installation, or None for a foreign user."""
        if not user_id.startswith(self.broker_namespace):
            return None
        return user_id[len(self.broker_namespace) :] or None


def redact_url(url: str) -> str:
    """The URL without its password, for logs and error messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))

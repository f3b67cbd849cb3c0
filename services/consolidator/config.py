"""Consolidator settings."""

from __future__ import annotations

from shared.settings import ServiceSettings


class Settings(ServiceSettings):
    health_port: int = 8083

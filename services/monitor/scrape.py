"""Reads every service's /metrics now and then (the targets are configured: METRICS_TARGETS), for the
operations view. A service that does not answer is shown as such; nothing else depends on it."""

from __future__ import annotations

import asyncio
import json
import logging
import urllib.request
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime

from shared.runtime import Clock
from shared.tasks import Background, every

from .domain.metrics import ServiceFigures, ready_url, summarise, unreachable

log = logging.getLogger("simpul.monitor.scrape")
TIMEOUT = 3.0
LIMIT = 4 * 1024 * 1024  # a service's metrics are a few kilobytes


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=TIMEOUT) as response:  # noqa: S310 (operator-configured http URL)
        return str(response.read(LIMIT).decode("utf-8"))


def _ready(url: str) -> bool:
    """Whether the service says it is ready (200 with `"ready": true`; it answers 503 while it is not)."""
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT) as response:  # noqa: S310 (operator-configured)
            return bool(json.loads(response.read(65_536)).get("ready"))
    except (OSError, ValueError):
        return False


class MetricsScraper:
    def __init__(self, targets: Mapping[str, str], clock: Clock, *, interval: float = 15.0) -> None:
        self.targets = dict(targets)
        self.clock = clock
        self.interval = interval
        self.figures: list[ServiceFigures] = []
        self.scraped_at: datetime | None = None
        self._task = Background("monitor-metrics-scrape", self._scrape_for_ever, retry_after=interval)

    async def scrape(self) -> None:
        async def one(service: str, url: str) -> ServiceFigures:
            try:
                figures = summarise(service, await asyncio.to_thread(_get, url))
            except (OSError, ValueError, UnicodeDecodeError) as e:
                return unreachable(service, f"{type(e).__name__}: {e}")
            return replace(figures, ready=await asyncio.to_thread(_ready, ready_url(url)))

        found = await asyncio.gather(*(one(s, u) for s, u in sorted(self.targets.items())))
        self.figures, self.scraped_at = list(found), self.clock()

    async def _scrape_for_ever(self) -> None:
        await every(self.interval, self.scrape)

    def start(self) -> None:
        if self.targets:
            self._task.start()

    async def stop(self) -> None:
        await self._task.stop()

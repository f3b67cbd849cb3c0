"""Reads every service's /metrics now and then (the targets are configured: METRICS_TARGETS), for the
operations view. A service that does not answer is shown as such; nothing else depends on it."""

from __future__ import annotations

import asyncio
import logging
import urllib.request
from collections.abc import Mapping
from datetime import datetime

from shared.runtime import Clock
from shared.tasks import Background, every

from .domain.metrics import ServiceFigures, summarise, unreachable

log = logging.getLogger("simpul.monitor.scrape")
TIMEOUT = 3.0
LIMIT = 4 * 1024 * 1024  # a service's metrics are a few kilobytes


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=TIMEOUT) as response:  # noqa: S310 (operator-configured http URL)
        return str(response.read(LIMIT).decode("utf-8"))


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
                return summarise(service, await asyncio.to_thread(_get, url))
            except (OSError, ValueError, UnicodeDecodeError) as e:
                return unreachable(service, f"{type(e).__name__}: {e}")

        found = await asyncio.gather(*(one(s, u) for s, u in sorted(self.targets.items())))
        self.figures, self.scraped_at = list(found), self.clock()

    async def _scrape_for_ever(self) -> None:
        await every(self.interval, self.scrape)

    def start(self) -> None:
        if self.targets:
            self._task.start()

    async def stop(self) -> None:
        await self._task.stop()

"""Fans events out to the browsers connected over SSE, each seeing only its own scope."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger("simpul.monitor.hub")


@dataclass(eq=False)
class Subscription:
    sees: Callable[[str, str | None], bool]  # (unit_id, kanwil_id) -> visible
    queue: asyncio.Queue[dict[str, Any]] = field(default_factory=lambda: asyncio.Queue(maxsize=1_000))
    dropped: bool = False


class Hub:
    """A slow browser is dropped rather than allowed to hold memory; it reconnects and reloads its view."""

    def __init__(self) -> None:
        self._subscriptions: set[Subscription] = set()

    def subscribe(self, sees: Callable[[str, str | None], bool]) -> Subscription:
        sub = Subscription(sees)
        self._subscriptions.add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        self._subscriptions.discard(sub)

    @property
    def clients(self) -> int:
        return len(self._subscriptions)

    def publish(
        self, event: dict[str, Any], *, unit_id: str | None = None, kanwil_id: str | None = None
    ) -> None:
        """Events about a unit go to those who see the unit; events without one go to everybody."""
        for sub in list(self._subscriptions):
            if unit_id is not None and not sub.sees(unit_id, kanwil_id):
                continue
            try:
                sub.queue.put_nowait(event)
            except asyncio.QueueFull:
                sub.dropped = True
                self._subscriptions.discard(sub)
                log.warning("dropped a slow live-view client")

"""Hands live events to the browsers connected to this instance over SSE, each only what its login may see."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from .domain.live import LiveEvent, visible
from .domain.scope import Scope

log = logging.getLogger("simpul.monitor.hub")


@dataclass(eq=False)
class Subscription:
    scope: Scope
    queue: asyncio.Queue[LiveEvent] = field(default_factory=lambda: asyncio.Queue(maxsize=1_000))
    dropped: bool = False


class Hub:
    """A slow browser is dropped rather than allowed to hold memory: it reconnects with the id of the last event
    it got, and the page resumes from the log (nothing is lost)."""

    def __init__(self) -> None:
        self._subscriptions: set[Subscription] = set()

    def subscribe(self, scope: Scope) -> Subscription:
        sub = Subscription(scope)
        self._subscriptions.add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        self._subscriptions.discard(sub)

    @property
    def clients(self) -> int:
        return len(self._subscriptions)

    def publish(self, event: LiveEvent) -> None:
        for sub in list(self._subscriptions):
            if not visible(event, sub.scope):
                continue
            try:
                sub.queue.put_nowait(event)
            except asyncio.QueueFull:
                sub.dropped = True
                self._subscriptions.discard(sub)
                log.warning("dropped a slow live-view client")

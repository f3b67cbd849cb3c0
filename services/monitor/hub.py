"""Hands live events to the browsers connected to this instance over SSE, each only what its login may see."""

from __future__ import annotations

import asyncio
import json
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

    FRAMES_KEPT = 4_096

    def __init__(self) -> None:
        self._subscriptions: set[Subscription] = set()
        self._frames: dict[int, str] = {}  # the latest events' frames, by their id in this instance's log

    def frame(self, event: LiveEvent) -> str:
        """The event as an SSE frame, written once per event, not once per page that may see it."""
        text = self._frames.get(event.id) if event.id else None
        if text is None:
            text = f"id: {event.id}\nevent: {event.kind}\ndata: {json.dumps(event.data())}\n\n"
            if event.id:
                self._frames[event.id] = text
                if len(self._frames) > self.FRAMES_KEPT:
                    del self._frames[next(iter(self._frames))]  # the oldest
        return text

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

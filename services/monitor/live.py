"""Live updates: one follower of the event log per instance, and each browser's SSE stream resumed by id."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

from shared.tasks import Background

from .domain.live import MAX_REPLAY, LiveEvent, decide_resume, visible
from .domain.scope import Scope
from .hub import Hub
from .journal import Follower, LiveLog

log = logging.getLogger("simpul.monitor.live")
BATCH = 1_000


class LiveFeed:
    """Follows the live-event log (woken by the database's notification, polling as a fallback) and hands every
    new event, once and in order, to this instance's hub. Every instance follows the same log."""

    def __init__(
        self, log_: LiveLog, hub: Hub, *, poll_seconds: float = 2.0, keep_hours: float = 48.0
    ) -> None:
        self.log = log_
        self.hub = hub
        self.poll_seconds = poll_seconds
        self.keep_hours = keep_hours
        self.last = 0
        self._wake = asyncio.Event()
        self._task = Background("monitor-live-feed", self._follow, retry_after=1.0)

    def wake(self) -> None:
        self._wake.set()

    async def start(self) -> None:
        self.last = (await self.log.bounds())[1]  # pages read their view after this: they need nothing older
        self._task.start()

    async def stop(self) -> None:
        await self._task.stop()

    async def catch_up(self, follower: Follower | None = None) -> int:
        """Publish what the log holds after the last event published; how many."""
        done = 0
        reader = follower or self.log
        while batch := await reader.since(self.last, BATCH):
            for event in batch:
                self.hub.publish(event)
                self.last = event.id
            done += len(batch)
            if len(batch) < BATCH:
                break
        return done

    async def _follow(self) -> None:
        loop = asyncio.get_running_loop()
        pruned = loop.time()
        async with self.log.listening(self.wake) as follower:
            while True:
                self._wake.clear()
                await self.catch_up(follower)
                if loop.time() - pruned > 600:
                    await self.log.prune(self.keep_hours)
                    pruned = loop.time()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.poll_seconds):
                        await self._wake.wait()


async def stream(
    log_: LiveLog, hub: Hub, scope: Scope, last_seen: int | None, *, heartbeat: float, stopping: asyncio.Event,
    still_allowed: Callable[[], Awaitable[bool]] | None = None,
) -> AsyncIterator[str]:  # fmt: skip
    """One browser's events: what followed `last_seen` (from the log), then the live ones, each once, in order;
    a `reload` event when what it missed can no longer be replayed. Every `heartbeat` seconds the session is
    checked again (`still_allowed`): a login that logged out, expired or was disabled gets a `logout` event and
    the stream ends."""
    sub = hub.subscribe(scope)  # before reading the log: nothing committed in between is missed
    loop = asyncio.get_running_loop()
    checked = loop.time()
    try:
        oldest, newest = await log_.bounds()
        plan = decide_resume(last_seen, oldest, newest)
        sent = plan.after
        yield "retry: 2000\n\n"
        if plan.reload:
            yield f"id: {plan.after}\nevent: reload\ndata: {{}}\n\n"
        else:
            for event in await log_.since(plan.after, MAX_REPLAY):
                if visible(event, scope):
                    yield hub.frame(event)
                sent = event.id
        while not stopping.is_set() and not sub.dropped:
            if still_allowed is not None and loop.time() - checked >= heartbeat:
                checked = loop.time()
                if not await still_allowed():
                    yield f"id: {sent}\nevent: logout\ndata: {{}}\n\n"
                    return
            waiting: list[LiveEvent] = []
            if sub.queue.empty():
                try:
                    async with asyncio.timeout(heartbeat):
                        waiting.append(await sub.queue.get())
                except TimeoutError:
                    yield ": heartbeat\n\n"
                    continue
            while not sub.queue.empty():  # what waits goes out in one write, in order
                waiting.append(sub.queue.get_nowait())
            frames = []
            for event in waiting:
                if event.id > sent:  # the hub may repeat what the log replay already sent
                    sent = event.id
                    frames.append(hub.frame(event))
            if frames:
                yield "".join(frames)
    finally:
        hub.unsubscribe(sub)

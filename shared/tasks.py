"""A service's background work: one named task that outlives its failures and stops when asked."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger("simpul.tasks")


class Background:
    """`work` runs as one task until it returns or the task is stopped; when it raises, the failure is logged
    and it runs again after `retry_after` seconds."""

    def __init__(self, name: str, work: Callable[[], Awaitable[None]], *, retry_after: float) -> None:
        self.name = name
        self.work = work
        self.retry_after = retry_after
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._keep_going(), name=self.name)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _keep_going(self) -> None:
        while True:
            try:
                await self.work()
                return
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("background work failed; retrying", extra={"task": self.name}, exc_info=True)
                await asyncio.sleep(self.retry_after)


async def every(seconds: float, step: Callable[[], Awaitable[object]]) -> None:
    """`step`, then a pause of `seconds`, for ever (a failing step ends it: run it in a Background)."""
    while True:
        await step()
        await asyncio.sleep(seconds)

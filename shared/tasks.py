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

    async def stop(self, timeout: float = 5.0) -> None:
        """Cancel it and wait for it, at most `timeout` seconds: a stop never hangs the service's shutdown (what
        did not end in time is logged, and left to the process's exit)."""
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        done, _ = await asyncio.wait({task}, timeout=timeout)
        if not done:
            log.warning("background work did not stop in time", extra={"task": self.name, "seconds": timeout})
            return
        with contextlib.suppress(asyncio.CancelledError):
            await task

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

"""Executes consolidation runs in the background: commanded, scheduled, or left unfinished by a crash."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from .usecases import Consolidator

log = logging.getLogger("simpul.consolidator.runs")


class RunWorker:
    """One loop per process: wakes on a command, on the schedule's tick, and at start (unfinished runs)."""

    def __init__(self, consolidator: Consolidator, interval: float) -> None:
        self.consolidator = consolidator
        self.interval = interval
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.failures = 0
        self._pruned = -3600.0

    def wake(self) -> None:
        self._wake.set()

    async def pass_once(self) -> int:
        """Start what is due and finish what is unfinished; returns the runs finished by this pass."""
        await self.consolidator.scheduled()
        finished = 0
        for run_id in await self.consolidator.runs.unfinished():
            if await self.consolidator.execute(run_id):
                finished += 1
        while await self.consolidator.runs.feed_pending():
            pass  # the central feed of what the runs changed, in batches (each its own transaction)
        now = time.monotonic()
        if now - self._pruned > 3600:
            await self.consolidator.runs.prune(self.consolidator.policy.keep_days)
            self._pruned = now
        return finished

    async def _loop(self) -> None:
        while True:
            # Cleared before the pass, not after: a command that arrives during a pass (the feed of a large run
            # takes minutes) starts the next one at once rather than at the next tick.
            self._wake.clear()
            try:
                await self.pass_once()
                self.failures = 0
            except asyncio.CancelledError:
                raise
            except Exception:
                self.failures += 1
                log.exception("consolidation pass failed; unfinished runs resume at the next pass")
            delay = self.interval if not self.failures else min(self.interval, 2.0**self.failures)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._wake.wait()

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="consolidation-runs")

    async def stop(self) -> None:
        """A run in the middle of a step is abandoned: its transaction rolls back and the step reruns later."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

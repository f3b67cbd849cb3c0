"""Micro-batches of deliveries: a handler hands a message over and returns at once (it stays unacked); the
batch is processed when it is full or after a short wait, and each message is then acked or requeued."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

log = logging.getLogger("simpul.dedup.batching")
T = TypeVar("T")


@dataclass
class Batcher(Generic[T]):
    process: Callable[[list[T]], Awaitable[None]]  # acks or requeues every item itself
    max_size: int = 128
    max_wait: float = 0.05

    def __post_init__(self) -> None:
        self._pending: list[T] = []
        self._lock = asyncio.Lock()  # one batch at a time: the gallery changes as batches are decided
        self._timer: asyncio.Task[None] | None = None
        self._running: set[asyncio.Task[None]] = set()
        self.batches = 0

    @property
    def lock(self) -> asyncio.Lock:
        """Held while a batch is decided: whoever else changes the gallery takes it too."""
        return self._lock

    async def put(self, item: T) -> None:
        self._pending.append(item)
        if len(self._pending) >= self.max_size:
            self._start(self._take())
        elif self._timer is None:
            self._timer = asyncio.create_task(self._after_wait())

    def _take(self) -> list[T]:
        batch, self._pending = self._pending, []
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        return batch

    def _start(self, batch: list[T]) -> None:
        task = asyncio.create_task(self._run(batch))
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    async def _after_wait(self) -> None:
        await asyncio.sleep(self.max_wait)
        self._timer = None
        if self._pending:
            self._start(self._take())

    async def _run(self, batch: list[T]) -> None:
        async with self._lock:
            try:
                await self.process(batch)
                self.batches += 1
            except Exception:  # process() answers each message; this is only a last resort log
                log.exception("batch failed", extra={"size": len(batch)})

    async def drain(self) -> None:
        """Process what is waiting and wait for every batch in flight (graceful stop)."""
        if self._pending:
            self._start(self._take())
        while self._running:
            with contextlib.suppress(Exception):
                await asyncio.gather(*list(self._running))

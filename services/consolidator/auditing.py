"""The lookup audit written as a group commit: every request waits until its own entry is committed, and the
entries of requests that arrive meanwhile are committed together (one statement, one commit), so the audit's
cost per request falls as the load rises instead of becoming the API's limit."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence

from .lookup import AuditEntry

Append = Callable[[Sequence[AuditEntry]], Awaitable[None]]


class AuditWriter:
    def __init__(self, append: Append, *, max_batch: int = 500) -> None:
        self.append = append
        self.max_batch = max_batch
        self._pending: list[tuple[AuditEntry, asyncio.Future[None]]] = []
        self._writing: asyncio.Task[None] | None = None

    async def write(self, entry: AuditEntry) -> None:
        """Returns once the entry is committed; raises what the commit raised (then nothing is answered)."""
        done = asyncio.get_running_loop().create_future()
        self._pending.append((entry, done))
        if self._writing is None or self._writing.done():
            self._writing = asyncio.create_task(self._drain(), name="lookup-audit")
        await done

    async def _drain(self) -> None:
        while self._pending:
            batch, self._pending = self._pending[: self.max_batch], self._pending[self.max_batch :]
            try:
                await self.append([entry for entry, _ in batch])
            except BaseException as exc:  # each waiting request fails with it: none is answered unaudited
                failed = exc if isinstance(exc, Exception) else RuntimeError("the audit writer stopped")
                for _, done in batch:
                    if not done.done():
                        done.set_exception(failed)
                if not isinstance(exc, Exception):
                    raise
                continue
            for _, done in batch:
                if not done.done():
                    done.set_result(None)

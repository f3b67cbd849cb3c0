"""An HTTP server (uvicorn) inside a service's FastStream process, started and stopped with it."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator

import uvicorn
from starlette.applications import Starlette


class _EmbeddedServer(uvicorn.Server):
    """uvicorn inside the FastStream process: FastStream owns the signals, so uvicorn must not take them."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class WebServer:
    def __init__(self, app: Starlette, host: str, port: int, stopping: asyncio.Event) -> None:
        config = uvicorn.Config(
            app,
            host=host,
            port=port,
            log_config=None,
            lifespan="off",
            timeout_graceful_shutdown=3,
            access_log=False,
        )
        self.server = _EmbeddedServer(config)
        self.stopping = stopping
        self._task: asyncio.Task[None] | None = None

    @property
    def port(self) -> int:
        servers = getattr(self.server, "servers", [])
        return int(servers[0].sockets[0].getsockname()[1]) if servers else 0

    async def start(self) -> None:
        self._task = asyncio.create_task(self.server.serve(), name=f"web-{self.server.config.port}")
        while not self.server.started:
            if self._task.done():
                self._task.result()  # raises the reason the server could not start
            await asyncio.sleep(0.05)

    async def stop(self) -> None:
        self.stopping.set()
        self.server.should_exit = True
        if self._task is not None:
            await self._task

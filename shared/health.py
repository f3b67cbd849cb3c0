"""Liveness, readiness and metrics over HTTP: the broker and the database must both answer for a service to be
ready; /metrics is for Prometheus."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from shared import metrics

log = logging.getLogger("simpul.health")

Check = Callable[[], Awaitable[bool]]


async def run_checks(checks: Mapping[str, Check], timeout: float = 3.0) -> dict[str, Any]:
    """Each check answers within the timeout or counts as failed."""
    results: dict[str, bool] = {}
    for name, check in checks.items():
        try:
            results[name] = bool(await asyncio.wait_for(check(), timeout=timeout))
        except Exception:
            results[name] = False
    return {"ready": all(results.values()), "checks": results}


class HealthServer:
    """GET /health/live and /health/ready (JSON), /metrics (Prometheus); small enough to need no web framework."""

    def __init__(
        self,
        host: str,
        port: int,
        checks: Mapping[str, Check],
        details: Callable[[], Mapping[str, Any]] | None = None,
    ) -> None:
        self.host, self.port = host, port
        self.checks = checks
        self.details = details
        self._server: asyncio.AbstractServer | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        log.info("health endpoint listening", extra={"url": f"http://{self.host}:{self.port}/health/ready"})

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await asyncio.wait_for(reader.readline(), timeout=5)
            while (await asyncio.wait_for(reader.readline(), timeout=5)) not in (b"\r\n", b"\n", b""):
                pass
            parts = request.decode("latin-1").split()
            path = parts[1] if len(parts) >= 2 else ""
            if path == "/metrics":
                payload, content_type = metrics.exposition()
                writer.write(
                    f"HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\n"
                    f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n".encode()
                    + payload
                )
                await writer.drain()
                return
            if path == "/health/live":
                status, body = 200, dict[str, Any]({"live": True})
            elif path == "/health/ready":
                body = await run_checks(self.checks)
                if self.details is not None:
                    body |= dict(self.details())
                status = 200 if body["ready"] else 503
            else:
                status, body = 404, {"error": "not found"}
            payload = json.dumps(body).encode()
            reason = {200: "OK", 404: "Not Found", 503: "Service Unavailable"}[status]
            writer.write(
                f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n".encode()
                + payload
            )
            await writer.drain()
        except (TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()


def probe(url: str, timeout: float = 3.0) -> bool:
    """Used by container health checks: exit status 0 when the service is ready."""
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 (local URL from config)
            return bool(response.status == 200)
    except OSError:
        return False


if __name__ == "__main__":
    import sys

    sys.exit(0 if probe(sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:8081/health/ready") else 1)

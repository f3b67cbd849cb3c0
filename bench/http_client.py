"""A minimal HTTP/1.1 keep-alive client for load benches: GET with Basic credentials, one request at a time per
connection, the answer read by its Content-Length. It spends a few tens of microseconds of CPU per request,
so that on a small machine the bench measures the server rather than its own client."""

from __future__ import annotations

import asyncio
import base64
from urllib.parse import urlsplit


class KeepAlive:
    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str, auth: str
    ) -> None:
        self.reader, self.writer = reader, writer
        self._head = f"Host: {host}\r\nAuthorization: Basic {auth}\r\nConnection: keep-alive\r\n\r\n".encode()

    @classmethod
    async def open(cls, base_url: str, username: str, password: str) -> KeepAlive:
        url = urlsplit(base_url)
        if url.scheme != "http" or url.hostname is None:
            raise ValueError(f"{base_url}: plain http with a host only")
        reader, writer = await asyncio.open_connection(url.hostname, url.port or 80)
        auth = base64.b64encode(f"{username}:{password}".encode()).decode()
        return cls(reader, writer, url.netloc, auth)

    async def get(self, target: str) -> tuple[int, bytes]:
        """(status, body) of GET `target` (a path with its query, already encoded)."""
        self.writer.write(b"GET " + target.encode() + b" HTTP/1.1\r\n" + self._head)
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status = int(lines[0].split(b" ", 2)[1])
        length = 0
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
            elif name.strip().lower() == b"transfer-encoding":
                raise ValueError("chunked answers are not read by this client")
        return status, await self.reader.readexactly(length)

    async def close(self) -> None:
        self.writer.close()
        await self.writer.wait_closed()

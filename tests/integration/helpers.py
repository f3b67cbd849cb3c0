"""Reading queues and waiting for conditions on the real broker and database."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import aio_pika
import asyncpg
from aio_pika.abc import AbstractIncomingMessage
from faststream import FastStream, TestApp

from deploy import credentials as creds
from deploy.sandbox import Sandbox
from shared.contracts import Message


@asynccontextmanager
async def running(app: FastStream) -> AsyncIterator[FastStream]:
    """The service app on the real broker and database, in this process."""
    async with TestApp(app):
        yield app


async def take(url: str, queue: str, *, count: int, timeout: float = 15) -> list[AbstractIncomingMessage]:
    """Take (and ack) up to `count` messages from a queue, waiting up to `timeout` for them."""
    got: list[AbstractIncomingMessage] = []
    connection = await aio_pika.connect(url)
    try:
        channel = await connection.channel()
        q = await channel.get_queue(queue, ensure=False)
        deadline = time.monotonic() + timeout
        while len(got) < count and time.monotonic() < deadline:
            message = await q.get(no_ack=True, fail=False)
            if message is None:
                await asyncio.sleep(0.05)
            else:
                got.append(message)
    finally:
        await connection.close()
    return got


async def queue_depth(url: str, queue: str) -> int:
    connection = await aio_pika.connect(url)
    try:
        channel = await connection.channel()
        declared = await channel.declare_queue(queue, passive=True)
        return int(declared.declaration_result.message_count or 0)
    finally:
        await connection.close()


async def purge(url: str, *queues: str) -> None:
    connection = await aio_pika.connect(url)
    try:
        channel = await connection.channel()
        for name in queues:
            await (await channel.get_queue(name, ensure=False)).purge()
    finally:
        await connection.close()


async def eventually(check: Callable[[], Awaitable[Any]], *, timeout: float = 20, what: str = "") -> Any:
    """Poll until `check` returns something truthy; fail with `what` if it never does."""
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or check}")
        await asyncio.sleep(0.1)


async def fetchval(dsn: str, query: str, *args: Any) -> Any:
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetchval(query, *args)
    finally:
        await conn.close()


def body(message: AbstractIncomingMessage) -> dict[str, Any]:
    decoded = json.loads(message.body)
    assert isinstance(decoded, dict)
    return decoded


def connections(inst: Sandbox, *columns: str) -> list[list[str]]:
    """The broker's connections in the sandbox's vhost, each as the named columns (rabbitmqctl list_connections)."""
    listed = subprocess.run(
        [*inst.servers.rabbitmqctl, "list_connections", "vhost", *columns, "--silent"],
        capture_output=True, text=True, check=True, timeout=60,
    ).stdout  # fmt: skip
    rows = [[*line.split("\t"), *[""] * len(columns)][: 1 + len(columns)] for line in listed.splitlines()]
    return [row[1:] for row in rows if row[0] == inst.vhost]


async def publish_as(inst: Sandbox, service: str, message: Message) -> None:
    """An event on `events` as a service would publish it: its broker user, persistent, confirmed."""
    cred = creds.find(inst.credentials, "service", service)
    connection = await aio_pika.connect(inst.url_for("service", service))
    try:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.get_exchange("events", ensure=False)
        await exchange.publish(
            aio_pika.Message(
                message.model_dump_json().encode(), message_id=message.message_id, user_id=cred.username,
                content_type="application/json", delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            ),
            routing_key=message.ROUTING_KEY,
        )  # fmt: skip
    finally:
        await connection.close()

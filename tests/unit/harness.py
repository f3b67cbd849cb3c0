"""Runs a service's app on FastStream's in-memory broker, with spies on what it sends outside the outbox."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from faststream import FastStream, TestApp
from faststream.rabbit import RabbitBroker, RabbitQueue, TestRabbitBroker
from faststream.rabbit.annotations import RabbitMessage

from shared import messaging
from shared.contracts import Message


@dataclass
class Captured:
    body: dict[str, Any] | bytes
    headers: dict[str, Any]
    routing_key: str

    def json(self) -> dict[str, Any]:
        assert isinstance(self.body, dict), f"not a JSON object: {self.body!r}"
        return self.body


@dataclass
class Spies:
    dead: list[Captured] = field(default_factory=list)
    receipts: list[Captured] = field(default_factory=list)
    events: list[Captured] = field(default_factory=list)
    forwarded: list[Captured] = field(default_factory=list)

    def dead_reasons(self) -> list[str]:
        return [d.headers["x-dead-reason"] for d in self.dead]


def _capture(into: list[Captured]) -> Any:
    async def spy(msg: RabbitMessage) -> None:
        raw = msg.raw_message
        try:
            body: dict[str, Any] | bytes = json.loads(raw.body)
        except ValueError:
            body = raw.body
        into.append(Captured(body, dict(raw.headers or {}), raw.routing_key or ""))

    return spy


def add_spies(broker: RabbitBroker) -> Spies:
    spies = Spies()
    broker.subscriber(RabbitQueue("spy.dead", routing_key="#"), messaging.DEAD, decoder=messaging.raw_body)(
        _capture(spies.dead)
    )
    broker.subscriber(RabbitQueue("spy.receipts", routing_key="upt-3273-1"), messaging.RECEIPTS)(
        _capture(spies.receipts)
    )
    broker.subscriber(RabbitQueue("spy.events", routing_key="status.#"), messaging.EVENTS)(
        _capture(spies.events)
    )
    broker.subscriber(RabbitQueue("spy.forwarded", routing_key="registry.accepted.ektp"), messaging.EVENTS)(
        _capture(spies.forwarded)
    )
    broker.subscriber(RabbitQueue("spy.dukcapil", routing_key="dukcapil-3273"), messaging.RECEIPTS)(
        _capture(spies.receipts)
    )
    return spies


async def publish_event(broker: RabbitBroker, event: Message, *, user: str) -> None:
    """An event as its producing service would send it (the in-memory broker trusts the given user id)."""
    await broker.publish(
        event.model_dump_json().encode(),
        exchange=messaging.EVENTS,
        routing_key=event.ROUTING_KEY,
        message_id=event.message_id,
        user_id=user,
        content_type="application/json",
    )


@asynccontextmanager
async def in_memory(app: FastStream) -> AsyncIterator[tuple[RabbitBroker, Spies]]:
    assert isinstance(app.broker, RabbitBroker)
    spies = add_spies(app.broker)
    async with TestRabbitBroker(app.broker) as broker, TestApp(app):
        yield broker, spies

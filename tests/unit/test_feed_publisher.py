"""Which way the outbox relay sends a row: the central feed over the stream protocol, the rest over AMQP, and
the feed over AMQP for a while when the stream port refuses."""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime
from typing import Any

import pytest

from services.consolidator import feed_publisher, stream_wire
from services.consolidator.feed_publisher import FeedPublisher
from services.consolidator.stream_wire import StreamError, parse_message
from shared.db import OutboxRow

WHEN = datetime(2026, 12, 2, 8, 0, tzinfo=UTC)


def row(routing_key: str = "central.record.changed", body: bytes = b'{"central_id": "C1"}') -> OutboxRow:
    return OutboxRow(1, "central-C1-v1", "events", routing_key, body, {"schema_version": 1}, WHEN)


class Wire:
    def __init__(self) -> None:
        self.sent: list[bytes] = []
        self.error: BaseException | None = None
        self.frame_max = 1_048_576
        self.closed = False

    async def declare_publisher(self) -> None:
        pass

    def publish(self, message: bytes) -> asyncio.Future[None]:
        self.sent.append(message)
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done

    async def close(self) -> None:
        self.closed = True


def publisher(monkeypatch: pytest.MonkeyPatch, connect: Any, clock: Any = time.monotonic) -> FeedPublisher:
    monkeypatch.setattr(stream_wire.StreamWire, "connect", connect)
    return FeedPublisher("rabbitmq-stream://u:p@127.0.0.1:5552/simpul", "ns-svc-consolidator", clock)


async def test_feed_rows_go_over_the_stream_and_the_rest_over_amqp(monkeypatch: pytest.MonkeyPatch) -> None:
    wire, amqp = Wire(), list[OutboxRow]()

    async def connect(url: str) -> Wire:
        return wire

    async def default(r: OutboxRow) -> None:
        amqp.append(r)

    feed = publisher(monkeypatch, connect)
    publish = feed.route(default)
    await publish(row())
    await publish(row("consolidation.run.finished"))
    assert [r.routing_key for r in amqp] == ["consolidation.run.finished"]
    assert [parse_message(m) for m in wire.sent] == [
        ("central-C1-v1", int(WHEN.timestamp() * 1000), row().body)
    ]
    assert feed.over_stream == 1
    await feed.close()
    assert wire.closed


async def test_a_record_larger_than_a_frame_goes_over_amqp(monkeypatch: pytest.MonkeyPatch) -> None:
    wire, amqp = Wire(), list[OutboxRow]()
    wire.frame_max = 1_000

    async def connect(url: str) -> Wire:
        return wire

    async def default(r: OutboxRow) -> None:
        amqp.append(r)

    publish = publisher(monkeypatch, connect).route(default)
    await publish(row(body=b"x" * 2_000))
    assert (wire.sent, len(amqp)) == ([], 1)


@pytest.mark.parametrize("refusal", [ConnectionRefusedError("refused"), StreamError("publish", 16)])
async def test_while_the_stream_port_refuses_the_feed_goes_over_amqp_and_it_is_tried_again_later(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, refusal: Exception
) -> None:
    attempts, wire, amqp = [], Wire(), list[OutboxRow]()
    now = [1_000.0]

    async def connect(url: str) -> Wire:
        attempts.append(now[0])
        if len(attempts) == 1:
            raise refusal
        return wire

    async def default(r: OutboxRow) -> None:
        amqp.append(r)

    publish = publisher(monkeypatch, connect, lambda: now[0]).route(default)
    with caplog.at_level(logging.WARNING, "simpul.consolidator"):
        await publish(row())
        await publish(row())  # within the minute: no new attempt
    assert (len(attempts), len(amqp), wire.sent) == (1, 2, [])
    assert "publishing over AMQP 0-9-1 for now" in caplog.text
    now[0] += feed_publisher.RETRY_STREAM_AFTER
    await publish(row())
    assert (len(attempts), len(amqp), len(wire.sent)) == (2, 2, 1)


async def test_a_broken_connection_is_replaced_on_the_next_row(monkeypatch: pytest.MonkeyPatch) -> None:
    wires = [Wire(), Wire()]

    async def connect(url: str) -> Wire:
        return wires.pop(0)

    async def default(r: OutboxRow) -> None:
        raise AssertionError("not over AMQP")

    first, second = wires
    publish = publisher(monkeypatch, connect).route(default)
    await publish(row())
    first.error = ConnectionResetError("gone")
    await publish(row())
    assert (len(first.sent), len(second.sent)) == (1, 1)

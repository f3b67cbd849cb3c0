"""Prometheus metrics: what a service counts as it consumes, and the /metrics endpoint of its health port."""

from __future__ import annotations

import asyncio

from prometheus_client import REGISTRY

from services.monitor.app import build_app
from services.monitor.config import Settings
from shared import messaging
from shared.health import HealthServer
from tests.fakes import FakeMonitorStore
from tests.unit.harness import in_memory

SETTINGS = Settings(amqp_url="amqp://svc-monitor:secret@localhost:5672/simpul", health_port=0, web_port=0)


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_consumed_messages_are_counted_by_outcome_and_timed() -> None:
    labels = {"service": "monitor", "queue": "monitor.dead"}
    ok, refused = (
        sample("simpul_messages_consumed_total", **labels, outcome="ok"),
        sample("simpul_messages_consumed_total", **labels, outcome="refused"),
    )
    timed = sample("simpul_message_processing_seconds_count", **labels)
    store = FakeMonitorStore()
    app = build_app(SETTINGS, store=store, unit_of_work=store.unit_of_work(), live_log=store)
    async with in_memory(app) as (broker, _):
        for n in range(3):
            await broker.publish(
                b"\x00", exchange=messaging.DEAD, routing_key="sdp.upt-3273-1.submission", message_id=f"d{n}",
                headers={"x-dead-reason": "MESSAGE_NOT_JSON"},
            )  # fmt: skip
    assert sample("simpul_messages_consumed_total", **labels, outcome="ok") == ok + 3
    assert sample("simpul_messages_consumed_total", **labels, outcome="refused") == refused
    assert sample("simpul_message_processing_seconds_count", **labels) == timed + 3


async def test_the_health_port_serves_the_metrics_in_prometheus_text_format() -> None:
    server = HealthServer("127.0.0.1", 0, {})
    await server.start()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        answer = await reader.read()
        writer.close()
    finally:
        await server.stop()
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK")
    assert b"Content-Type: text/plain; version=0.0.4" in head
    assert b"# TYPE simpul_messages_consumed_total counter" in body
    assert b"# TYPE simpul_message_lag_seconds histogram" in body

"""No queue of the suite grows without a consumer: each is consumed by a service or bounded for a reason."""

from __future__ import annotations

from faststream.rabbit import RabbitBroker
from faststream.rabbit.subscriber import RabbitSubscriber

from deploy import docs
from deploy.docs import SERVICES
from shared import messaging

# Queues no service consumes, why, and the bound that keeps them from growing forever.
UNCONSUMED = {
    "dead.letters": "kept for the operator's replay tool (monitor.dead counts every dead letter)",
    "central.records": "a stream: centre systems read it from any offset with services.consolidator.feed",
}


def consumed_queues() -> dict[str, str]:
    """Queue name -> the service that consumes it, read from each service's app (nothing connects)."""
    found: dict[str, str] = {}
    for service in SERVICES:
        broker = docs.build(service).broker
        assert isinstance(broker, RabbitBroker)
        for subscriber in broker.subscribers:
            assert isinstance(subscriber, RabbitSubscriber)
            found[subscriber.queue.name] = service
    return found


def test_every_declared_queue_is_consumed_by_a_service_or_bounded_with_a_reason() -> None:
    consumed = consumed_queues()
    for spec in messaging.QUEUES:
        if spec.name in UNCONSUMED:
            assert spec.name not in consumed
            args = spec.arguments()
            assert "x-max-length" in args or "x-max-age" in args, f"{spec.name} has no bound"
        else:
            assert spec.name in consumed, f"nobody consumes {spec.name}"


def test_every_consumed_queue_is_declared_by_provisioning() -> None:
    declared = {q.name for q in messaging.QUEUES}
    assert set(consumed_queues()) <= declared


def test_receipt_queues_are_bounded_since_their_readers_are_the_senders() -> None:
    args = messaging.receipts_queue("upt-3273-1").arguments()
    assert args["x-max-length"] == 100_000
    assert args["x-overflow"] == "reject-publish"

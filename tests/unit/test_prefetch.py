"""Queues of whole parts are consumed a few messages at a time: a process's memory is bounded while its database
is away (each delivery is a task holding its decoded part until the handler ends)."""

from __future__ import annotations

import pytest
from faststream.rabbit.subscriber import RabbitSubscriber

from deploy.docs import build
from shared import messaging
from shared.settings import ServiceSettings

PARTS = {"registry.sdp", "registry.ektp", "dedup.sdp", "consolidator.sdp"}


@pytest.mark.parametrize("service", ["registry", "dedup", "consolidator"])
def test_each_queue_of_parts_is_consumed_with_its_own_small_prefetch(service: str) -> None:
    broker = build(service).broker
    assert broker is not None
    subscribers = {s.queue.name: s for s in broker.subscribers if isinstance(s, RabbitSubscriber)}
    mine = PARTS & subscribers.keys()
    assert mine  # every one of these services consumes parts
    for name in mine:
        channel = subscribers[name].channel
        assert channel is not None, name
        assert channel.prefetch_count == messaging.PARTS_IN_FLIGHT
        assert channel.on_return_raises
    others = [s.channel for n, s in subscribers.items() if n not in PARTS and n != "dedup.ektp"]
    assert all(c is None for c in others)  # the broker's default channel (dedup.ektp batches: its own)


def test_parts_in_flight_is_well_below_the_default_prefetch() -> None:
    assert 1 < messaging.PARTS_IN_FLIGHT <= ServiceSettings.model_fields["prefetch_count"].default // 4

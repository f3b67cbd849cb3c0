"""Samples the depth and consumers of every queue of the topology (a passive declare needs no permission on the
queue and changes nothing), for the operations view and its alerts."""

from __future__ import annotations

import contextlib
import logging
from datetime import datetime

import aio_pika
import aiormq

from shared import messaging
from shared.runtime import Clock
from shared.tasks import Background, every

from .domain.operations import QueueSample

log = logging.getLogger("simpul.monitor.probe")


class QueueProbe:
    def __init__(self, amqp_url: str, clock: Clock, *, interval: float = 15.0) -> None:
        self.amqp_url = amqp_url
        self.clock = clock
        self.interval = interval
        self.queues = [q.name for q in messaging.QUEUES if q.kind != "stream"]
        self.current: dict[str, QueueSample] = {}
        self.previous: dict[str, QueueSample] = {}
        self.sampled_at: datetime | None = None
        self._task = Background("monitor-queue-probe", self._sample_for_ever, retry_after=interval)

    async def sample(self, connection: aio_pika.abc.AbstractConnection) -> None:
        found: dict[str, QueueSample] = {}
        for name in self.queues:
            channel = await connection.channel()
            try:
                queue = await channel.declare_queue(name, passive=True)
                result = queue.declaration_result
                found[name] = QueueSample(
                    name, result.message_count or 0, result.consumer_count or 0, self.clock()
                )
            except aiormq.exceptions.ChannelNotFoundEntity:
                pass  # not declared (yet): shown as missing
            finally:
                with contextlib.suppress(Exception):
                    await channel.close()
        self.previous, self.current, self.sampled_at = self.current, found, self.clock()

    async def _sample_for_ever(self) -> None:
        connection = await aio_pika.connect_robust(self.amqp_url, timeout=10)
        async with connection:
            await every(self.interval, lambda: self.sample(connection))

    def start(self) -> None:
        self._task.start()

    async def stop(self) -> None:
        await self._task.stop()

"""Samples the depth and consumers of every queue of the topology, for the operations view and its alerts.

Two ways, both with the monitor's own broker user:
- the broker's management API, where configured (`RABBITMQ_API_URL`): one request for every queue of the
  vhost, with the messages in delivery (unacknowledged) as well as the ready ones;
- otherwise, or while the API does not answer, a passive declare of each queue over AMQP (it needs no
  permission on the queue and changes nothing), which tells the ready messages alone."""

from __future__ import annotations

import contextlib
import logging
from datetime import datetime
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import aio_pika
import aiormq
import httpx

from shared import messaging
from shared.runtime import Clock
from shared.tasks import Background, every

from .domain.operations import QueueSample

log = logging.getLogger("simpul.monitor.probe")

# The four figures alone (`disable_stats` would be cheaper for the broker, but drops the consumer count).
API_QUERY = "columns=name,messages_ready,messages_unacknowledged,consumers"


def samples_from_api(rows: Any, names: set[str], at: datetime) -> dict[str, QueueSample]:
    """The management API's `/api/queues/<vhost>` answer as samples of the topology's queues (others ignored)."""
    if not isinstance(rows, list):
        raise ValueError("the management API did not answer with a list of queues")
    found: dict[str, QueueSample] = {}
    for row in rows:
        if not isinstance(row, dict) or row.get("name") not in names:
            continue
        found[row["name"]] = QueueSample(
            row["name"],
            int(row.get("messages_ready") or 0),
            int(row.get("consumers") or 0),
            at,
            unacked=int(row.get("messages_unacknowledged") or 0),
        )
    return found


class QueueProbe:
    def __init__(
        self,
        amqp_url: str,
        clock: Clock,
        *,
        interval: float = 15.0,
        api_url: str | None = None,
        api_timeout: float = 5.0,
    ) -> None:
        self.amqp_url = amqp_url
        self.clock = clock
        self.interval = interval
        self.api_url = api_url.rstrip("/") if api_url else None
        self.api_timeout = api_timeout
        parts = urlsplit(amqp_url)  # the vhost's queues, asked as the monitor's own broker user
        vhost = unquote(parts.path[1:]) if len(parts.path) > 1 else "/"
        self._api_queues = f"{self.api_url}/api/queues/{quote(vhost, safe='')}?{API_QUERY}"
        self._api_auth = (unquote(parts.username or ""), unquote(parts.password or ""))
        self.queues = [q.name for q in messaging.QUEUES if q.kind != "stream"]
        self.current: dict[str, QueueSample] = {}
        self.previous: dict[str, QueueSample] = {}
        self.sampled_at: datetime | None = None
        self.source: str | None = None  # how the last sample was taken: "management" or "amqp"
        self._api_answered: bool | None = None
        self._task = Background("monitor-queue-probe", self._sample_for_ever, retry_after=interval)

    async def sample(self, connection: aio_pika.abc.AbstractConnection) -> None:
        found = await self.sample_api() if self.api_url else None
        source = "management"
        if found is None:
            found, source = await self.sample_amqp(connection), "amqp"
        self.previous, self.current, self.sampled_at, self.source = self.current, found, self.clock(), source

    async def sample_api(self) -> dict[str, QueueSample] | None:
        """Every queue of the vhost in one request; None (said once in the log) while the API does not answer."""
        try:
            async with httpx.AsyncClient(timeout=self.api_timeout) as client:
                response = await client.get(self._api_queues, auth=self._api_auth)
                response.raise_for_status()
                found = samples_from_api(response.json(), set(self.queues), self.clock())
        except (httpx.HTTPError, ValueError) as exc:
            if self._api_answered is not False:
                log.warning(
                    "the management API does not answer: queues are sampled over AMQP (ready messages alone)",
                    extra={"api_url": self.api_url, "error": type(exc).__name__, "detail": str(exc)[:200]},
                )
            self._api_answered = False
            return None
        if self._api_answered is False:
            log.info("the management API answers again", extra={"api_url": self.api_url})
        self._api_answered = True
        return found

    async def sample_amqp(self, connection: aio_pika.abc.AbstractConnection) -> dict[str, QueueSample]:
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
        return found

    async def _sample_for_ever(self) -> None:
        connection = await aio_pika.connect_robust(self.amqp_url, timeout=10)
        async with connection:
            await every(self.interval, lambda: self.sample(connection))

    def start(self) -> None:
        self._task.start()

    async def stop(self) -> None:
        await self._task.stop()

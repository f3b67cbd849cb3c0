"""The outbox relay's way to the central feed: `central.record.changed` rows over the stream protocol.

Every other outbox row still goes over AMQP 0-9-1 (the relay's default publisher). A relay batch of record
changes leaves in one frame and the broker stores it as a few large chunks, which readers replay several
times faster than the four-or-five-message chunks of AMQP publishes (BENCHMARKS.md, central feed replay).
Where the stream port refuses the connection (the rabbitmq_stream plugin is off), the feed goes over AMQP
as before, with a warning, and the stream port is tried again a minute later.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from shared import db
from shared.contracts import CentralRecordChanged

from .stream_wire import StreamError, StreamWire, encode_message

log = logging.getLogger("simpul.consolidator")
RETRY_STREAM_AFTER = 60.0  # seconds over AMQP before the stream port is tried again


class FeedPublisher:
    def __init__(self, url: str | None, user_id: str, clock: Callable[[], float] = time.monotonic) -> None:
        self.url = url  # None: the feed goes over AMQP
        self.user_id = user_id
        self.clock = clock
        self.over_stream = 0  # rows published over the stream protocol
        self._wire: StreamWire | None = None
        self._lock = asyncio.Lock()
        self._amqp_until = 0.0

    def route(self, default: db.Publisher) -> db.Publisher:
        async def publish(row: db.OutboxRow) -> None:
            if row.routing_key != CentralRecordChanged.ROUTING_KEY or self.url is None:
                return await default(row)
            wire = await self._connected()
            if wire is None:
                return await default(row)
            message = encode_message(
                row.body,
                message_id=row.message_id,
                created=row.created_at,
                user_id=self.user_id,
                exchange=row.exchange,
                routing_key=row.routing_key,
                headers=row.headers,
            )
            if (
                len(message) > wire.frame_max - 64
            ):  # more than one frame: AMQP splits it, this protocol cannot
                return await default(row)
            await wire.publish(message)  # a failure leaves the row to the relay's next attempt
            self.over_stream += 1

        return publish

    async def _connected(self) -> StreamWire | None:
        """The open connection, a new one, or None while the stream port refuses connections."""
        async with self._lock:
            if self._wire is not None and self._wire.error is None:
                return self._wire
            self._wire = None
            if self.clock() < self._amqp_until:
                return None
            assert self.url is not None
            try:
                wire = await StreamWire.connect(self.url)
                await wire.declare_publisher()
            except (ConnectionRefusedError, StreamError) as e:
                self._amqp_until = self.clock() + RETRY_STREAM_AFTER
                log.warning(
                    "central feed: no stream protocol at the broker, publishing over AMQP 0-9-1 for now",
                    extra={"reason": str(e), "retry_after_s": RETRY_STREAM_AFTER},
                )
                return None
            self._wire = wire
            return wire

    async def close(self) -> None:
        async with self._lock:
            if self._wire is not None:
                await self._wire.close()
                self._wire = None

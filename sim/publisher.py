"""A regional system's side of the exchange: publish as its own broker user, then read its receipts."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, TypeVar

import aio_pika
import aiormq
from aio_pika.abc import AbstractIncomingMessage

from shared.contracts import SdpSubmission, derive_message_id

T = TypeVar("T")
BACK_OFF_MAX = 10.0  # seconds between two attempts at most
# A lost connection or channel (a broker restart, CONNECTION_FORCED): connect and send again. A refusal by the
# broker (another unit's routing key, a forged user id, an unroutable publish) will never succeed and is not
# retried; a publish the broker nacks (its queue full) is sent again after the back-off.
REFUSED = (
    aiormq.exceptions.ChannelAccessRefused,
    aiormq.exceptions.ChannelPreconditionFailed,
    aiormq.exceptions.PublishError,
)
RETRYABLE = (
    aiormq.exceptions.AMQPError,
    aio_pika.exceptions.AMQPException,
    # a channel used as its connection was lost (not an AMQPError: a RuntimeError; the soak's UPTs gave up on it)
    aiormq.exceptions.ChannelInvalidStateError,
    ConnectionError,
    OSError,
    TimeoutError,
)


async def riding_out(connected: Callable[[], Awaitable[T]], timeout: float) -> tuple[T, int]:
    """Run `connected` (connect, send what is unanswered, wait for the answers) again after each lost
    connection, with back-off, as a well-written regional client does, until `timeout` seconds have passed;
    its result and the reconnections. (A broker node that restarts with a thousand queues to recover can be
    away for more than a minute: a fixed number of attempts gave up on it while the day went on without the
    unit, found by the soak.)"""
    deadline = time.monotonic() + timeout
    attempt = 0
    while True:
        try:
            return await connected(), attempt
        except RETRYABLE as lost:
            attempt += 1
            pause = min(0.5 * 2**attempt, BACK_OFF_MAX)
            if isinstance(lost, REFUSED) or time.monotonic() + pause > deadline:
                raise
            await asyncio.sleep(pause)


def submission_id(upt_id: str, as_of: date, snapshot: int, part: int) -> str:
    """A resend of the same part carries the same id."""
    return derive_message_id("sdp", upt_id, as_of, snapshot, part)


def submission_body(
    upt_id: str, as_of: date, snapshot: int, part: int, parts: int, records: Sequence[dict[str, Any]]
) -> dict[str, Any]:
    return {
        "message_id": submission_id(upt_id, as_of, snapshot, part),
        "schema_version": SdpSubmission.SCHEMA_VERSION,
        "produced_at": datetime.now(UTC).isoformat(),
        "upt_id": upt_id,
        "as_of": as_of.isoformat(),
        "snapshot": snapshot,
        "part": part,
        "parts": parts,
        "records": list(records),
    }


@dataclass(frozen=True)
class EncodedPart:
    """A submission ready to send (encoding a whole day takes a while: done before the clock starts)."""

    message_id: str
    part: int
    data: bytes

    @classmethod
    def of(cls, body: dict[str, Any]) -> EncodedPart:
        return cls(body["message_id"], body["part"], json.dumps(body).encode())


@dataclass
class SentPart:
    message_id: str
    upt_id: str
    part: int
    sent_at: float  # time.monotonic()


class UnitClient:
    """One unit's connection (a UPT or a Dukcapil office), as that unit; the broker checks its user id."""

    def __init__(self, url: str, username: str, unit_id: str) -> None:
        self.url = url
        self.username = username
        self.unit_id = unit_id
        self.connection: aio_pika.abc.AbstractConnection | None = None
        self.channel: aio_pika.abc.AbstractChannel | None = None

    async def __aenter__(self) -> UnitClient:
        self.connection = await aio_pika.connect(self.url, timeout=30)
        self.channel = await self.connection.channel(publisher_confirms=True, on_return_raises=True)
        return self

    def ensure_open(self) -> None:
        """A lost connection shows first on the channel (the connection's own flag lags): the caller connects
        again and resends what is unanswered."""
        if self.channel is None or self.channel.is_closed:
            raise ConnectionError("the broker closed the connection while receipts were due")

    async def __aexit__(self, *exc: object) -> None:
        if self.connection is not None:
            await self.connection.close()

    async def publish_body(
        self, body: bytes, *, message_id: str | None, routing_key: str | None = None, user_id: str | None = ""
    ) -> None:
        """Publish raw bytes (also used to send hostile input in tests); waits for the broker's confirm."""
        assert self.channel is not None
        exchange = await self.channel.get_exchange("ingest", ensure=False)
        message = aio_pika.Message(
            body,
            message_id=message_id,
            content_type="application/json",
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            timestamp=datetime.now(UTC),
            user_id=self.username if user_id == "" else user_id,
        )
        await exchange.publish(
            message, routing_key=routing_key or f"sdp.{self.unit_id}.submission", mandatory=True, timeout=60
        )

    async def publish_part(self, body: dict[str, Any] | EncodedPart) -> SentPart:
        part = body if isinstance(body, EncodedPart) else EncodedPart.of(body)
        sent_at = time.monotonic()
        await self.publish_body(part.data, message_id=part.message_id)
        return SentPart(part.message_id, self.unit_id, part.part, sent_at)

    async def listen(self) -> Receipts:
        """Start reading this unit's receipts now, so that each one is timed when it arrives."""
        assert self.channel is not None
        receipts = Receipts(await self.channel.get_queue(f"receipts.{self.unit_id}", ensure=False))
        await receipts.start()
        return receipts

    async def receipts(self, expected: set[str], timeout: float) -> dict[str, dict[str, Any]]:
        """Read this unit's receipts until one has arrived for each expected message id."""
        listener = await self.listen()
        try:
            return await listener.wait_for(expected, timeout)
        finally:
            await listener.stop()


# Where dedup moves a capture (the receipt the office gets when it does).
DEDUP_VERDICTS = frozenset(
    {
        "SEARCH_FAILURE_AT_CENTRAL",
        "DUPLICATE_RECORD",
        "ADJUDICATE_RECORD",
        "REQUEST_VALIDATION",
        "PRINT_READY_RECORD",
    }
)


class Receipts:
    """A unit's receipts as they arrive, by the message each one answers (the first answer counts)."""

    def __init__(self, queue: aio_pika.abc.AbstractQueue) -> None:
        self.queue = queue
        self.found: dict[str, dict[str, Any]] = {}
        self.verdicts: dict[str, dict[str, Any]] = {}  # by packet id: the first answer after dedup
        # Every answer, by the message it answers, the status it tells (an e-KTP capture is answered once per
        # status it reaches) and its own id: a second answer with the same id is the same answer delivered
        # again (a client keeps the first); more distinct answers than publications is an answer doubled.
        self.counts: Counter[tuple[str, str, str]] = Counter()
        self.arrived = asyncio.Event()
        self.tag: str | None = None
        self.resend_at: dict[str, float] = {}  # parts the registry did not read yet: when to send them again

    def due(self, most: int = 1) -> set[str]:
        """Parts whose pause after SENDER_OVER_RATE has passed, the longest waiting first, at most `most` (taken
        off the list: the caller resends them). One at a time: parts resent all at once would mostly be told to
        wait again."""
        now = time.monotonic()
        for mid in [m for m in self.resend_at if m in self.found]:
            del self.resend_at[mid]
        ready = sorted((at, mid) for mid, at in self.resend_at.items() if at <= now)[:most]
        for _, mid in ready:
            del self.resend_at[mid]
        return {mid for _, mid in ready}

    async def start(self) -> None:
        self.tag = await self.queue.consume(self._on_message)

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        async with message.process():
            receipt = json.loads(message.body) | {"_received_at": time.monotonic()}
            if receipt.get("retry_after_s") is not None:  # SENDER_OVER_RATE: not read; resend after the pause
                self.resend_at[str(receipt.get("in_reply_to"))] = time.monotonic() + float(
                    receipt["retry_after_s"]
                )
            else:
                self.found.setdefault(str(receipt.get("in_reply_to")), receipt)
            self.counts[
                str(receipt.get("in_reply_to")),
                str(receipt.get("status", "")),
                str(receipt.get("message_id")),
            ] += 1
            if receipt.get("status") in DEDUP_VERDICTS and receipt.get("packet_id"):
                self.verdicts.setdefault(str(receipt["packet_id"]), receipt)
            self.arrived.set()

    async def wait_for(self, expected: set[str], timeout: float) -> dict[str, dict[str, Any]]:
        await self._until(lambda: expected <= self.found.keys(), timeout)
        return {k: v for k, v in self.found.items() if k in expected}

    async def wait_for_verdicts(self, packet_ids: set[str], timeout: float) -> dict[str, dict[str, Any]]:
        """The receipts telling the office what dedup decided, by packet id."""
        await self._until(lambda: packet_ids <= self.verdicts.keys(), timeout)
        return {k: v for k, v in self.verdicts.items() if k in packet_ids}

    async def _until(self, done: Callable[[], bool], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not done() and time.monotonic() < deadline:
            self.arrived.clear()
            try:
                await asyncio.wait_for(self.arrived.wait(), max(0.0, deadline - time.monotonic()))
            except TimeoutError:
                break

    async def stop(self) -> None:
        if self.tag is not None:
            await self.queue.cancel(self.tag)
            self.tag = None

    async def hand_over(
        self, got: dict[str, dict[str, Any]], answers: Counter[tuple[str, str, str]],
        verdicts: dict[str, dict[str, Any]] | None = None,
    ) -> None:  # fmt: skip
        """Stop listening (the connection may be gone already) and keep what came: the first answer per
        message (and per capture's verdict) and the count of every answer."""
        with contextlib.suppress(Exception):
            await self.stop()
        for k, v in self.found.items():
            got.setdefault(k, v)
        for k, v in self.verdicts.items():
            if verdicts is not None:
                verdicts.setdefault(k, v)
        answers.update(self.counts)


def packet_message(body: dict[str, Any]) -> dict[str, Any]:
    """An e-KTP packet with its envelope; a resend of the same capture carries the same message id."""
    mid = derive_message_id(
        "ektp", body.get("kabkota"), body.get("packet_id"), json.dumps(body, sort_keys=True)
    )
    return {"message_id": mid, "schema_version": 1, "produced_at": datetime.now(UTC).isoformat(), **body}

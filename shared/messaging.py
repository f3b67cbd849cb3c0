"""Broker topology, the broker factory and the reliability plumbing every consumer and publisher uses."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Literal
from urllib.parse import unquote, urlsplit

import aio_pika
import asyncpg
import pydantic
from fast_depends.exceptions import ValidationError as DependsValidationError
from faststream import AckPolicy, BaseMiddleware
from faststream.rabbit import Channel, ExchangeType, QueueType, RabbitBroker, RabbitExchange, RabbitQueue
from pamqp.commands import Basic

from shared import metrics, problems
from shared.contracts import Message, derive_message_id
from shared.problems import Problem
from shared.settings import ServiceSettings

log = logging.getLogger("simpul.messaging")

# --- topology (DESIGN section 3) --------------------------------------------------------------------------

ExchangeName = Literal["ingest", "events", "commands", "receipts", "dead"]
EXCHANGE_TYPES: dict[ExchangeName, ExchangeType] = {
    "ingest": ExchangeType.TOPIC,
    "events": ExchangeType.TOPIC,
    "commands": ExchangeType.TOPIC,
    "receipts": ExchangeType.DIRECT,
    "dead": ExchangeType.TOPIC,
}
DEAD_LETTER_EXCHANGE: ExchangeName = "dead"


def exchange(name: ExchangeName) -> RabbitExchange:
    """Exchanges exist before any service starts (provisioning declares them), so services never declare."""
    return RabbitExchange(name, type=EXCHANGE_TYPES[name], declare=False)


INGEST, EVENTS, COMMANDS, RECEIPTS, DEAD = (exchange(n) for n in EXCHANGE_TYPES)


@dataclass(frozen=True)
class QueueSpec:
    """One queue of the topology and what it is bound to."""

    name: str
    bindings: tuple[tuple[ExchangeName, str], ...]
    kind: Literal["quorum", "classic", "stream"] = "quorum"
    delivery_limit: int = 10
    max_length: int = 1_000_000
    dead_letters: bool = True  # False for the queues that hold dead letters themselves
    # Messages a consumer of this queue takes at once (and so handles at once: FastStream runs one task per
    # delivery), where the channel's default would be too many: for queues of whole parts, each held decoded
    # while its handler waits (for a database that is away, say), this bounds a process's memory.
    prefetch: int | None = None

    def arguments(self) -> dict[str, Any]:
        if self.kind == "stream":
            return {"x-queue-type": "stream", "x-max-age": "30D"}
        args: dict[str, Any] = {"x-max-length": self.max_length, "x-overflow": "reject-publish"}
        if self.kind == "classic":
            return (
                args
                | {"x-queue-type": "classic"}
                | ({"x-dead-letter-exchange": DEAD_LETTER_EXCHANGE} if self.dead_letters else {})
            )
        args |= {"x-queue-type": "quorum", "x-delivery-limit": self.delivery_limit}
        if self.dead_letters:
            args |= {
                "x-dead-letter-exchange": DEAD_LETTER_EXCHANGE,
                "x-dead-letter-strategy": "at-least-once",
            }
        return args

    def channel(self) -> Channel | None:
        """The consumer's own channel where the queue sets its prefetch; None: the broker's default channel."""
        return None if self.prefetch is None else Channel(prefetch_count=self.prefetch, on_return_raises=True)

    def subscribe_to(self) -> RabbitQueue:
        """The queue as a consumer sees it: declared by provisioning, only checked (passively) here."""
        key = self.bindings[0][1]
        if self.kind == "stream":
            return RabbitQueue(self.name, queue_type=QueueType.STREAM, declare=False, routing_key=key)
        if self.kind == "classic":
            return RabbitQueue(self.name, queue_type=QueueType.CLASSIC, declare=False, routing_key=key)
        return RabbitQueue(self.name, queue_type=QueueType.QUORUM, declare=False, routing_key=key)


# Whole parts (up to a UPT's part of inmates, or a packet with its templates) held at once by one consumer:
# with the default prefetch, a database away for 20 s left 64 decoded parts waiting in each process (the soak,
# BENCHMARKS.md: hundreds of MB that the process kept afterwards). Eight keep two cores busy.
PARTS_IN_FLIGHT = 8


REGISTRY_SDP = QueueSpec("registry.sdp", (("ingest", "sdp.*.submission"),), prefetch=PARTS_IN_FLIGHT)
REGISTRY_EKTP = QueueSpec("registry.ektp", (("ingest", "ektp.*.packet"),), prefetch=PARTS_IN_FLIGHT)
REGISTRY_EKTP_STATUS = QueueSpec("registry.ektp-status", (("ingest", "ektp.*.status"),))
REGISTRY_EKTP_PRINT = QueueSpec("registry.ektp-print", (("ingest", "ektp.*.print"),))
REGISTRY_EKTP_VERDICTS = QueueSpec("registry.ektp-verdicts", (("events", "dedup.verdict.ektp"),))
DEDUP_SDP = QueueSpec("dedup.sdp", (("events", "registry.accepted.sdp"),), prefetch=PARTS_IN_FLIGHT)
DEDUP_EKTP = QueueSpec("dedup.ektp", (("events", "registry.accepted.ektp"),))
DEDUP_COMMANDS = QueueSpec("dedup.commands", (("commands", "command.adjudication.decide"),))
CONSOLIDATOR_SDP = QueueSpec("consolidator.sdp", (("events", "dedup.verdict.sdp"),), prefetch=PARTS_IN_FLIGHT)
CONSOLIDATOR_EKTP = QueueSpec("consolidator.ektp", (("events", "dedup.verdict.ektp"),))
# The registry's answer to every part (counts, lateness, whether the part was kept) and every e-KTP move.
CONSOLIDATOR_SUBMISSIONS = QueueSpec("consolidator.submissions", (("events", "status.registry.submission"),))
CONSOLIDATOR_EKTP_STATUS = QueueSpec("consolidator.ektp-status", (("events", "status.registry.ektp"),))
CONSOLIDATOR_COMMANDS = QueueSpec("consolidator.commands", (("commands", "command.consolidation.run"),))
CONSOLIDATOR_LINKS = QueueSpec("consolidator.links", (("commands", "command.person.link"),))
MONITOR_STATUS = QueueSpec("monitor.status", (("events", "status.#"), ("events", "consolidation.run.*")))
MONITOR_DEAD = QueueSpec("monitor.dead", (("dead", "#"),), dead_letters=False)
# Kept for the operator's replay tool; nobody consumes it automatically.
DEAD_LETTERS = QueueSpec("dead.letters", (("dead", "#"),), dead_letters=False, max_length=5_000_000)
CENTRAL_RECORDS = QueueSpec("central.records", (("events", "central.record.changed"),), kind="stream")

QUEUES: tuple[QueueSpec, ...] = (
    REGISTRY_SDP,
    REGISTRY_EKTP,
    REGISTRY_EKTP_STATUS,
    REGISTRY_EKTP_PRINT,
    REGISTRY_EKTP_VERDICTS,
    DEDUP_SDP,
    DEDUP_EKTP,
    DEDUP_COMMANDS,
    CONSOLIDATOR_SDP,
    CONSOLIDATOR_EKTP,
    CONSOLIDATOR_SUBMISSIONS,
    CONSOLIDATOR_EKTP_STATUS,
    CONSOLIDATOR_COMMANDS,
    CONSOLIDATOR_LINKS,
    MONITOR_STATUS,
    MONITOR_DEAD,
    DEAD_LETTERS,
    CENTRAL_RECORDS,
)


def receipts_queue(unit_id: str, kind: Literal["quorum", "classic"] = "classic") -> QueueSpec:
    """Each sender reads its receipts from its own queue and may read nothing else.

    Classic by default, in the broker's default (v1 on 3.10) format: RabbitMQ 3.10 accounts open files in
    a cache sized from the broker's open-files limit (about 930 under the common default of 1,024). A
    quorum queue reserves three of them for good, and so does a v2 classic queue once it has held a message,
    so a thousand senders' queues exhaust the cache and the broker stops accepting connections and creating
    vhosts. A v1 classic queue's files can be closed by the cache when it runs short. With a broker whose
    limit was raised (production: 65,536), choose quorum for replication.
    """
    return QueueSpec(f"receipts.{unit_id}", (("receipts", unit_id),), kind=kind, max_length=100_000)


# --- publishing ------------------------------------------------------------------------------------------


def broker_user(amqp_url: str) -> str:
    return unquote(urlsplit(amqp_url).username or "guest")


async def publish_raw(
    broker: RabbitBroker,
    body: bytes,
    *,
    exchange: RabbitExchange,
    routing_key: str,
    message_id: str,
    user_id: str | None = None,
    headers: Mapping[str, Any] | None = None,
    timestamp: datetime | None = None,
    content_type: str = "application/json",
) -> None:
    """Publish persistently and wait for the broker's confirm; raise if it nacks or cannot route."""
    result = await broker.publish(
        body,
        exchange=exchange,
        routing_key=routing_key,
        message_id=message_id,
        persist=True,
        mandatory=True,
        content_type=content_type,
        user_id=user_id,
        headers=dict(headers or {}),
        timestamp=timestamp or datetime.now(UTC),
        timeout=30,
    )
    # With on_return_raises a return already raised; None is the in-memory test broker.
    if result is not None and not isinstance(result, Basic.Ack):
        # Never the message itself in the error: it may carry personal data.
        raise RuntimeError(f"broker returned {message_id} unconfirmed on {exchange.name}/{routing_key}")


async def publish(
    broker: RabbitBroker,
    message: Message,
    *,
    exchange: RabbitExchange,
    routing_key: str,
    user_id: str | None = None,
) -> None:
    await publish_raw(
        broker,
        message.model_dump_json().encode(),
        exchange=exchange,
        routing_key=routing_key,
        message_id=message.message_id,
        user_id=user_id,
        timestamp=message.produced_at,
        headers={"schema_version": message.schema_version},
    )


# --- consuming -------------------------------------------------------------------------------------------


# Ack after the handler returned (its transaction committed); on failure requeue, so the delivery limit and
# the DLX decide, never a single unlucky attempt. Set on every subscriber: a router does not inherit it.
ACK_POLICY = AckPolicy.NACK_ON_ERROR


class PermanentError(Exception):
    """A message that no retry can fix: it is dead-lettered with this reason and acknowledged."""

    def __init__(self, problem: Problem, detail: str = "", *, answered: bool = False) -> None:
        super().__init__(f"{problem.code}: {detail}" if detail else problem.code)
        self.problem = problem
        self.detail = detail
        self.answered = answered  # the handler already told the sender; the dead letter is only kept


@dataclass(frozen=True)
class DeadLetter:
    """What a consumer could not process and why; headers carry the reason to the `dead` exchange."""

    problem: Problem
    detail: str
    service: str
    queue: str
    raw: aio_pika.abc.AbstractIncomingMessage
    answered: bool = False

    def headers(self) -> dict[str, Any]:
        raw = self.raw
        return {
            **{k: v for k, v in (raw.headers or {}).items() if not k.startswith("x-dead")},
            "x-dead-reason": self.problem.code,
            "x-dead-detail": self.detail[:1_000],
            "x-dead-reason-id": self.problem.reason_id,
            "x-dead-reason-en": self.problem.reason_en,
            "x-dead-service": self.service,
            "x-dead-queue": self.queue,
            "x-dead-at": datetime.now(UTC).isoformat(),
            "x-original-exchange": raw.exchange or "",
            "x-original-routing-key": raw.routing_key or "",
            "x-original-user-id": raw.user_id or "",
            "x-original-message-id": raw.message_id or "",
            "x-original-content-type": raw.content_type or "",
        }


Answer = Callable[[DeadLetter], Awaitable[None]]


def describe_validation_error(exc: BaseException) -> str:
    """Where a body failed its schema, without echoing the values (they may be personal data)."""
    original = exc.original_error if isinstance(exc, DependsValidationError) else exc
    if isinstance(original, pydantic.ValidationError):
        parts = []
        for err in original.errors(include_input=False, include_url=False)[:10]:
            loc = ".".join(str(p) for p in err["loc"] if p not in ("body", "__root__"))
            parts.append(f"{loc or '(body)'}: {err['msg']}")
        return "; ".join(parts)
    return type(original).__name__


def classify(exc: BaseException, body: bytes) -> tuple[Problem, str] | None:
    """The problem behind a failure if it is permanent; None for failures a retry may cure."""
    if isinstance(exc, PermanentError):
        return exc.problem, exc.detail
    if isinstance(exc, json.JSONDecodeError | UnicodeDecodeError):
        return problems.MESSAGE_NOT_JSON, str(exc)[:200]
    if isinstance(exc, RecursionError):  # JSON nested deeper than any message of ours
        return problems.MESSAGE_NOT_JSON, "nested too deeply"
    if isinstance(exc, asyncpg.exceptions.DataError):
        # SQLSTATE class 22 (and asyncpg's own refusal of an argument): the values themselves cannot be stored,
        # a NUL in a text or an integer past the column's range. The same message fails the same way every
        # time: answered now, not retried until the broker's delivery limit. (No value in the detail.)
        state = getattr(exc, "sqlstate", None)
        return problems.DATA_NOT_STORABLE, f"{type(exc).__name__}" + (f" (SQLSTATE {state})" if state else "")
    if isinstance(exc, DependsValidationError | pydantic.ValidationError):
        try:
            json.loads(body)
        except ValueError as not_json:
            return problems.MESSAGE_NOT_JSON, str(not_json)[:200]
        except RecursionError:
            return problems.MESSAGE_NOT_JSON, "nested too deeply"
        return problems.MESSAGE_SCHEMA, describe_validation_error(exc)
    return None


def decoded_as(model: type[Message]) -> Callable[[Any], Awaitable[Message]]:
    """A subscriber's decoder for a queue of whole parts from another service of the suite: the body validated
    straight from its bytes by pydantic's own JSON parser, rather than parsed into Python objects first and
    validated after (the default), about half the work for a part of 500 records. A body that is not JSON or
    not the model raises pydantic's ValidationError, which `classify` answers as the default path's."""

    async def decode(message: Any) -> Message:
        return model.model_validate_json(message.body)

    return decode


def check_envelope(
    raw: aio_pika.abc.AbstractIncomingMessage, body: Any, *, require_user: bool = True
) -> None:
    """Every consumed message names itself and its sender; the broker guarantees the sender is genuine."""
    if not raw.message_id:
        raise PermanentError(problems.MESSAGE_ID_MISSING)
    if require_user and not raw.user_id:
        raise PermanentError(problems.USER_ID_MISSING)
    if isinstance(body, Message) and body.message_id != raw.message_id:
        raise PermanentError(problems.MESSAGE_ID_MISMATCH, f"body {body.message_id!r}")


def require_publisher(raw: aio_pika.abc.AbstractIncomingMessage, *expected: str) -> None:
    """Events are only believed from the service that owns them (the broker vouches for user_id)."""
    if raw.user_id not in expected:
        raise PermanentError(problems.SENDER_NOT_ALLOWED, f"user {raw.user_id!r} may not publish this")


async def raw_body(message: Any) -> bytes:
    """Decoder for consumers of dead letters: the body stays bytes, never parsed."""
    return bytes(message.body)


def delivery_count(raw: aio_pika.abc.AbstractIncomingMessage) -> int:
    """How many times this message was delivered before (quorum queues count redeliveries)."""
    count = (raw.headers or {}).get("x-delivery-count") or 0
    return count if isinstance(count, int) else 0


def retry_delay(raw: aio_pika.abc.AbstractIncomingMessage, longest: float = 30.0) -> float:
    """Back off before a failed message goes back to the queue, longer for each redelivery."""
    return float(min(2 ** delivery_count(raw), longest))


class ReliableConsumer:
    """FastStream middleware factory: dead-letter permanent failures with their reason, back off on others.

    Permanent failures (not JSON, wrong schema, missing ids, refused sender) are copied to the `dead`
    exchange with the reason in headers, answered to the sender when the service knows how, and then
    acknowledged, so they never loop. Other failures wait a little and are requeued; the queue's delivery
    limit dead-letters them through the broker if they keep failing.
    """

    def __init__(self, service: str, *, answer: Answer | None = None, max_backoff: float = 30.0) -> None:
        self.service = service
        self.answer = answer
        self.max_backoff = max_backoff
        self.broker: RabbitBroker | None = None
        self.dead_lettered = 0

    def __call__(self, msg: Any, /, *, context: Any) -> BaseMiddleware:
        return _ReliableConsumerScope(msg, context=context, owner=self)

    async def dead_letter(self, letter: DeadLetter) -> None:
        assert self.broker is not None, "ReliableConsumer.broker is set by build_broker"
        raw = letter.raw
        await publish_raw(
            self.broker,
            raw.body,
            exchange=DEAD,
            routing_key=raw.routing_key or "unknown",
            message_id=derive_message_id("dead", self.service, raw.message_id or raw.body),
            headers=letter.headers(),
            content_type="application/octet-stream",  # opaque: whatever broke the consumer stays inert here
        )
        self.dead_lettered += 1
        metrics.DEAD_LETTERED.labels(self.service, letter.problem.code).inc()
        log.warning(
            "message dead-lettered",
            extra={
                "reason": letter.problem.code,
                "detail": letter.detail,
                "queue": letter.queue,
                "routing_key": raw.routing_key,
                "message_id": raw.message_id,
                "user_id": raw.user_id,
            },
        )
        if self.answer is not None and not letter.answered:
            try:
                await self.answer(letter)
            except Exception:  # the dead letter is kept; an answer that fails is only logged
                log.exception("could not answer the sender of a dead-lettered message")


class _ReliableConsumerScope(BaseMiddleware):
    def __init__(self, msg: Any, /, *, context: Any, owner: ReliableConsumer) -> None:
        super().__init__(msg, context=context)
        self.owner = owner
        self.began = time.monotonic()
        self.lag: float | None = None

    async def on_receive(self) -> None:
        self.began = time.monotonic()
        raw = self.msg
        if isinstance(raw, aio_pika.abc.AbstractIncomingMessage) and raw.timestamp is not None:
            sent = raw.timestamp if raw.timestamp.tzinfo else raw.timestamp.replace(tzinfo=UTC)
            self.lag = max(
                0.0, (datetime.now(UTC) - sent).total_seconds()
            )  # (whole seconds: AMQP's timestamp)

    def _queue(self) -> str:
        handler = self.context.get_local("handler_")
        return str(getattr(getattr(handler, "queue", None), "name", "") or "unknown")

    async def after_processed(
        self,
        exc_type: type[BaseException] | None = None,
        exc_val: BaseException | None = None,
        exc_tb: TracebackType | None = None,
    ) -> bool | None:
        handled = await self._after(exc_val)
        queue = self._queue()
        metrics.PROCESSING.labels(self.owner.service, queue).observe(time.monotonic() - self.began)
        if self.lag is not None:
            metrics.LAG.labels(self.owner.service, queue).observe(self.lag)
        outcome = "ok" if exc_val is None else ("refused" if handled else "retried")
        if not isinstance(exc_val, asyncio.CancelledError):
            metrics.CONSUMED.labels(self.owner.service, queue, outcome).inc()
        return handled

    async def _after(self, exc_val: BaseException | None) -> bool | None:
        raw = self.msg
        if exc_val is None or not isinstance(raw, aio_pika.abc.AbstractIncomingMessage):
            return False
        if isinstance(exc_val, asyncio.CancelledError):
            return False  # shutting down: the message stays unacked and is requeued
        verdict = classify(exc_val, raw.body)
        if verdict is None:
            log.warning(
                "message failed, will be retried",
                exc_info=exc_val,
                extra={"routing_key": raw.routing_key, "message_id": raw.message_id},
            )
            await asyncio.sleep(retry_delay(raw, self.owner.max_backoff))
            return False
        problem, detail = verdict
        answered = isinstance(exc_val, PermanentError) and exc_val.answered
        if raw.exchange == DEAD.name:
            # Never dead-letter a dead letter: the copy in `dead.letters` is kept; a loop would be endless.
            log.error("a dead letter could not be processed; acknowledged", extra={"reason": problem.code})
            return True
        queue = getattr(self.context.get_local("handler_"), "queue", None)
        letter = DeadLetter(problem, detail, self.owner.service, getattr(queue, "name", ""), raw, answered)
        try:
            await self.owner.dead_letter(letter)
        except Exception:
            log.exception("could not dead-letter a message; it will be retried")
            await asyncio.sleep(retry_delay(raw, self.owner.max_backoff))
            return False
        return True  # handled: the acknowledgement middleware acks it


def build_broker(service: str, settings: ServiceSettings) -> tuple[RabbitBroker, ReliableConsumer]:
    """A service's broker: every channel has a prefetch limit and raises on unroutable publishes, every
    subscriber acks only after its handler returned, and failures go through a ReliableConsumer."""
    consumer = ReliableConsumer(service, max_backoff=settings.retry_backoff_max)
    broker = RabbitBroker(
        settings.amqp_url,
        default_channel=Channel(prefetch_count=settings.prefetch_count, on_return_raises=True),
        graceful_timeout=settings.graceful_timeout,
        ack_policy=ACK_POLICY,
        middlewares=[consumer],
        logger=logging.getLogger(f"simpul.{service}.broker"),
        log_level=logging.DEBUG,  # one line per message is access logging, not news
        app_id=consumer.service,
    )
    consumer.broker = broker
    return broker, consumer

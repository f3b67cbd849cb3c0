"""The suite's plumbing as the centre's operators read it: each queue's backlog and consumers, each service's
last sign of life, and what deserves attention. Pure rules over samples the monitor takes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

# Queues that nobody consumes on purpose (read by the operators' tools), bounded by their length limit.
UNCONSUMED = frozenset({"dead.letters"})


@dataclass(frozen=True)
class QueueSample:
    name: str
    messages: int  # ready to deliver
    consumers: int
    at: datetime
    unacked: int | None = None  # delivered, not yet acknowledged (None: the sample could not tell)


@dataclass(frozen=True)
class QueueState:
    name: str
    service: str
    messages: int
    consumers: int
    state: str  # ok, backlog, no_consumer, growing_without_consumer, missing
    growth: int  # messages since the previous sample
    unacked: int | None = None  # in delivery: with a consumer, not acknowledged yet (None: not known)


def service_of(queue: str) -> str:
    return queue.split(".", 1)[0] if queue not in UNCONSUMED else "operators"


def decide_queue(
    current: QueueSample | None, previous: QueueSample | None, name: str, backlog: int
) -> QueueState:
    if current is None:
        return QueueState(name, service_of(name), 0, 0, "missing", 0)
    growth = current.messages - previous.messages if previous is not None else 0
    if current.consumers == 0 and name not in UNCONSUMED:
        state = "growing_without_consumer" if growth > 0 else "no_consumer"
    elif current.messages > backlog and name not in UNCONSUMED:
        state = "backlog"
    else:
        state = "ok"
    return QueueState(
        name, service_of(name), current.messages, current.consumers, state, growth, current.unacked
    )


@dataclass(frozen=True)
class ServiceState:
    name: str
    consuming: bool  # every queue it consumes has a consumer
    waiting: int  # messages waiting in its queues
    last_message_at: datetime | None  # its last event the monitor received
    quiet: bool  # no consumer, or work waits and it said nothing for longer than allowed


def decide_services(
    queues: Sequence[QueueState], last_seen: Mapping[str, datetime], now: datetime, quiet_after: timedelta
) -> list[ServiceState]:
    """A service is quiet when a queue of its has no consumer, or when messages wait for it and it has published
    nothing for `quiet_after` (idle at night is not quiet: nothing waits)."""
    out = []
    for name in ("registry", "dedup", "consolidator", "monitor"):
        own = [q for q in queues if q.service == name]
        consuming = bool(own) and all(q.consumers > 0 for q in own)
        waiting = sum(q.messages for q in own)
        seen = last_seen.get(name)
        stalled = name != "monitor" and waiting > 0 and (seen is None or now - seen > quiet_after)
        out.append(ServiceState(name, consuming, waiting, seen, not consuming or stalled))
    return out

"""Prometheus metrics every service exposes at /metrics on its health port (prometheus-client)."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4

# Seconds: a message handled in a few milliseconds, a part of 500 records in a fraction of a second.
_SECONDS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
# Lag: from a message's publication to its consumption; a backlog shows as minutes.
_LAG = (0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0)

CONSUMED = Counter(
    "simpul_messages_consumed",
    "Messages a service consumed, by queue and outcome: ok, refused (dead-lettered with a reason: no retry can "
    "fix it) or retried (requeued after a transient failure).",
    ["service", "queue", "outcome"],
)
DEAD_LETTERED = Counter(
    "simpul_messages_dead_lettered",
    "Messages a service dead-lettered, by reason code.",
    ["service", "reason"],
)
PROCESSING = Histogram(
    "simpul_message_processing_seconds",
    "Time a service spent on one message.",
    ["service", "queue"],
    buckets=_SECONDS,
)
LAG = Histogram(
    "simpul_message_lag_seconds",
    "From a message's publication (its timestamp) to the start of its processing: how far a consumer is behind.",
    ["service", "queue"],
    buckets=_LAG,
)
OUTBOX_PUBLISHED = Counter("simpul_outbox_published", "Messages the outbox relay published.", ["service"])
GALLERY_SIZE = Gauge("simpul_dedup_gallery_size", "Identities in dedup's biometric gallery.")
LIVE_CLIENTS = Gauge(
    "simpul_monitor_live_clients", "Browsers following the monitor's live events (this instance)."
)


def gauge_from(gauge: Gauge, read: Callable[[], float]) -> None:
    """The gauge reads its value when scraped."""
    gauge.set_function(read)


def exposition() -> tuple[bytes, str]:
    """The text format Prometheus scrapes, and its content type (0.0.4: every Prometheus reads it, and the names
    here need nothing newer)."""
    return generate_latest(), CONTENT_TYPE_PLAIN_0_0_4

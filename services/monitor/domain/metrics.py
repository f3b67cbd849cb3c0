"""Each service's key figures, read from its Prometheus metrics (the text format of /metrics), for the
operations view: what it consumed and how, what it dead-lettered and published, how long a message took."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families

CONSUMED = "simpul_messages_consumed"
DEAD_LETTERED = "simpul_messages_dead_lettered"
PUBLISHED = "simpul_outbox_published"
PROCESSING = "simpul_message_processing_seconds"
LAG = "simpul_message_lag_seconds"
GALLERY = "simpul_dedup_gallery_size"
LIVE_CLIENTS = "simpul_monitor_live_clients"


@dataclass(frozen=True)
class ServiceFigures:
    """Counts since the process started; times as the upper bound of the histogram bucket holding the share."""

    service: str
    up: bool
    consumed: int = 0
    refused: int = 0
    retried: int = 0
    dead_lettered: int = 0
    published: int = 0
    processing_p50_s: float | None = None
    processing_p95_s: float | None = None
    lag_p95_s: float | None = None
    gallery_size: int | None = None
    live_clients: int | None = None
    error: str | None = None
    ready: bool | None = None  # its /health/ready said so (None: not asked)


def ready_url(metrics_url: str) -> str:
    """A service's readiness endpoint, beside its /metrics (every service serves both on its health port)."""
    base = (
        metrics_url.rsplit("/metrics", 1)[0] if metrics_url.endswith("/metrics") else metrics_url.rstrip("/")
    )
    return f"{base}/health/ready"


def unreachable(service: str, error: str) -> ServiceFigures:
    return ServiceFigures(service, up=False, error=error[:200])


def quantile(buckets: dict[float, float], share: float) -> float | None:
    """The upper bound of the first bucket holding `share` of the observations (cumulative counts by `le`)."""
    total = buckets.get(float("inf"), 0.0)
    if total <= 0:
        return None
    for bound in sorted(buckets):
        if buckets[bound] >= share * total:
            return (
                bound
                if bound != float("inf")
                else max((b for b in buckets if b != float("inf")), default=None)
            )
    return None


def summarise(service: str, text: str) -> ServiceFigures:
    """The figures of one scrape; a body that is not the text format raises ValueError."""
    outcomes: dict[str, float] = defaultdict(float)
    dead = published = 0.0
    histograms: dict[str, dict[float, float]] = {PROCESSING: defaultdict(float), LAG: defaultdict(float)}
    gallery = live = None
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = sample.labels
            if sample.name == f"{CONSUMED}_total":
                outcomes[labels.get("outcome", "")] += sample.value
            elif sample.name == f"{DEAD_LETTERED}_total":
                dead += sample.value
            elif sample.name == f"{PUBLISHED}_total":
                published += sample.value
            elif sample.name.endswith("_bucket") and sample.name[: -len("_bucket")] in histograms:
                histograms[sample.name[: -len("_bucket")]][float(labels["le"])] += sample.value
            elif sample.name == GALLERY:
                gallery = int(sample.value)
            elif sample.name == LIVE_CLIENTS:
                live = int(sample.value)
    return ServiceFigures(
        service=service, up=True, consumed=int(sum(outcomes.values())), refused=int(outcomes["refused"]),
        retried=int(outcomes["retried"]), dead_lettered=int(dead), published=int(published),
        processing_p50_s=quantile(histograms[PROCESSING], 0.5), processing_p95_s=quantile(histograms[PROCESSING], 0.95),
        lag_p95_s=quantile(histograms[LAG], 0.95), gallery_size=gallery, live_clients=live,
    )  # fmt: skip

"""The operations view's service metrics: the Prometheus text of each service read into its key figures,
scraped over HTTP, and shown to the centre only."""

from __future__ import annotations

import asyncio
import http.server
import threading
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from deploy.sandbox import free_port
from services.monitor.domain.metrics import ServiceFigures, quantile, summarise
from services.monitor.scrape import MetricsScraper

NOW = datetime(2026, 11, 20, 5, tzinfo=UTC)


def exposition() -> str:
    """A dedup's /metrics as prometheus-client writes it, with the suite's metric names."""
    registry = CollectorRegistry()
    consumed = Counter("simpul_messages_consumed", "", ["service", "queue", "outcome"], registry=registry)
    dead = Counter("simpul_messages_dead_lettered", "", ["service", "reason"], registry=registry)
    published = Counter("simpul_outbox_published", "", ["service"], registry=registry)
    processing = Histogram(
        "simpul_message_processing_seconds", "", ["service", "queue"], registry=registry,
        buckets=(0.001, 0.01, 0.1, 1.0),
    )  # fmt: skip
    lag = Histogram(
        "simpul_message_lag_seconds", "", ["service", "queue"], registry=registry, buckets=(1.0, 60.0)
    )
    Gauge("simpul_dedup_gallery_size", "", registry=registry).set(1_000_000)
    consumed.labels("dedup", "dedup.ektp", "ok").inc(90)
    consumed.labels("dedup", "dedup.sdp", "ok").inc(8)
    consumed.labels("dedup", "dedup.ektp", "refused").inc(2)
    consumed.labels("dedup", "dedup.ektp", "retried").inc(3)
    dead.labels("dedup", "TEMPLATE_INVALID").inc(2)
    published.labels("dedup").inc(95)
    for _ in range(60):
        processing.labels("dedup", "dedup.ektp").observe(0.005)  # 60 within 10 ms
    for _ in range(38):
        processing.labels("dedup", "dedup.sdp").observe(0.05)  # 38 within 100 ms: p95 across both queues
    for _ in range(2):
        processing.labels("dedup", "dedup.ektp").observe(5.0)  # beyond the last bound
    for _ in range(100):
        lag.labels("dedup", "dedup.ektp").observe(0.5)
    return generate_latest(registry).decode()


def test_a_services_metrics_become_its_key_figures() -> None:
    assert summarise("dedup", exposition()) == ServiceFigures(
        service="dedup", up=True, consumed=103, refused=2, retried=3, dead_lettered=2, published=95,
        processing_p50_s=0.01, processing_p95_s=0.1, lag_p95_s=1.0, gallery_size=1_000_000,
    )  # fmt: skip


def test_a_service_that_has_handled_nothing_has_no_times() -> None:
    figures = summarise("consolidator", "# nothing yet\n")
    assert (figures.up, figures.consumed, figures.processing_p95_s, figures.gallery_size) == (
        True,
        0,
        None,
        None,
    )


@pytest.mark.parametrize(
    ("buckets", "share", "expected"),
    [
        ({0.1: 5, 1.0: 10, float("inf"): 10}, 0.5, 0.1),
        ({0.1: 5, 1.0: 10, float("inf"): 10}, 0.95, 1.0),
        ({0.1: 0, 1.0: 0, float("inf"): 4}, 0.5, 1.0),  # all beyond the last bound: at least that
        ({0.1: 0, float("inf"): 0}, 0.5, None),
        ({}, 0.5, None),
    ],
)
def test_a_quantile_is_the_bound_of_the_bucket_that_holds_it(
    buckets: dict[float, float], share: float, expected: float | None
) -> None:
    assert quantile(buckets, share) == expected


@pytest.fixture
def metrics_server() -> Iterator[int]:
    body = exposition().encode()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200 if self.path == "/metrics" else 404)
            self.end_headers()
            self.wfile.write(body if self.path == "/metrics" else b"no")

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()


async def test_the_scraper_reads_each_target_and_says_which_does_not_answer(metrics_server: int) -> None:
    closed = free_port()
    scraper = MetricsScraper(
        {"dedup": f"http://127.0.0.1:{metrics_server}/metrics", "registry": f"http://127.0.0.1:{closed}/metrics",
         "consolidator": f"http://127.0.0.1:{metrics_server}/elsewhere"},
        lambda: NOW,
    )  # fmt: skip
    await scraper.scrape()
    by = {f.service: f for f in scraper.figures}
    assert [f.service for f in scraper.figures] == ["consolidator", "dedup", "registry"]
    assert (by["dedup"].up, by["dedup"].consumed, by["dedup"].gallery_size) == (True, 103, 1_000_000)
    assert not by["registry"].up
    assert by["registry"].error is not None
    assert "Connection refused" in by["registry"].error
    assert not by["consolidator"].up  # a 404 is no metrics
    assert scraper.scraped_at == NOW


async def test_a_scraper_without_targets_never_runs() -> None:
    scraper = MetricsScraper({}, lambda: NOW)
    scraper.start()
    await asyncio.sleep(0)
    assert scraper._task._task is None
    await scraper.stop()

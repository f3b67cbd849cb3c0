"""The adjudication desk end to end: a Dukcapil office sends a capture of someone already enrolled whose
evidence lies in the grey zone; dedup holds it for the centre; an operator decides it in the monitor (a real
headless Chromium) and the verdict reaches the registry, which moves the capture and answers the office."""

from __future__ import annotations

import json
import os
import re

import asyncpg
import numpy as np
import pytest
from playwright.async_api import Browser, expect

from deploy import credentials as creds
from sim import gallery as seeding
from sim.biometrics import b64
from sim.publisher import UnitClient, packet_message
from tests.builders import packets
from tests.e2e.conftest import Suite
from tests.e2e.test_monitor_browser import browser, login, shot  # noqa: F401 (the browser fixture)
from tests.integration.helpers import eventually

pytestmark = pytest.mark.e2e
KABKOTA = "3273"
OFFICE = f"dukcapil-{KABKOTA}"
SPEC = seeding.GallerySpec(200, seed=31, batch=200, legacy_share=0)


def grey_capture() -> dict[str, object]:
    """A new packet of gallery person 20, captured again: a face only, every finger and both eyes declared
    missing (with the reason the registry requires)."""
    people, _ = seeding.identities_of_batch(SPEC.seed, 0, SPEC.count)
    again = seeding.MODEL.capture(np.random.default_rng(6), people.take(np.array([20])))
    (body,) = packets(1, kabkota=KABKOTA, seed=71)
    body = {k: v for k, v in body.items() if k not in ("message_id", "schema_version", "produced_at")}
    body["packet_id"] += "-desk"
    body["biometrics"] = {
        "fingers": [], "irises": [], "face": {"embedding": b64(again.face[0]), "quality": 90},
        "signature_sha256": "0" * 64,
        "exceptions": {"missing_fingers": list(range(1, 11)), "missing_irises": ["right", "left"],
                       "reason": "kusta; kelainan mata"},
    }  # fmt: skip
    return packet_message(body)


async def status_of(dsn: str, packet_id: str) -> str | None:
    conn = await asyncpg.connect(dsn)
    try:
        found = await conn.fetchval(
            "SELECT status FROM registry.captures WHERE kabkota = $1 AND packet_id = $2", KABKOTA, packet_id
        )
        return str(found) if found is not None else None
    finally:
        await conn.close()


async def test_a_grey_zone_capture_is_decided_at_the_desk_and_the_verdict_reaches_the_registry(
    browser: Browser,  # noqa: F811 (the fixture imported above)
    suite: Suite,
) -> None:
    inst = suite.installation
    os.environ["DEDUP_GALLERY_KEY"] = inst.gallery_key()
    try:
        await seeding.seed(inst.database_url, SPEC)  # beside whoever the suite enrolled already
    finally:
        os.environ.pop("DEDUP_GALLERY_KEY", None)
    suite.stop("dedup")
    # loads the gallery with the seeded people; a face alone is one capped comparison: with the duplicate
    # threshold out of reach it lands in the grey zone
    suite.start("dedup", DUPLICATE_FPIR="1e-30", ADJUDICATE_FPIR="1e-2")
    try:
        message = grey_capture()
        packet_id = str(message["packet_id"])
        office = creds.find(inst.credentials, "dukcapil", OFFICE)
        async with UnitClient(inst.url_for("dukcapil", OFFICE), office.username, OFFICE) as client:
            receipts = await client.listen()
            await client.publish_body(
                json.dumps(message).encode(), message_id=str(message["message_id"]),
                routing_key=f"ektp.{KABKOTA}.packet",
            )  # fmt: skip

            async def held() -> str | None:
                status = await status_of(inst.database_url, packet_id)
                return status if status == "ADJUDICATE_RECORD" else None

            await eventually(held, timeout=60, what="the capture held for adjudication at the registry")

            page, requests = await login(browser, suite, "pusat")
            await page.click("#tab-cases")
            row = page.locator(f"#cases tr[data-case='{KABKOTA}/{packet_id}']")
            await expect(row).to_have_count(1, timeout=20_000)
            await row.click()
            await expect(page.locator("#case-title")).to_contain_text(f"{KABKOTA}********")
            candidate = page.locator("#candidates tbody tr").first
            await expect(candidate).to_be_visible()
            await page.check("input[name=decision][value=duplicate]")
            await page.fill("textarea[name=reason]", "wajah sama dengan rekaman lama; sidik jari tidak ada")
            await shot(page, "adjudication-desk-real-case")
            await page.click("#decide button[type=submit]")
            # "Sent", then "Decided" once dedup applied it (which can come before the page shows "Sent")
            await expect(page.locator("#decide-result")).to_contain_text(re.compile("Dikirim|Diputuskan"))

            async def decided() -> str | None:
                status = await status_of(inst.database_url, packet_id)
                return status if status == "DUPLICATE_RECORD" else None

            await eventually(decided, timeout=60, what="the desk's verdict at the registry")
            await expect(page.locator("#decide-result")).to_contain_text("Diputuskan", timeout=20_000)

            async def told() -> list[str] | None:  # the office hears of both moves
                said = [
                    str(r.get("status")) for r in receipts.found.values() if r.get("packet_id") == packet_id
                ]
                return said if "DUPLICATE_RECORD" in said else None

            said = await eventually(told, timeout=60, what="the office's receipt with the verdict")
            await receipts.stop()
        assert "ADJUDICATE_RECORD" in said
        conn = await asyncpg.connect(inst.database_url)
        try:
            audit = await conn.fetchrow(
                "SELECT operator, decision, outcome FROM dedup.adjudication_audit WHERE packet_id = $1",
                packet_id,
            )
            moves = await conn.fetch(
                "SELECT to_status FROM registry.capture_moves WHERE kabkota = $1 AND packet_id = $2 ORDER BY id",
                KABKOTA, packet_id,
            )  # fmt: skip
        finally:
            await conn.close()
        assert audit is not None
        assert (audit["operator"], audit["decision"], audit["outcome"]) == ("pusat", "duplicate", "applied")
        assert [m["to_status"] for m in moves][-2:] == ["ADJUDICATE_RECORD", "DUPLICATE_RECORD"]
        # the desk shows dedup's outcome: decided, a duplicate, by whom
        await expect(row).to_have_class(re.compile(r"\bdecided\b"), timeout=20_000)
        await expect(row).to_contain_text("Ganda (pusat)")
        assert all(url.startswith(suite.monitor_url) for url in requests)
    finally:
        suite.stop("dedup")
        suite.start("dedup")  # the suite's own thresholds again

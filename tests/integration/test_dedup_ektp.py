"""Dedup's e-KTP pipeline on the real broker and database: captures in, verdicts out, the gallery grows."""

from __future__ import annotations

import base64
import os
from datetime import UTC, datetime
from typing import Any

import aio_pika
import aiormq
import numpy as np
import pytest

from services.dedup.app import build_app
from services.dedup.config import Settings
from services.dedup.vault import Vault
from shared import messaging
from shared.contracts import (
    AdjudicationCaseChanged,
    AdjudicationDecision,
    EnrolmentAccepted,
    EnrolmentVerdict,
    derive_message_id,
)
from shared.runtime import Database
from sim import gallery as seeding
from tests.builders import packets
from tests.conftest import Installation
from tests.integration.helpers import eventually, fetchval, purge, running, take
from tests.unit.test_dedup_enrolment import biometrics

pytestmark = pytest.mark.integration
NOW = datetime(2026, 11, 20, 3, 0, tzinfo=UTC)


def accepted(body: dict[str, Any], bio: dict[str, Any], nik: str | None = None) -> EnrolmentAccepted:
    return EnrolmentAccepted(
        message_id=derive_message_id("test", "accepted", body["packet_id"]),
        produced_at=NOW,
        packet_id=body["packet_id"],
        kabkota=body["kabkota"],
        station_id=body["station_id"],
        nik=nik or body["nik"],
        demographics=body["demographics"],
        biometrics=bio,
        captured_at=body["captured_at"],
        received_at=NOW,
    )


async def publish_as_registry(inst: Installation, events: list[EnrolmentAccepted | bytes]) -> None:
    user = inst.url_for("service", "registry")
    connection = await aio_pika.connect(user)
    try:
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        exchange = await channel.get_exchange("events", ensure=False)
        for i, e in enumerate(events):
            raw = e if isinstance(e, bytes) else e.model_dump_json().encode()
            await exchange.publish(
                aio_pika.Message(
                    raw,
                    message_id=e.message_id if not isinstance(e, bytes) else f"junk-{i}",
                    user_id=messaging.broker_user(user),
                    content_type="application/json",
                    delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                ),
                routing_key="registry.accepted.ektp",
            )
    finally:
        await connection.close()


async def test_captures_get_verdicts_and_the_unique_join_the_gallery(installation: Installation) -> None:
    inst = installation
    await purge(inst.admin_url, "dedup.ektp", "consolidator.ektp", "dead.letters")
    key = inst.gallery_key()
    settings = inst.settings("dedup", Settings, retry_backoff_max=0.05, batch_wait=0.2)
    os.environ["DEDUP_GALLERY_KEY"] = key
    try:
        await seeding.seed(inst.database_url, seeding.GallerySpec(300, 12, 300, legacy_share=0))
        people, _ = seeding.identities_of_batch(12, 0, 300)
        rng = np.random.default_rng(5)
        again = seeding.MODEL.capture(rng, people.take(np.array([17])))
        newcomer = seeding.MODEL.capture(rng, seeding.MODEL.identities(rng, 1))
        bodies = packets(3, seed=41)
        for b in bodies:
            b["packet_id"] += "-a"  # packet ids of other tests' days must not collide with these
        events: list[EnrolmentAccepted | bytes] = [
            accepted(bodies[0], biometrics(again, 0)),
            accepted(bodies[1], biometrics(newcomer, 0)),
            accepted(bodies[2], biometrics(newcomer, 0)),
            b"{not json",
        ]
        database = Database.of_service(inst.database_url, "dedup")
        async with running(build_app(settings, database=database)):
            before = await fetchval(inst.database_url, "SELECT count(*) FROM dedup.gallery")
            await publish_as_registry(inst, events)
            got = await take(inst.admin_url, "consolidator.ektp", count=3, timeout=30)
            verdicts = {v.packet_id: v for v in (EnrolmentVerdict.model_validate_json(m.body) for m in got)}
            assert verdicts[bodies[0]["packet_id"]].status == "DUPLICATE_RECORD"
            assert verdicts[bodies[0]["packet_id"]].finding == "one_to_one"
            seeded_17 = await fetchval(
                inst.database_url, "SELECT person_id FROM dedup.gallery WHERE packet_id = 'seed-12-17'"
            )
            assert verdicts[bodies[0]["packet_id"]].candidates[0].person_id == seeded_17
            # the same newcomer twice: whichever is decided first is unique, the other its duplicate
            pair = sorted(
                (verdicts[bodies[1]["packet_id"]], verdicts[bodies[2]["packet_id"]]),
                key=lambda v: v.status != "PRINT_READY_RECORD",
            )
            unique, twin = pair
            assert unique.status == "PRINT_READY_RECORD"
            assert unique.person_id is not None
            assert (twin.status, twin.finding) == ("DUPLICATE_RECORD", "one_to_one")
            assert twin.candidates[0].person_id == unique.person_id
            assert await fetchval(inst.database_url, "SELECT count(*) FROM dedup.gallery") == before + 1
            dead = await take(inst.admin_url, "dead.letters", count=1, timeout=10)
            assert dead[0].headers["x-dead-reason"] == "MESSAGE_NOT_JSON"

            # the same captures again (a redelivery): decided once, nothing added
            await publish_as_registry(inst, events[:3])

            async def decided_once() -> bool:
                return bool(await fetchval(inst.database_url, "SELECT count(*) FROM dedup.verdicts") == 3)

            await eventually(decided_once, what="three verdicts")
            assert await take(inst.admin_url, "consolidator.ektp", count=1, timeout=2) == []
            assert await fetchval(inst.database_url, "SELECT count(*) FROM dedup.gallery") == before + 1
    finally:
        os.environ.pop("DEDUP_GALLERY_KEY", None)


async def test_a_wrong_gallery_key_refuses_to_start(installation: Installation) -> None:
    database = Database.of_service(installation.database_url, "dedup")
    await database.open()
    try:
        from services.dedup import gallery
        from services.dedup.store import PostgresGalleryStore
        from services.dedup.vault import VaultKeyError

        store = PostgresGalleryStore(database)
        await gallery.check_key(store, Vault(base64.b64decode(installation.gallery_key()), gallery.LAYOUT))
        with pytest.raises(VaultKeyError, match="not the key"):
            await gallery.check_key(store, Vault(base64.b64decode(Vault.new_key()), gallery.LAYOUT))
    finally:
        await database.close()


async def publish_command(inst: Installation, role: str, unit: str, cmd: AdjudicationDecision) -> None:
    url = inst.url_for(role, unit)
    connection = await aio_pika.connect(url)
    try:
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        exchange = await channel.get_exchange("commands", ensure=False)
        await exchange.publish(
            aio_pika.Message(
                cmd.model_dump_json().encode(),
                message_id=cmd.message_id,
                user_id=messaging.broker_user(url),
                content_type="application/json",
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            ),
            routing_key=cmd.ROUTING_KEY,
        )
    finally:
        await connection.close()


def decision(body: dict[str, Any], choice: str, n: int = 1) -> AdjudicationDecision:
    return AdjudicationDecision(
        message_id=f"adjudication-{body['packet_id']}-{n}",
        produced_at=NOW,
        kabkota=body["kabkota"],
        packet_id=body["packet_id"],
        decision=choice,
        operator="Operator Pusat 7",
        reason="face and both index fingers compared by hand",
    )


async def cases_of(inst: Installation, count: int) -> list[AdjudicationCaseChanged]:
    """The desk's cases dedup published (the monitor is not running here: they wait in its queue)."""
    found = []
    for m in await take(inst.admin_url, "monitor.status", count=count + 20, timeout=10):
        if m.routing_key == AdjudicationCaseChanged.ROUTING_KEY:
            found.append(AdjudicationCaseChanged.model_validate_json(m.body))
        if len(found) == count:
            break
    return found


async def test_grey_zone_captures_wait_for_the_centre_and_only_the_centre_decides(
    installation: Installation,
) -> None:
    inst = installation
    await purge(
        inst.admin_url, "dedup.ektp", "consolidator.ektp", "dedup.commands", "dead.letters", "monitor.status"
    )
    # thresholds far apart, so that a face alone (one capped comparison) lands in the grey zone
    settings = inst.settings(
        "dedup", Settings, retry_backoff_max=0.05, batch_wait=0.1, duplicate_fpir=1e-30, adjudicate_fpir=1e-2
    )
    os.environ["DEDUP_GALLERY_KEY"] = inst.gallery_key()
    try:
        spec = seeding.GallerySpec(200, 13, 200, legacy_share=0)
        await seeding.seed(inst.database_url, spec)
        # the two people the captures resemble, as the population record knows them (the desk shows it)
        for row, nik in zip((20, 21), spec.niks([20, 21]), strict=True):
            await fetchval(
                inst.database_url,
                "INSERT INTO dedup.population (nik, full_name, sex, birth_date, birth_place, blocks) "
                "VALUES ($1, $2, 'P', '1990-04-02', 'Bandung', '{}')",
                nik,
                f"Penduduk {row}",
            )
        people, _ = seeding.identities_of_batch(13, 0, 200)
        rng = np.random.default_rng(6)
        again = seeding.MODEL.capture(rng, people.take(np.array([20, 21])))
        bodies = packets(2, seed=43)
        for b in bodies:
            b["packet_id"] += "-g"
        face_only = [{**biometrics(again, i), "fingers": [], "irises": []} for i in range(2)]
        events: list[EnrolmentAccepted | bytes] = [accepted(bodies[i], face_only[i]) for i in range(2)]
        database = Database.of_service(inst.database_url, "dedup")
        async with running(build_app(settings, database=database)):
            await publish_as_registry(inst, events)
            got = [
                EnrolmentVerdict.model_validate_json(m.body)
                for m in await take(inst.admin_url, "consolidator.ektp", count=2, timeout=30)
            ]
            assert sorted((v.status, v.finding) for v in got) == [("ADJUDICATE_RECORD", "grey_zone")] * 2
            gallery_before = await fetchval(inst.database_url, "SELECT count(*) FROM dedup.gallery")
            # each case, as the monitor's adjudication desk gets it: masked, scored, never a template
            opened = await cases_of(inst, 2)
            assert {c.packet_id for c in opened} == {b["packet_id"] for b in bodies}
            for case in opened:
                assert (case.state, case.nik_masked[4:12]) == ("opened", "********")
                assert case.candidates
                assert case.candidates[0].face_cosine is not None  # the face was compared
                assert set(case.candidates[0].iris_hd) == {None}  # the eyes were not
                assert "templates" not in case.model_dump_json()
            # each beside the person it resembles, as the population record knows that person
            assert sorted(c.candidates[0].full_name or "" for c in opened) == ["Penduduk 20", "Penduduk 21"]
            assert {(c.candidates[0].sex, c.candidates[0].birth_place) for c in opened} == {("P", "Bandung")}

            # nobody but the centre may send the command: the broker refuses the others
            for role, unit in (("upt", "upt-3273-1"), ("service", "registry"), ("dukcapil", "dukcapil-3273")):
                with pytest.raises(aiormq.exceptions.ChannelAccessRefused):
                    await publish_command(inst, role, unit, decision(bodies[0], "unique", 9))

            # the monitor's desk decides for a logged-in centre operator (its broker user may, and only that)
            await publish_command(inst, "service", "monitor", decision(bodies[0], "duplicate"))
            await publish_command(inst, "pusat", "pusat", decision(bodies[1], "unique"))
            await publish_command(inst, "pusat", "pusat", decision(bodies[1], "duplicate", 2))  # too late
            decided = {
                v.packet_id: v
                for v in (
                    EnrolmentVerdict.model_validate_json(m.body)
                    for m in await take(inst.admin_url, "consolidator.ektp", count=2, timeout=30)
                )
            }
            assert decided[bodies[0]["packet_id"]].status == "DUPLICATE_RECORD"
            closed = {c.packet_id: c for c in await cases_of(inst, 2)}
            assert (closed[bodies[0]["packet_id"]].decision, closed[bodies[0]["packet_id"]].operator) == (
                "duplicate",
                "Operator Pusat 7",
            )
            assert decided[bodies[1]["packet_id"]].status == "PRINT_READY_RECORD"
            assert decided[bodies[1]["packet_id"]].person_id is not None

            async def audited() -> bool:
                n = await fetchval(inst.database_url, "SELECT count(*) FROM dedup.adjudication_audit")
                return bool(n == 3)

            await eventually(audited, what="three audited commands")
            outcomes = await fetchval(
                inst.database_url,
                "SELECT string_agg(outcome || ':' || decision || ':' || operator, ',' ORDER BY id) "
                "FROM dedup.adjudication_audit",
            )
            assert outcomes == (
                "applied:duplicate:Operator Pusat 7,applied:unique:Operator Pusat 7,"
                "already_decided:duplicate:Operator Pusat 7"
            )
            assert (
                await fetchval(inst.database_url, "SELECT count(*) FROM dedup.gallery") == gallery_before + 1
            )
            assert (
                await fetchval(
                    inst.database_url, "SELECT count(*) FROM dedup.adjudications WHERE templates IS NOT NULL"
                )
                == 0
            )
    finally:
        os.environ.pop("DEDUP_GALLERY_KEY", None)


async def test_a_search_that_keeps_failing_ends_in_search_failure_and_spares_the_batch(
    installation: Installation, monkeypatch: pytest.MonkeyPatch
) -> None:
    from services.dedup.enrolment import Engine

    inst = installation
    await purge(inst.admin_url, "dedup.ektp", "consolidator.ektp", "dead.letters")
    settings = inst.settings("dedup", Settings, retry_backoff_max=0.05, batch_wait=0.2, search_attempts=3)
    os.environ["DEDUP_GALLERY_KEY"] = inst.gallery_key()
    decide_batch = Engine.decide_batch

    def failing(self: Engine, batch: list[EnrolmentAccepted]) -> Any:
        if any(p.packet_id.endswith("-broken") for p in batch):
            raise RuntimeError("index unavailable")
        return decide_batch(self, batch)

    monkeypatch.setattr(Engine, "decide_batch", failing)
    try:
        rng = np.random.default_rng(77)
        people = seeding.MODEL.capture(rng, seeding.MODEL.identities(rng, 2))
        bodies = packets(2, seed=77)
        bodies[0]["packet_id"] += "-broken"
        bodies[1]["packet_id"] += "-fine"
        events: list[EnrolmentAccepted | bytes] = [
            accepted(bodies[0], biometrics(people, 0)),
            accepted(bodies[1], biometrics(people, 1)),
        ]
        database = Database.of_service(inst.database_url, "dedup")
        async with running(build_app(settings, database=database)):
            await publish_as_registry(inst, events)
            got = await take(inst.admin_url, "consolidator.ektp", count=2, timeout=60)
            verdicts = {v.packet_id: v for v in (EnrolmentVerdict.model_validate_json(m.body) for m in got)}
            assert verdicts[bodies[1]["packet_id"]].status == "PRINT_READY_RECORD"
            failed = verdicts[bodies[0]["packet_id"]]
            assert failed.status == "SEARCH_FAILURE_AT_CENTRAL"
            assert failed.finding.startswith("search_failed: RuntimeError: index unavailable")
            assert "after 3 attempts" in failed.finding
            assert await take(inst.admin_url, "dead.letters", count=1, timeout=1) == []
    finally:
        os.environ.pop("DEDUP_GALLERY_KEY", None)

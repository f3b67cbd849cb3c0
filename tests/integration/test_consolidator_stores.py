"""The consolidator's fake stores (dicts) against its PostgreSQL stores: the same calls, the same answers."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from services.consolidator.domain.ektp import CaptureDecision, CaptureState, Move
from services.consolidator.domain.links import LinkTarget
from services.consolidator.store import LinkFields, UnitOfWork, postgres_unit_of_work
from shared import db
from shared.runtime import Database
from tests.conftest import Installation
from tests.fakes import FakeCentre

pytestmark = pytest.mark.integration
AT = datetime(2026, 11, 20, 3, 0, tzinfo=UTC)
NIK, OTHER = "3273011503850001", "3273011503850002"


@pytest.fixture(params=["fake", "postgres"])
async def unit_of_work(
    request: pytest.FixtureRequest, installation: Installation
) -> AsyncIterator[UnitOfWork]:
    if request.param == "fake":
        yield FakeCentre().unit_of_work()
        return
    url = db.with_database(installation.database_url, f"simpul_scratch_{uuid.uuid4().hex[:8]}")
    await db.ensure_database(url)
    database = Database.of_service(url, "consolidator")
    await database.open()
    try:
        yield postgres_unit_of_work(database)
    finally:
        await database.close()
        await db.drop_database(url)


def capture(status: str, *, nik: str | None = NIK, person: int | None = None) -> CaptureDecision:
    state = CaptureState("3273", "P1", status, AT, nik, person, ("CAPTURE_UNKNOWN:SENT_FOR_DEDUP",))
    move = Move(0, "SENT_FOR_DEDUP", status, AT, None, False, False)
    return CaptureDecision(state, (move,), finding="unique", verdict={"finding": "unique"})


async def test_a_message_is_claimed_once(unit_of_work: UnitOfWork) -> None:
    async with unit_of_work() as tx:
        assert await tx.claim("consolidator.sdp", "m1")
    async with unit_of_work() as tx:
        assert not await tx.claim("consolidator.sdp", "m1")
        assert await tx.claim("consolidator.ektp", "m1")  # another consumer's inbox


async def test_a_capture_reads_back_as_saved_and_a_failed_unit_leaves_nothing(
    unit_of_work: UnitOfWork,
) -> None:
    async with unit_of_work() as tx:
        assert await tx.load_capture("3273", "P1") is None
        await tx.save_capture(capture("PRINT_READY_RECORD"), "m1")
    async with unit_of_work() as tx:
        assert await tx.load_capture("3273", "P1") == capture("PRINT_READY_RECORD").state

    async def failing() -> None:
        async with unit_of_work() as tx:
            await tx.save_capture(capture("CARD_PRINTED"), "m2")
            raise RuntimeError("the transaction fails")

    with pytest.raises(RuntimeError):
        await failing()
    async with unit_of_work() as tx:
        found = await tx.load_capture("3273", "P1")
        assert found is not None
        assert found.status == "PRINT_READY_RECORD"


async def test_two_messages_of_a_new_capture_do_not_overwrite_each_other(unit_of_work: UnitOfWork) -> None:
    """The registry's status event and dedup's verdict of a capture not seen yet, handled at once: the second
    reads the capture only once the first has saved it (before, its insert put its NULL NIK over the other's)."""
    first_loaded, second_loaded = asyncio.Event(), asyncio.Event()

    async def verdict() -> None:
        async with unit_of_work() as tx:
            assert await tx.load_capture("3273", "P1") is None
            first_loaded.set()
            await asyncio.sleep(0.3)  # the status event is being handled meanwhile
            assert not second_loaded.is_set()
            await tx.save_capture(capture("PRINT_READY_RECORD"), "verdict")

    async def status_event() -> CaptureState | None:
        await first_loaded.wait()
        async with unit_of_work() as tx:
            found = await tx.load_capture("3273", "P1")
            second_loaded.set()
            return found

    _, seen = await asyncio.gather(verdict(), status_event())
    assert seen == capture("PRINT_READY_RECORD").state


async def test_persons_by_nik_are_made_once_and_links_read_back(unit_of_work: UnitOfWork) -> None:
    async with unit_of_work() as tx:
        assert await tx.person_with_nik(NIK, create=False) is None
        holder = await tx.person_with_nik(NIK, create=True)
        assert holder is not None
        assert await tx.person_with_nik(NIK, create=True) == holder
        other = await tx.person_with_nik(OTHER, create=True)
        assert other is not None
        assert other != holder
        await tx.person_changed(holder, ["ektp"], "m1")
    async with unit_of_work() as tx:
        assert await tx.load_link_target(holder) == LinkTarget(holder, NIK, None)
        await tx.merge_persons(
            other, holder, reason="probable_nik_confirmed", cause="m2", confirmed_by="Siti"
        )
        await tx.record_link("m2", "pusat", other, LinkFields(NIK, "Siti", "confirmed", "merge"))
    async with unit_of_work() as tx:
        assert await tx.load_link_target(other) == LinkTarget(other, OTHER, holder)
        assert await tx.load_link_target(10_000) is None

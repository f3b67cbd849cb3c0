"""Consolidator: checked parts become central records; newer dedup flag sets win."""

from datetime import date
from typing import Any

from faststream.rabbit import RabbitBroker

from services.consolidator import domain
from services.consolidator.app import build_app
from services.consolidator.config import Settings
from shared.contracts import (
    CentralInmatesUpdated,
    InmateFlag,
    InmateFlagCode,
    InmateFlagSet,
    InmateRecord,
    Message,
    SdpRecordsChecked,
)
from tests.builders import NOW, inmate
from tests.fakes import FakeInmateStore
from tests.unit.harness import in_memory, publish_event

SETTINGS = Settings(amqp_url="amqp://svc-consolidator:secret@localhost:5672/simpul", health_port=0)


def flag_set(upt: str, inmate_id: str, *counterparts: tuple[str, str]) -> InmateFlagSet:
    return InmateFlagSet(
        upt_id=upt,
        inmate_id=inmate_id,
        flags=[
            InmateFlag(
                code=InmateFlagCode.NIK_CLAIMED_BY_ANOTHER_PERSON,
                counterpart_upt_id=u,
                counterpart_inmate_id=i,
            )
            for u, i in counterparts
        ],
    )


def checked(
    upt: str, records: list[dict[str, Any]], seq: int, sets: list[InmateFlagSet], n: int = 1
) -> SdpRecordsChecked:
    return SdpRecordsChecked(
        message_id=f"chk-{upt}-{n}",
        produced_at=NOW,
        submission_id=f"sub-{upt}-{n}",
        upt_id=upt,
        as_of=date(2026, 11, 20),
        snapshot=1,
        part=1,
        parts=1,
        records=[InmateRecord.model_validate(r) for r in records],
        flag_seq=seq,
        flag_sets=sets,
    )


async def publish(broker: RabbitBroker, event: Message, user: str = "svc-dedup") -> None:
    await publish_event(broker, event, user=user)


def test_flag_rows_carry_the_sequence_number() -> None:
    rows = domain.flag_rows([flag_set("upt-a", "1", ("upt-b", "9"))], 7)
    assert rows == [
        (
            "upt-a",
            "1",
            [
                {
                    "code": "NIK_CLAIMED_BY_ANOTHER_PERSON",
                    "counterpart_upt_id": "upt-b",
                    "counterpart_inmate_id": "9",
                }
            ],
            7,
        )
    ]
    assert domain.touched_units("upt-b", [flag_set("upt-a", "1")]) == ["upt-a", "upt-b"]


async def test_records_become_central_and_totals_are_announced_for_every_touched_upt() -> None:
    store = FakeInmateStore()
    a1 = inmate(inmate_id="1")
    async with in_memory(build_app(SETTINGS, store=store)) as (broker, _spies):
        await publish(broker, checked("upt-a", [a1], 1, [flag_set("upt-a", "1")]))
        b9 = inmate(inmate_id="9")
        await publish(
            broker,
            checked(
                "upt-b",
                [b9],
                2,
                [flag_set("upt-a", "1", ("upt-b", "9")), flag_set("upt-b", "9", ("upt-a", "1"))],
                n=2,
            ),
        )
    assert set(store.inmates) == {("upt-a", "1"), ("upt-b", "9")}
    updates = [o.message for o in store.outbox if isinstance(o.message, CentralInmatesUpdated)]
    assert [(u.upt_id, u.upserted, u.central_total, u.flagged_total) for u in updates] == [
        ("upt-a", 1, 1, 0),
        ("upt-a", 0, 1, 1),
        ("upt-b", 1, 1, 1),
    ]


async def test_an_older_flag_set_arriving_late_does_not_undo_a_newer_one() -> None:
    store = FakeInmateStore()
    async with in_memory(build_app(SETTINGS, store=store)) as (broker, _):
        await publish(
            broker, checked("upt-b", [inmate(inmate_id="9")], 5, [flag_set("upt-a", "1", ("upt-b", "9"))])
        )
        await publish(broker, checked("upt-a", [inmate(inmate_id="1")], 3, [flag_set("upt-a", "1")], n=2))
    assert store.flags[("upt-a", "1")][0] == 5
    assert store.flags[("upt-a", "1")][1]


async def test_checked_parts_are_only_believed_from_dedup() -> None:
    store = FakeInmateStore()
    async with in_memory(build_app(SETTINGS, store=store)) as (broker, spies):
        await publish(broker, checked("upt-a", [inmate()], 1, []), user="svc-registry")
    assert spies.dead_reasons() == ["SENDER_NOT_ALLOWED"]
    assert store.inmates == {}

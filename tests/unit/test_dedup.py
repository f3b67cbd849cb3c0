"""Dedup: a NIK claimed by two different people is flagged on both records, within or across UPTs."""

from collections.abc import Sequence
from datetime import date

from faststream.rabbit import RabbitBroker

from services.dedup import domain
from services.dedup.app import build_app
from services.dedup.config import Settings
from services.dedup.domain import linkage
from shared.contracts import InmateRecord, Message, SdpRecordsAccepted, SdpRecordsChecked
from tests.builders import NOW, inmate
from tests.fakes import FakeClaimStore
from tests.unit.harness import in_memory, publish_event

SETTINGS = Settings(amqp_url="amqp://svc-dedup:secret@localhost:5672/simpul", health_port=0)
NIK = "3273011503850007"


def claim(upt: str, inmate_id: str, nik: str = NIK, person: str = "BUDI|1985-03-15") -> domain.Claim:
    return domain.Claim(upt, inmate_id, nik, person)


def flagged(sets: list) -> dict[tuple[str, str], list[tuple[str, str]]]:  # type: ignore[type-arg]
    return {
        (s.upt_id, s.inmate_id): [(f.counterpart_upt_id, f.counterpart_inmate_id) for f in s.flags]
        for s in sets
    }


def test_names_are_compared_without_case_accents_or_punctuation() -> None:
    assert domain.normalise_name("  Dédi  Kurniawan, S.H. ") == "DEDI KURNIAWAN S H"
    assert domain.person_key("budi", date(1985, 3, 15)) == domain.person_key("BUDI ", date(1985, 3, 15))


def test_two_people_claiming_one_nik_are_both_flagged() -> None:
    existing = [claim("upt-a", "1")]
    sets = domain.flag_sets([("upt-b", "9")], [claim("upt-b", "9", person="SITI|1990-01-01")], existing)
    assert flagged(sets) == {("upt-a", "1"): [("upt-b", "9")], ("upt-b", "9"): [("upt-a", "1")]}


def test_the_same_person_in_two_upts_is_not_a_collision() -> None:
    sets = domain.flag_sets([("upt-b", "9")], [claim("upt-b", "9")], [claim("upt-a", "1")])
    assert all(not s.flags for s in sets)


def test_a_collision_inside_one_part_is_flagged() -> None:
    batch = [claim("upt-a", "1"), claim("upt-a", "2", person="SITI|1990-01-01")]
    sets = domain.flag_sets([("upt-a", "1"), ("upt-a", "2")], batch, [])
    assert flagged(sets) == {("upt-a", "1"): [("upt-a", "2")], ("upt-a", "2"): [("upt-a", "1")]}


def test_a_corrected_nik_clears_both_sides() -> None:
    existing = [claim("upt-a", "1"), claim("upt-b", "9", person="SITI|1990-01-01")]
    corrected = claim("upt-b", "9", nik="3273015501900003", person="SITI|1990-01-01")
    sets = domain.flag_sets([("upt-b", "9")], [corrected], existing)
    assert flagged(sets) == {("upt-a", "1"): [], ("upt-b", "9"): []}


def test_a_record_that_lost_its_nik_loses_its_flags() -> None:
    existing = [claim("upt-a", "1"), claim("upt-b", "9", person="SITI|1990-01-01")]
    sets = domain.flag_sets([("upt-b", "9")], [], existing)
    assert flagged(sets) == {("upt-a", "1"): [], ("upt-b", "9"): []}


def accepted(upt: str, records: list[dict], n: int = 1) -> SdpRecordsAccepted:  # type: ignore[type-arg]
    return SdpRecordsAccepted(
        message_id=f"acc-{upt}-{n}",
        produced_at=NOW,
        submission_id=f"sub-{upt}-{n}",
        upt_id=upt,
        as_of=date(2026, 11, 20),
        snapshot=1,
        part=1,
        parts=1,
        records=[InmateRecord.model_validate(r) for r in records],
    )


async def publish(broker: RabbitBroker, event: Message, user: str = "svc-registry") -> None:
    await publish_event(broker, event, user=user)


async def test_the_handler_flags_a_nik_shared_across_upts_and_passes_every_record_on() -> None:
    store = FakeClaimStore()
    async with in_memory(build_app(SETTINGS, store=store)) as (broker, spies):
        await publish(broker, accepted("upt-a", [inmate(nik=NIK, full_name="Budi"), inmate(nik=None)]))
        await publish(broker, accepted("upt-b", [inmate(nik=NIK, full_name="Siti", sex="P")]))
    first, second = [o.message for o in store.outbox if isinstance(o.message, SdpRecordsChecked)]
    assert len(first.records) == 2
    assert all(not s.flags for s in first.flag_sets)
    assert second.flag_seq > first.flag_seq
    assert {(s.upt_id, bool(s.flags)) for s in second.flag_sets} == {("upt-a", True), ("upt-b", True)}
    assert [o.routing_key for o in store.outbox].count("status.dedup.sdp") == 1
    assert spies.dead == []


async def test_records_are_only_believed_from_the_registry() -> None:
    store = FakeClaimStore()
    async with in_memory(build_app(SETTINGS, store=store)) as (broker, spies):
        await publish(broker, accepted("upt-a", [inmate()]), user="upt-3273-1")
    assert spies.dead_reasons() == ["SENDER_NOT_ALLOWED"]
    assert store.outbox == []


async def test_a_redelivered_event_is_decided_once() -> None:
    store = FakeClaimStore()
    event = accepted("upt-a", [inmate()])
    async with in_memory(build_app(SETTINGS, store=store)) as (broker, _):
        await publish(broker, event)
        await publish(broker, event)
    assert len(store.outbox) == 1


class FakePopulation:
    """The population record in memory, blocked the way the database store blocks it."""

    def __init__(self, people: list[linkage.Person]) -> None:
        self.people = people

    async def holders(self, niks: Sequence[str]) -> dict[str, linkage.Person]:
        return {p.nik: p for p in self.people if p.nik is not None and p.nik in niks}

    async def blocked(self, keys: Sequence[str]) -> list[tuple[linkage.Person, frozenset[str]]]:
        out = []
        for p in self.people:
            blocks = linkage.blocking_keys(p)
            if blocks & set(keys):
                out.append((p, blocks))
        return out


async def test_inmates_are_checked_against_the_population_record() -> None:
    holder = linkage.Person(NIK, "Joko Susilo", "L", date(1985, 3, 15), "Sleman", "Sri Wahyuni")
    other = linkage.Person("3404015503850002", "Siti Aminah", "P", date(1985, 3, 15), "Sleman", None)
    population = FakePopulation([holder, other])
    store = FakeClaimStore()
    records = [
        inmate(nik=NIK, full_name="Djoko Soesilo", birth_date="1985-03-15"),  # old spelling: agrees
        inmate(nik=NIK, full_name="Budi Santoso", birth_date="1985-03-15"),  # another name on the NIK
        inmate(nik="3404010101900003", full_name="Agus", birth_date="1990-01-01"),  # nobody holds it
        inmate(nik=None, full_name="H. Djoko Soesilo", birth_date="1985-03-15", birth_place="Sleman"),
        inmate(nik=None, full_name="Yohanes Kurniawan", birth_date="1970-06-01"),  # not in the record
    ]
    async with in_memory(build_app(SETTINGS, store=store, population=population)) as (broker, _):
        await publish(broker, accepted("upt-a", records))
    (checked,) = [o.message for o in store.outbox if isinstance(o.message, SdpRecordsChecked)]
    by_id = {c.inmate_id: c for c in checked.population_checks}
    ids = [r["inmate_id"] for r in records]
    assert by_id[ids[0]].codes == []
    assert by_id[ids[1]].codes == [linkage.NIK_NAME_DIFFERS]
    assert by_id[ids[2]].codes == [linkage.NIK_NOT_IN_POPULATION]
    linked = by_id[ids[3]]
    assert linked.candidates[0].nik == NIK
    assert linked.probable_nik == NIK
    assert all(c.nik != other.nik for c in linked.candidates)
    assert by_id[ids[4]].candidates == []
    assert by_id[ids[4]].probable_nik is None

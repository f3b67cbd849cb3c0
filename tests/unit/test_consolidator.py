"""Consolidator handlers on the in-memory broker: parts staged, captures followed, run commands answered."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from faststream.rabbit import RabbitBroker

from services.consolidator.app import build_app
from services.consolidator.config import Settings
from services.consolidator.consolidation import Announce, RunRow
from services.consolidator.domain.detention import DetentionRule
from services.consolidator.domain.report import RunReport, UptLine
from services.consolidator.domain.runs import RunPolicy, RunRequest
from services.consolidator.worker import RunWorker
from shared import db, messaging
from shared.contracts import (
    ConsolidationRunReported,
    ConsolidationRunRequested,
    EnrolmentVerdict,
    InmateRecord,
    Message,
    PacketStatusChanged,
    ReceiptStatus,
    SdpRecordsChecked,
    StatusMove,
    SubmissionProcessed,
)
from shared.ektp import EktpStatus as S
from shared.units import Units
from tests.builders import AS_OF, NOW, inmate
from tests.fakes import FakeCentre
from tests.unit.harness import Spies, in_memory, publish_event

SETTINGS = Settings(
    amqp_url="amqp://svc-consolidator:secret@localhost:5672/simpul", health_port=0, consolidation_schedule=""
)


@dataclass
class FakeRuns:
    """Run requests and runs as a dict; executing steps is PostgreSQL's job (integration tests)."""

    requests: dict[str, dict[str, Any]] = field(default_factory=dict)
    runs: dict[str, RunRow] = field(default_factory=dict)
    outbox: list[db.Outgoing] = field(default_factory=list)

    async def load_reference(self, units: Units, rules: Sequence[DetentionRule]) -> None:
        pass

    async def record_request(
        self, message_id: str, publisher: str, fields: dict[str, Any], outgoing: Sequence[db.Outgoing]
    ) -> bool:
        if message_id in self.requests:
            return False
        self.requests[message_id] = {"publisher": publisher, **fields}
        self.outbox += outgoing
        return True

    async def open_run(self, request: RunRequest, outgoing: Sequence[db.Outgoing]) -> RunRow:
        if request.run_id not in self.runs:
            self.runs[request.run_id] = RunRow(
                request.run_id, request.day, request.trigger, request.requested_by, "running", 0
            )
            self.outbox += outgoing
        return self.runs[request.run_id]

    async def run(self, run_id: str) -> RunRow | None:
        return self.runs.get(run_id)

    async def unfinished(self) -> list[str]:
        return []

    async def ran(self, day: date, trigger: str) -> bool:
        return False

    async def execute_step(self, run: RunRow, index: int, policy: RunPolicy, announce: Announce) -> None:
        raise NotImplementedError

    async def fail(self, run_id: str, error: str, outgoing: Sequence[db.Outgoing]) -> None:
        raise NotImplementedError

    async def refresh_statistics(self) -> None:
        pass

    async def load_report(self, run_id: str) -> RunReport | None:
        return None

    async def load_lines(self, run_id: str) -> list[UptLine]:
        return []

    async def feed_pending(self, batch: int = 5_000) -> int:
        return 0

    async def prune(self, keep_days: int) -> int:
        return 0

    async def central_totals(self, run_id: str) -> list[tuple[str, int, int]]:
        return []

    async def line_breakdowns(self, run_id: str) -> dict[str, dict[str, dict[str, int]]]:
        return {}

    @asynccontextmanager
    async def exclusive(self, run_id: str) -> AsyncIterator[bool]:
        yield False


@asynccontextmanager
async def consolidator() -> AsyncIterator[tuple[RabbitBroker, Spies, FakeCentre, FakeRuns]]:
    centre, runs = FakeCentre(), FakeRuns()
    app = build_app(SETTINGS, unit_of_work=centre.unit_of_work(), runs_store=runs, clock=lambda: NOW)
    async with in_memory(app) as (broker, spies):
        yield broker, spies, centre, runs


def checked(
    upt: str, records: list[dict[str, Any]], n: int, *, part: int = 1, parts: int = 1
) -> SdpRecordsChecked:
    return SdpRecordsChecked(
        message_id=f"chk-{upt}-{n}", produced_at=NOW, submission_id=f"sub-{upt}-{part}", upt_id=upt,
        as_of=AS_OF, snapshot=1, part=part, parts=parts,
        records=[InmateRecord.model_validate(r) for r in records], flag_seq=n,
    )  # fmt: skip


async def test_checked_parts_are_staged_once_and_a_new_copy_of_a_part_replaces_its_rows() -> None:
    async with consolidator() as (broker, _, centre, _runs):
        first = [inmate(inmate_id="1"), inmate(inmate_id="2")]
        await publish_event(broker, checked("upt-a", first, 1), user="svc-dedup")
        await publish_event(broker, checked("upt-a", first, 1), user="svc-dedup")  # redelivered
        assert sorted(k[3] for k in centre.rows) == ["1", "2"]
        await publish_event(broker, checked("upt-a", [inmate(inmate_id="3")], 2), user="svc-dedup")
    assert sorted(k[3] for k in centre.rows) == ["3"]
    assert centre.parts[("upt-a", AS_OF, 1, 1)]["checked"] is True


async def test_checked_parts_are_only_believed_from_dedup_and_part_answers_only_from_the_registry() -> None:
    async with consolidator() as (broker, spies, centre, _runs):
        await publish_event(broker, checked("upt-a", [inmate()], 1), user="svc-registry")
        answer = SubmissionProcessed(
            message_id="st-1", produced_at=NOW, submission_id="s", upt_id="upt-a", as_of=AS_OF, snapshot=1,
            part=1, parts=1, status=ReceiptStatus.ACCEPTED, received=1, accepted=1, rejected=0, warnings=0,
        )  # fmt: skip
        await publish_event(broker, answer, user="svc-dedup")
    assert spies.dead_reasons() == ["SENDER_NOT_ALLOWED", "SENDER_NOT_ALLOWED"]
    assert centre.rows == {}
    assert centre.parts == {}


async def test_a_refused_resend_of_a_part_never_undoes_the_kept_one() -> None:
    def answer(n: int, stored: bool) -> SubmissionProcessed:
        return SubmissionProcessed.model_validate(
            {"message_id": f"st-{n}", "produced_at": NOW, "submission_id": f"s{n}", "upt_id": "upt-a",
             "as_of": AS_OF, "snapshot": 1, "part": 1, "parts": 1, "received": 3, "accepted": 3 if stored else 0,
             "rejected": 0 if stored else 3, "warnings": 0, "status": "accepted" if stored else "rejected",
             "snapshot_state": {"parts": 1, "parts_received": 1, "complete": True} if stored else None}
        )  # fmt: skip

    async with consolidator() as (broker, _, centre, _runs):
        await publish_event(broker, answer(1, True), user="svc-registry")
        await publish_event(broker, answer(2, False), user="svc-registry")
    assert centre.parts[("upt-a", AS_OF, 1, 1)]["accepted"] == 3


def status(packet: str, n: int, *moves: tuple[S, S, int]) -> PacketStatusChanged:
    return PacketStatusChanged(
        message_id=f"st-{packet}-{n}", produced_at=NOW, packet_id=packet, kabkota="3273", status=moves[-1][1],
        moves=[StatusMove(from_status=a, to_status=b, at=NOW + timedelta(minutes=m)) for a, b, m in moves],
    )  # fmt: skip


def verdict(packet: str, state: S, finding: str, nik: str = "3273011503850001") -> EnrolmentVerdict:
    return EnrolmentVerdict(
        message_id=f"v-{packet}", produced_at=NOW, packet_id=packet, kabkota="3273", nik=nik, status=state,
        finding=finding, gallery_size=5, duplicate_threshold=9.0, adjudicate_threshold=5.0, decided_at=NOW,
    )  # fmt: skip


async def test_a_unique_capture_becomes_a_person_published_once_and_its_later_moves_follow_it() -> None:
    async with consolidator() as (broker, _, centre, _runs):
        await publish_event(
            broker, status("P1", 1, (S.SENT_FOR_ENROLLMENT, S.RECEIVED_AT_CENTRAL, 0),
                           (S.RECEIVED_AT_CENTRAL, S.SENT_FOR_DEDUP, 0)), user="svc-registry",
        )  # fmt: skip
        assert centre.persons == {}  # no NIK known yet, nothing central to change
        await publish_event(broker, verdict("P1", S.PRINT_READY_RECORD, "unique"), user="svc-dedup")
        await publish_event(broker, verdict("P1", S.PRINT_READY_RECORD, "unique"), user="svc-dedup")  # again
        await publish_event(
            broker, status("P1", 2, (S.SENT_FOR_DEDUP, S.PRINT_READY_RECORD, 5)), user="svc-registry"
        )
    assert centre.persons == {1: {"nik": "3273011503850001", "version": 2}}
    assert [(pid, version, changed) for pid, version, changed, _ in centre.feed] == [
        (1, 1, ["ektp"]),
        (1, 2, ["ektp"]),
    ]
    capture = centre.captures[("3273", "P1")]
    assert (capture.state.status, capture.finding, capture.state.person_id) == (
        "PRINT_READY_RECORD",
        "unique",
        1,
    )
    assert len(centre.moves) == 3


async def test_a_duplicate_capture_makes_no_person_and_an_unknown_capture_is_kept_and_marked() -> None:
    async with consolidator() as (broker, spies, centre, _runs):
        await publish_event(broker, verdict("P2", S.DUPLICATE_RECORD, "one_to_one"), user="svc-dedup")
        await publish_event(
            broker, status("P3", 1, (S.SENT_FOR_DEDUP, S.REQUEST_VALIDATION, 0)), user="svc-registry"
        )
    assert centre.persons == {}
    assert centre.captures[("3273", "P3")].state.anomalies == ("CAPTURE_UNKNOWN:SENT_FOR_DEDUP",)
    assert spies.dead == []


def run_command(day: date | str, n: int = 1) -> dict[str, Any]:
    return {"message_id": f"cmd-{n}", "produced_at": NOW.isoformat(), "day": str(day), "requested_by": "Siti",
            "reason": "harian"}  # fmt: skip


async def send_command(broker: RabbitBroker, body: dict[str, Any], user: str) -> None:
    import json

    await broker.publish(
        json.dumps(body).encode(), exchange=messaging.COMMANDS, routing_key=ConsolidationRunRequested.ROUTING_KEY,
        message_id=body["message_id"], user_id=user, content_type="application/json",
    )  # fmt: skip


def run_events(outbox: Sequence[db.Outgoing]) -> list[Message]:
    return [o.message for o in outbox if isinstance(o.message, ConsolidationRunReported)]


async def test_a_run_command_from_anyone_but_the_centre_is_refused_recorded_and_answered() -> None:
    async with consolidator() as (broker, spies, _centre, runs):
        await send_command(broker, run_command(AS_OF, 1), user="kanwil-32")
        await send_command(
            broker, run_command(date(2026, 11, 21), 2), user="pusat"
        )  # tomorrow (NOW is the 20th)
        await send_command(broker, run_command("2026-13-01", 3), user="pusat")  # not a date
        await send_command(broker, run_command(AS_OF, 4), user="pusat")
    assert runs.requests["cmd-1"]["refused"] == "RUN_NOT_CENTRE"
    assert runs.requests["cmd-2"]["refused"] == "RUN_DAY_IN_FUTURE"
    assert spies.dead_reasons() == ["MESSAGE_SCHEMA"]
    events = run_events(runs.outbox)
    assert [(e.state, e.code) for e in events if isinstance(e, ConsolidationRunReported)] == [
        ("failed", "RUN_NOT_CENTRE"),
        ("failed", "RUN_DAY_IN_FUTURE"),
        ("started", None),
    ]
    assert list(runs.runs) == [runs.requests["cmd-4"]["run_id"]]
    assert runs.runs[runs.requests["cmd-4"]["run_id"]].requested_by == "Siti"


def link(n: int, central_id: str, nik: str) -> dict[str, Any]:
    return {"message_id": f"link-{n}", "produced_at": NOW.isoformat(), "central_id": central_id, "nik": nik,
            "operator": "Siti", "reason": "probable_nik confirmed by phone with Dukcapil"}  # fmt: skip


async def send_link(broker: RabbitBroker, body: dict[str, Any], user: str) -> None:
    import json

    await broker.publish(
        json.dumps(body).encode(), exchange=messaging.COMMANDS, routing_key="command.person.link",
        message_id=body["message_id"], user_id=user, content_type="application/json",
    )  # fmt: skip


async def test_the_centre_confirms_a_probable_nik_and_the_two_records_become_one() -> None:
    nik = "3273011503850001"
    async with consolidator() as (broker, spies, centre, _runs):
        centre.persons |= {1: {"nik": None, "version": 1}, 2: {"nik": nik, "version": 1},
                           3: {"nik": None, "version": 1}}  # fmt: skip
        await send_link(broker, link(1, "C1", nik), user="upt-3273-1")  # not the centre
        assert centre.merges == {}
        await send_link(broker, link(2, "C1", nik), user="pusat")
        await send_link(broker, link(2, "C1", nik), user="pusat")  # redelivered
        await send_link(broker, link(3, "C3", "3273011503850002"), user="pusat")  # nobody holds it yet
        await send_link(broker, link(4, "C9", nik), user="pusat")
        await send_link(broker, link(5, "C1", nik), user="pusat")  # merged away already
    assert centre.merges == {1: (2, "probable_nik_confirmed", "Siti")}
    assert centre.persons[3]["nik"] == "3273011503850002"
    outcomes = {m: f.outcome for m, (_, _, f) in centre.links.items()}
    assert outcomes == {"link-1": "LINK_NOT_CENTRE", "link-2": "merge", "link-3": "set_nik",
                        "link-4": "PERSON_UNKNOWN", "link-5": "PERSON_MERGED"}  # fmt: skip
    assert [(pid, changed) for pid, _, changed, _ in centre.feed] == [
        (1, ["merged"]),
        (2, ["episodes", "merged"]),
        (3, ["identity"]),
    ]
    assert spies.dead == []


async def test_a_command_that_arrives_during_a_pass_starts_the_next_pass_at_once() -> None:
    class Recording(RunWorker):
        def __init__(self) -> None:
            super().__init__(None, interval=60)  # type: ignore[arg-type]
            self.passes = 0
            self.in_pass, self.second = asyncio.Event(), asyncio.Event()

        async def pass_once(self) -> int:
            self.passes += 1
            self.in_pass.set()
            if self.passes == 2:
                self.second.set()
            await asyncio.sleep(0.05)  # a pass long enough for the command to arrive during it
            return 0

    worker = Recording()
    worker.start()
    try:
        await asyncio.wait_for(worker.in_pass.wait(), 1)
        worker.wake()  # the handler of a run command, while the first pass is still going
        await asyncio.wait_for(worker.second.wait(), 1)  # not at the 60 s tick
    finally:
        await worker.stop()


async def test_a_checked_part_that_is_not_json_or_not_the_contract_is_dead_lettered_and_the_next_one_staged() -> (
    None
):
    """The queue of whole parts decodes straight from the bytes (messaging.decoded_as): a bad body is still
    answered as the default decoding answers it, and the valid part after it goes through."""
    async with consolidator() as (broker, spies, centre, _runs):
        for n, body in enumerate((b"\x00not json", b'{"message_id": "bad-2", "records": "many"}'), start=1):
            await broker.publish(
                body, exchange=messaging.EVENTS, routing_key=SdpRecordsChecked.ROUTING_KEY,
                message_id=f"bad-{n}", user_id="svc-dedup", content_type="application/json",
            )  # fmt: skip
        await publish_event(broker, checked("upt-a", [inmate(inmate_id="1")], 1), user="svc-dedup")
    assert spies.dead_reasons() == ["MESSAGE_NOT_JSON", "MESSAGE_SCHEMA"]
    assert sorted(k[3] for k in centre.rows) == ["1"]

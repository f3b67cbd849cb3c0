"""The consolidator's pure rules: who may run, shrunken snapshots, transfers, identities, capture histories."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import pytest

from services.consolidator.domain import ektp, runs, sdp
from shared.contracts import (
    ConsolidationRunRequested,
    EnrolmentVerdict,
    InmateRecord,
    PacketStatusChanged,
    SdpRecordsChecked,
    StatusMove,
)
from shared.ektp import EktpStatus as S
from tests.builders import NOW, inmate

TODAY = date(2026, 11, 20)
POLICY = runs.RunPolicy(max_loss=0.2, transfer_window_days=7, keep_days=30, schedule=time(15, 0))


def command(day: date = TODAY, message_id: str = "cmd-1") -> ConsolidationRunRequested:
    return ConsolidationRunRequested(
        message_id=message_id, produced_at=NOW, day=day, requested_by="Siti", reason="harian"
    )


def test_only_the_centre_runs_and_only_a_day_that_has_happened_and_is_still_kept() -> None:
    assert isinstance(
        runs.decide_run_request(command(), from_centre=True, today=TODAY, policy=POLICY), runs.RunRequest
    )
    refused = runs.decide_run_request(command(), from_centre=False, today=TODAY, policy=POLICY)
    assert isinstance(refused, runs.Refusal)
    assert refused.problem.code == "RUN_NOT_CENTRE"
    future = runs.decide_run_request(
        command(TODAY + timedelta(days=1)), from_centre=True, today=TODAY, policy=POLICY
    )
    assert isinstance(future, runs.Refusal)
    assert future.problem.code == "RUN_DAY_IN_FUTURE"
    old = runs.decide_run_request(
        command(TODAY - timedelta(days=31)), from_centre=True, today=TODAY, policy=POLICY
    )
    assert isinstance(old, runs.Refusal)
    assert old.problem.code == "RUN_DAY_TOO_OLD"


def test_the_same_command_names_the_same_run_and_another_command_another() -> None:
    one = runs.decide_run_request(command(), from_centre=True, today=TODAY, policy=POLICY)
    same = runs.decide_run_request(command(), from_centre=True, today=TODAY, policy=POLICY)
    other = runs.decide_run_request(command(message_id="cmd-2"), from_centre=True, today=TODAY, policy=POLICY)
    assert isinstance(one, runs.RunRequest)
    assert isinstance(same, runs.RunRequest)
    assert isinstance(other, runs.RunRequest)
    assert one.run_id == same.run_id != other.run_id
    assert one.run_id.startswith("2026-11-20-command-")


def test_the_schedule_runs_once_a_day_from_its_time_in_wib() -> None:
    before = datetime(2026, 11, 20, 7, 59, tzinfo=UTC)  # 14:59 WIB
    at = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
    assert runs.decide_scheduled_run(before, POLICY, ran_today=False) is None
    due = runs.decide_scheduled_run(at, POLICY, ran_today=False)
    assert due is not None
    assert due.day == TODAY
    assert due.trigger == "schedule"
    assert runs.decide_scheduled_run(at, POLICY, ran_today=True) is None
    off = runs.RunPolicy(schedule=None)
    assert runs.decide_scheduled_run(at, off, ran_today=False) is None


@pytest.mark.parametrize(
    ("inmates", "previous", "accepted", "expected"),
    [
        (80, 100, False, "apply"),  # lost exactly 20 %: allowed
        (79, 100, False, "hold"),  # lost more than 20 %
        (50, 100, True, "apply"),  # the centre accepted it
        (0, 100, False, "hold"),  # an empty snapshot never empties a UPT on its own
        (5, 0, False, "apply"),  # nothing to lose yet
        (120, 100, False, "apply"),
    ],
)
def test_a_snapshot_that_lost_too_many_inmates_is_held(
    inmates: int, previous: int, accepted: bool, expected: str
) -> None:
    assert runs.decide_snapshot(inmates, previous, max_loss=0.2, accepted=accepted) == expected


def test_a_departure_is_a_transfer_within_the_window_in_transit_meanwhile_then_a_release() -> None:
    left = date(2026, 11, 10)
    assert runs.classify_departure(left, left + timedelta(days=7), left + timedelta(days=7), 7) == "transfer"
    assert runs.classify_departure(left, left - timedelta(days=3), left, 7) == "transfer"  # seen there first
    assert runs.classify_departure(left, left + timedelta(days=8), left + timedelta(days=8), 7) == "release"
    assert runs.classify_departure(left, None, left + timedelta(days=7), 7) == "in_transit"
    assert runs.classify_departure(left, None, left + timedelta(days=8), 7) == "release"


def test_identity_is_keyed_by_nik_and_a_learned_nik_merges_into_its_holder() -> None:
    nik = "3273011503850001"
    assert runs.decide_identity(None, None, None, None) == runs.IdentityDecision("new", None)
    assert runs.decide_identity(None, None, 7, nik) == runs.IdentityDecision("same", 7)
    assert runs.decide_identity(3, None, None, None) == runs.IdentityDecision("same", 3)
    assert runs.decide_identity(3, None, None, nik) == runs.IdentityDecision("set_nik", 3)
    assert runs.decide_identity(3, None, 7, nik) == runs.IdentityDecision("merge", 7, merged=3)
    assert runs.decide_identity(3, nik, 3, nik) == runs.IdentityDecision("same", 3)
    assert runs.decide_identity(3, "3273011503850002", 7, nik) == runs.IdentityDecision("same", 7)


def test_a_checked_part_is_staged_with_extensions_summed_and_the_population_check() -> None:
    record = inmate(
        inmate_id="X1",
        register="A III",
        sentence_days=None,
        detention_start="2026-10-01",
        extensions=[
            {"granted_by": "Ketua PN", "days": 30, "until": "2026-11-30"},
            {"granted_by": "Ketua PN", "days": 30, "until": "2026-12-30"},
        ],
    )
    checked = SdpRecordsChecked(
        message_id="m1", produced_at=NOW, submission_id="s1", upt_id="upt-3273-1", as_of=TODAY, snapshot=2,
        part=1, parts=3, records=[InmateRecord.model_validate(record)], flag_seq=4,
    )  # fmt: skip
    staged = sdp.decide_staging(checked)
    row = dict(zip(sdp.ROW_COLUMNS, staged.rows[0], strict=True))
    assert (row["extension_days"], row["extended_until"]) == (60, date(2026, 12, 30))
    assert (row["register"], row["snapshot"], row["part"], row["message_id"]) == ("A III", 2, 1, "m1")
    assert staged.parts == 3
    assert staged.flags == ()


def moves(*pairs: tuple[S, S, int]) -> list[StatusMove]:
    return [StatusMove(from_status=a, to_status=b, at=NOW + timedelta(minutes=m)) for a, b, m in pairs]


def change(packet: str, *pairs: tuple[S, S, int], n: int = 1) -> PacketStatusChanged:
    return PacketStatusChanged(
        message_id=f"chg-{packet}-{n}", produced_at=NOW, packet_id=packet, kabkota="3273", status=None,
        moves=moves(*pairs),
    )  # fmt: skip


def test_a_capture_first_heard_of_in_the_middle_is_kept_and_marked_unknown() -> None:
    d = ektp.decide_status_change(None, change("P1", (S.SENT_FOR_DEDUP, S.PRINT_READY_RECORD, 5)))
    assert d is not None
    assert d.state.status == "PRINT_READY_RECORD"
    assert d.state.anomalies == ("CAPTURE_UNKNOWN:SENT_FOR_DEDUP",)
    normal = ektp.decide_status_change(None, change("P2", (S.SENT_FOR_ENROLLMENT, S.RECEIVED_AT_CENTRAL, 1)))
    assert normal is not None
    assert normal.state.anomalies == ()


def test_a_late_move_is_kept_in_time_order_without_moving_the_status_back() -> None:
    first = ektp.decide_status_change(
        None,
        change(
            "P1",
            (S.SENT_FOR_ENROLLMENT, S.RECEIVED_AT_CENTRAL, 1),
            (S.RECEIVED_AT_CENTRAL, S.SENT_FOR_DEDUP, 2),
        ),
    )
    assert first is not None
    verdict = ektp.decide_status_change(
        first.state, change("P1", (S.SENT_FOR_DEDUP, S.DUPLICATE_RECORD, 9), n=2)
    )
    assert verdict is not None
    assert verdict.state.status == "DUPLICATE_RECORD"
    late = ektp.decide_status_change(
        verdict.state, change("P1", (S.PROCESSING, S.SENT_FOR_ENROLLMENT, 0), n=3)
    )
    assert late is not None
    assert late.state.status == "DUPLICATE_RECORD"
    assert late.moves[0].out_of_order
    assert "STATUS_OUT_OF_ORDER:SENT_FOR_ENROLLMENT" in late.state.anomalies


def test_a_refusal_or_a_message_without_a_capture_changes_nothing() -> None:
    refused = PacketStatusChanged(
        message_id="r", produced_at=NOW, packet_id="P1", kabkota="3273", status=None, refused=["ILLEGAL_MOVE"]
    )
    assert ektp.decide_status_change(None, refused) is None


def verdict(status: S, finding: str) -> EnrolmentVerdict:
    return EnrolmentVerdict(
        message_id=f"v-{status}", produced_at=NOW, packet_id="P1", kabkota="3273", nik="3273011503850001",
        status=status, finding=finding, gallery_size=10, duplicate_threshold=9.2, adjudicate_threshold=4.6,
        decided_at=NOW,
    )  # fmt: skip


def test_a_unique_capture_makes_its_nik_a_central_person_and_a_duplicate_does_not() -> None:
    unique = ektp.decide_verdict(None, verdict(S.PRINT_READY_RECORD, "unique"))
    assert unique.needs_person
    assert unique.state.nik == "3273011503850001"
    assert unique.finding == "unique"
    duplicate = ektp.decide_verdict(None, verdict(S.DUPLICATE_RECORD, "one_to_one"))
    assert not duplicate.needs_person
    assert duplicate.verdict is not None
    assert duplicate.verdict["finding"] == "one_to_one"


def test_a_departure_found_to_be_a_transfer_or_a_release_is_not_departed_again() -> None:
    assert runs.settled_state("transferred", "departed") == "transferred"
    assert runs.settled_state("released", "departed") == "released"
    assert runs.settled_state("active", "departed") == "departed"
    assert runs.settled_state("transferred", "active") == "active"  # back in the old UPT: a new stay there
    assert runs.settled_state("departed", "released") == "released"

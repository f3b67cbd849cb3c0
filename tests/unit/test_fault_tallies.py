"""How the fault harness (bench/faultrun.py) counts what a scenario lost or doubled against the fault-free run."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace

from bench.faultrun import Observed, comparable, receipts, repeated_answers, repeated_feed, tallies
from sim.day import DayReport
from sim.ektp_day import EktpReport


def observed(**changes: object) -> Observed:
    sdp = DayReport(publishes=Counter({"p1": 1, "p2": 2}))
    base = Observed(
        seconds=10.0, report=sdp, ektp=EktpReport(publishes=Counter({"k1": 1})),
        answers=Counter({("p1", "", "r1"): 1, ("p2", "", "r2"): 1, ("k1", "SENT_FOR_DEDUP", "r3"): 1,
                         ("v1", "PRINT_READY_RECORD", "r4"): 1, ("bad", "", "r5"): 1}),
        central={"sdp/u/1": "a", "sdp/u/2": "b"}, persons=2, verdicts={"k/1": ["PRINT_READY_RECORD|unique"]},
        feed_ids=Counter({"f1": 1, "f2": 1}), feed_latest={"C1": 2, "C2": 1},
        feed_versions=Counter({("C1", 2): 1, ("C2", 1): 1}), versions={"C1": 2, "C2": 1},
        report_files={"upt.csv": "x,C12\n"}, queues_left={}, dead_letters=[("bad", "MESSAGE_NOT_JSON")],
        crashes=[], planted_dead={"bad"},
    )  # fmt: skip
    return replace(base, **changes)  # type: ignore[arg-type]


def test_the_fault_free_run_against_itself_loses_and_doubles_nothing() -> None:
    o = observed()
    for kind, t in tallies(o, o).items():
        assert (kind, t.lost, t.doubled) == (kind, 0, 0)
        assert t.found == t.expected > 0


def test_an_unanswered_message_is_lost_and_a_second_different_answer_doubled() -> None:
    o = observed()
    answers = Counter(o.answers)
    del answers["p1", "", "r1"]
    answers["k1", "SENT_FOR_DEDUP", "r9"] += 1  # sent once, answered twice under two ids
    answers["p2", "", "r8"] += 1  # sent twice: two answers are its due
    t = receipts(replace(o, answers=answers))
    assert (t.expected, t.lost, t.doubled) == (4, 1, 1)


def test_the_same_answer_delivered_again_under_its_id_is_counted_apart() -> None:
    o = observed()
    again = replace(o, answers=o.answers + Counter({("k1", "SENT_FOR_DEDUP", "r3"): 1}))
    assert receipts(again).doubled == 0
    assert repeated_answers(again) == 1


def test_central_records_verdicts_and_feed_against_the_reference() -> None:
    base = observed()
    o = observed(
        central={"sdp/u/1": "a", "sdp/u/2": "changed", "sdp/u/3": "extra"}, persons=4,
        verdicts={"k/1": ["PRINT_READY_RECORD|unique", "PRINT_READY_RECORD|unique"]},
        feed_ids=Counter({"f1": 2, "f3": 1}), feed_latest={"C1": 1}, feed_versions=Counter({("C1", 1): 2}),
    )  # fmt: skip
    t = tallies(o, base)
    assert (t["central"].lost, t["central"].doubled) == (1, 1 + 2)  # a record differs; one extra, two persons
    assert (t["verdicts"].lost, t["verdicts"].doubled) == (0, 1)
    # C1's newest version and C2 never told; C1's version 1 told by two messages (f1 twice is the same one)
    assert (t["feed"].lost, t["feed"].doubled) == (2, 1)
    assert repeated_feed(o) == 1


def test_report_files_compare_without_central_ids() -> None:
    assert comparable({"a.csv": "u,C12,x\nv,C7,y\n"}) == comparable({"a.csv": "u,C99,x\nv,C1,y\n"})
    assert comparable({"a.csv": "u,C12,x\n"}) != comparable({"a.csv": "u,C12,z\n"})

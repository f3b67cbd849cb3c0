"""The fault harness (python -m bench.faults) in small: a day of a few UPTs and Dukcapil offices with its run,
once without faults and then under kill -9 of every service process, the broker's stop_app/start_app and the
database refusing connections; each compared with the fault-free run. (Named to run last among the e2e tests:
the broker restart reaches every installation on the machine, whose services must ride it out too.)"""

from __future__ import annotations

from typing import Any

import pytest

from bench import faults
from bench.faultrun import PROCESSES
from deploy.sandbox import Servers

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def outcome(servers: Servers) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    args = faults.parser().parse_args(
        ["--upts", "8", "--total", "1500", "--packets", "120", "--offices", "3", "--rounds", "1",
         "--scenarios", "kill9,broker-app,pg-refuse", "--refuse-seconds", "8", "--settle-seconds", "180",
         "--no-record"]
    )  # fmt: skip
    return faults.run(args)


def test_every_scenario_ran_its_faults(outcome: tuple[list[dict[str, Any]], dict[str, Any]]) -> None:
    rows, figures = outcome
    assert [r["scenario"] for r in rows] == ["none", "kill9", "broker-app", "pg-refuse"]
    assert figures["scenarios"] == 4
    faults_by_scenario = {r["scenario"]: r["faults"] for r in rows}
    assert faults_by_scenario["none"] == 0
    assert faults_by_scenario["kill9"] == len(PROCESSES) + 1  # each process once, the consolidator again
    assert faults_by_scenario["broker-app"] == 2
    assert faults_by_scenario["pg-refuse"] == 1


def test_nothing_is_lost_or_doubled_under_faults(
    outcome: tuple[list[dict[str, Any]], dict[str, Any]],
) -> None:
    rows, figures = outcome
    for r in rows:
        assert (r["scenario"], r["lost"], r["doubled"]) == (r["scenario"], 0, 0), r["examples"]
        assert r["expected"] == rows[0]["expected"] > 1_000  # receipts, central records, verdicts, feed
        assert r["found"] == r["expected"]
    assert (figures["lost"], figures["doubled"]) == (0, 0)


def test_the_run_report_is_the_fault_free_one_and_nothing_is_left_over(
    outcome: tuple[list[dict[str, Any]], dict[str, Any]],
) -> None:
    rows, _ = outcome
    for r in rows:
        assert r["report_same"], (r["scenario"], r["examples"])
        assert (r["scenario"], r["queues_left"]) == (r["scenario"], 0)
        # exactly the planted bad input in dead.letters, nothing the faults made
        assert (r["scenario"], r["dead_letters_planted"], r["dead_letters_other"]) == (
            r["scenario"],
            "2/2",
            0,
        )

"""steps.sql read into its steps: the side groups of a step, each beginning by removing what an interrupted
attempt of it wrote, and the statements of the step's own transaction."""

from __future__ import annotations

from services.consolidator.consolidation import STEP_SQL, StepSql, _statements
from services.consolidator.domain.runs import STEPS

SQL = """
-- name: first
-- a comment
SELECT 1;
SELECT 2;

-- name: second
-- side: one
DELETE FROM t WHERE k = 'a';
INSERT INTO t VALUES ('a');
-- side: two
-- (its comment)
DELETE FROM u;
-- main
UPDATE v SET n = 1;
"""


def test_a_step_is_read_into_its_side_groups_and_its_own_statements() -> None:
    steps = _statements(SQL)
    assert steps["first"] == StepSql(["SELECT 1", "SELECT 2"], {})
    assert steps["second"] == StepSql(
        ["UPDATE v SET n = 1"],
        {"one": ["DELETE FROM t WHERE k = 'a'", "INSERT INTO t VALUES ('a')"], "two": ["DELETE FROM u"]},
    )


def test_every_side_group_of_the_run_begins_by_removing_what_it_writes_and_the_report_counts_in_the_step() -> (
    None
):
    assert set(STEP_SQL) <= set(STEPS)
    assert set(STEP_SQL["report"].sides) == {"deadlines", "movements", "worklist"}
    for step in STEP_SQL.values():
        for statements in step.sides.values():
            assert statements[0].startswith("DELETE FROM run_")
    assert STEP_SQL["report"].main[0].startswith("WITH m AS MATERIALIZED")
    assert not STEP_SQL["report"].main[1:]

"""The soak's turn of faults and its memory arithmetic."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from bench.soak import growth, inject, turn


def test_the_turn_takes_every_kind_once_per_round_in_a_seeded_order() -> None:
    kinds = ["broker-app", "pg-restart", "disk-alarm"]
    first = turn(kinds, random.Random(7))
    drawn = [first() for _ in range(9)]
    for start in (0, 3, 6):
        assert sorted(drawn[start : start + 3]) == sorted(kinds)
    assert Counter(drawn) == dict.fromkeys(kinds, 3)
    again = turn(kinds, random.Random(7))
    assert [again() for _ in range(9)] == drawn  # the seed replays the order
    other = turn(kinds, random.Random(8))
    assert [other() for _ in range(30)] != [first() for _ in range(30)]


def test_growth_is_per_process_in_per_cent_of_the_first_day() -> None:
    start = {"registry": 200, "dedup": 400, "monitor": 0}
    end = {"registry": 230, "dedup": 380, "monitor": 50}
    assert growth(start, end) == {"registry": 15.0, "dedup": -5.0}  # no figure where nothing was measured


async def test_an_unknown_fault_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown fault"):
        await inject(None, "meteor")  # type: ignore[arg-type]

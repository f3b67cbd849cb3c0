"""How much one UPT may have the registry read at once (services/registry/domain/rate.py)."""

from __future__ import annotations

from services.registry.domain.rate import Allowance, RatePolicy, decide_admission

POLICY = RatePolicy(burst=1_000, per_second=10.0)


def test_a_first_part_within_the_burst_is_read() -> None:
    got = decide_admission(None, 400, 100.0, POLICY)
    assert got.admitted
    assert got.allowance == Allowance(600.0, 100.0)


def test_a_part_beyond_what_is_left_waits_as_long_as_the_refill_takes() -> None:
    got = decide_admission(Allowance(100.0, 100.0), 400, 100.0, POLICY)
    assert not got.admitted
    assert got.retry_after == 30.0  # 300 records short, 10 a second
    assert got.allowance == Allowance(100.0, 100.0)  # nothing taken for a part not read


def test_the_allowance_refills_with_time_up_to_the_burst() -> None:
    assert decide_admission(Allowance(100.0, 100.0), 400, 130.0, POLICY).admitted
    full = decide_admission(Allowance(0.0, 0.0), 1, 10_000.0, POLICY)
    assert full.allowance.records == 999.0  # refilled to the burst, not beyond


def test_a_part_larger_than_the_whole_burst_is_read_once_the_allowance_is_full() -> None:
    early = decide_admission(Allowance(999.0, 100.0), 5_000, 100.0, POLICY)
    assert not early.admitted
    assert early.retry_after == 0.1  # until full, not until 5,000 have come back
    later = decide_admission(early.allowance, 5_000, 100.1, POLICY)
    assert later.admitted
    assert later.allowance.records < 0  # a debt the refill pays back before the next part


def test_a_flood_is_mostly_answered_at_once_and_an_empty_part_still_costs_something() -> None:
    allowance, read, told = None, 0, 0
    for n in range(100):  # 100 parts of 100 records sent within a second
        got = decide_admission(allowance, 100, n / 100, POLICY)
        allowance = got.allowance
        read, told = read + got.admitted, told + (not got.admitted)
    assert (read, told) == (10, 90)
    assert decide_admission(Allowance(0.5, 0.0), 0, 0.0, POLICY).admitted is False

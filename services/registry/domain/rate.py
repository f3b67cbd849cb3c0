"""How much one sender may have the registry read at once: a bucket of records per sender, refilled steadily.

A UPT that floods the registry (tens of thousands of records at once) would otherwise hold every other UPT's
parts behind its own in the one queue they share. What a sender sends beyond its bucket is answered at once
with SENDER_OVER_RATE and the seconds to wait, without being read any further or stored: the sender resends the
same part (the same message_id) after that pause, and it is taken then. A part larger than the whole bucket is
taken when the bucket is full, so no part is ever refused for good.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RatePolicy:
    burst: int  # records a sender may send at once
    per_second: float  # records added back to its bucket each second


@dataclass(frozen=True)
class Allowance:
    records: float  # what the sender may still send now (negative: a part larger than the bucket was taken)
    at: float  # when it was counted (monotonic seconds)


@dataclass(frozen=True)
class Admission:
    allowance: Allowance
    admitted: bool
    retry_after: float = 0.0  # seconds, when not admitted


def decide_admission(allowance: Allowance | None, records: int, now: float, policy: RatePolicy) -> Admission:
    """Whether a part of `records` records from a sender whose bucket stood at `allowance` is read now."""
    if allowance is None:
        left = float(policy.burst)
    else:
        left = min(float(policy.burst), allowance.records + max(0.0, now - allowance.at) * policy.per_second)
    cost = max(1, records)
    if cost <= left or left >= policy.burst:
        return Admission(Allowance(left - cost, now), admitted=True)
    wait = (min(cost, policy.burst) - left) / policy.per_second
    return Admission(Allowance(left, now), admitted=False, retry_after=wait)

"""The adjudication desk's rules: which decisions an operator may ask for. Pure, no I/O."""

from __future__ import annotations

from dataclasses import dataclass

DECISIONS = frozenset({"duplicate", "unique"})


@dataclass(frozen=True)
class CaseState:
    known: bool
    decided: bool
    requested: str | None = None


@dataclass(frozen=True)
class DecisionRequest:
    kabkota: str
    packet_id: str
    decision: str
    operator: str
    reason: str


@dataclass(frozen=True)
class Refusal:
    code: str  # unknown_case, already_decided, already_requested, bad_decision, reason_required
    status: int  # the HTTP answer


def decide_request(
    case: CaseState, kabkota: str, packet_id: str, decision: str, reason: str, operator: str
) -> DecisionRequest | Refusal:
    if not case.known:
        return Refusal("unknown_case", 404)
    if case.decided:
        return Refusal("already_decided", 409)
    if case.requested is not None:
        return Refusal("already_requested", 409)  # one decision per case; dedup applies the first
    if decision not in DECISIONS:
        return Refusal("bad_decision", 422)
    text = reason.strip()
    if not 5 <= len(text) <= 500:
        return Refusal("reason_required", 422)
    if any(ord(ch) < 32 and ch not in "\n\t" for ch in text):
        return Refusal("reason_invalid", 422)  # a NUL or another control character: never stored
    return DecisionRequest(kabkota, packet_id, decision, operator, text)

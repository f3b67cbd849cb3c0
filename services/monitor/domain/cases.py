"""The adjudication desk's rules: which decisions an operator may ask for. Pure, no I/O."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

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


def history(case: dict[str, Any], reads: list[tuple[str, datetime]]) -> list[dict[str, Any]]:
    """A case's story for the desk, oldest first: opened by dedup, each opening at the desk (who, when), the
    decision sent (by whom, with its reason) and the outcome dedup applied."""
    steps: list[tuple[datetime, int, dict[str, Any]]] = [
        (case["opened_at"], 0, {"step": "opened", "who": "dedup"})
    ]
    steps += [(at, 1, {"step": "read", "who": who}) for who, at in reads]
    if case.get("requested_at"):
        steps.append(
            (
                case["requested_at"],
                2,
                {"step": "requested", "who": case["requested_by"], "decision": case["requested"]},
            )
        )
    if case.get("decided_at"):
        steps.append(
            (case["decided_at"], 3, {"step": "decided", "who": case["operator"], "decision": case["decision"],
                                     "reason": case.get("reason")})
        )  # fmt: skip
    return [entry | {"at": at.isoformat()} for at, _, entry in sorted(steps, key=lambda s: (s[0], s[1]))]

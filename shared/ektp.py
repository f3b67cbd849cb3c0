"""The e-KTP recording statuses and the moves between them that are legal (DESIGN section 6)."""

from __future__ import annotations

import enum
from collections.abc import Iterable


class EktpStatus(enum.StrEnum):
    UNREGISTERED = "UNREGISTERED"
    BIO_CAPTURED = "BIO_CAPTURED"
    PROCESSING = "PROCESSING"
    SENT_FOR_ENROLLMENT = "SENT_FOR_ENROLLMENT"
    RECEIVED_AT_CENTRAL = "RECEIVED_AT_CENTRAL"
    ENROLL_FAILURE_AT_CENTRAL = "ENROLL_FAILURE_AT_CENTRAL"
    ENROLL_FAILURE_AT_REGIONAL = "ENROLL_FAILURE_AT_REGIONAL"
    PACKET_RETRY = "PACKET_RETRY"
    SENT_FOR_DEDUP = "SENT_FOR_DEDUP"
    SEARCH_FAILURE_AT_CENTRAL = "SEARCH_FAILURE_AT_CENTRAL"
    DUPLICATE_RECORD = "DUPLICATE_RECORD"
    ADJUDICATE_RECORD = "ADJUDICATE_RECORD"
    REQUEST_VALIDATION = "REQUEST_VALIDATION"
    PRINT_READY_RECORD = "PRINT_READY_RECORD"
    SENT_FOR_CARD_PRINTING = "SENT_FOR_CARD_PRINTING"
    CARD_PRINTED = "CARD_PRINTED"
    CARD_SHIPPED = "CARD_SHIPPED"
    CARD_ISSUED = "CARD_ISSUED"


S = EktpStatus
_RE_RECORD = (S.BIO_CAPTURED,)  # the central record is deleted and the person recorded again
LEGAL_MOVES: dict[EktpStatus, tuple[EktpStatus, ...]] = {
    S.UNREGISTERED: (S.BIO_CAPTURED,),
    S.BIO_CAPTURED: (S.PROCESSING,),
    S.PROCESSING: (S.SENT_FOR_ENROLLMENT,),
    S.SENT_FOR_ENROLLMENT: (S.RECEIVED_AT_CENTRAL,),
    S.RECEIVED_AT_CENTRAL: (
        S.ENROLL_FAILURE_AT_CENTRAL,
        S.ENROLL_FAILURE_AT_REGIONAL,
        S.PACKET_RETRY,
        S.SENT_FOR_DEDUP,
    ),
    S.PACKET_RETRY: (S.RECEIVED_AT_CENTRAL,),
    S.SENT_FOR_DEDUP: (
        S.SEARCH_FAILURE_AT_CENTRAL,
        S.DUPLICATE_RECORD,
        S.ADJUDICATE_RECORD,
        S.REQUEST_VALIDATION,
        S.PRINT_READY_RECORD,
    ),
    S.SEARCH_FAILURE_AT_CENTRAL: (S.SENT_FOR_DEDUP, *_RE_RECORD),
    S.ADJUDICATE_RECORD: (S.DUPLICATE_RECORD, S.PRINT_READY_RECORD),
    S.ENROLL_FAILURE_AT_CENTRAL: _RE_RECORD,
    S.ENROLL_FAILURE_AT_REGIONAL: _RE_RECORD,
    S.DUPLICATE_RECORD: _RE_RECORD,
    S.REQUEST_VALIDATION: _RE_RECORD,
    S.PRINT_READY_RECORD: (S.SENT_FOR_CARD_PRINTING,),
    S.SENT_FOR_CARD_PRINTING: (S.CARD_PRINTED,),
    S.CARD_PRINTED: (S.CARD_SHIPPED,),
    S.CARD_SHIPPED: (S.CARD_ISSUED,),
    S.CARD_ISSUED: (),
}
# What a regional office reports about its own work, and what it reports about printing.
REGIONAL_REPORTS = (S.BIO_CAPTURED, S.PROCESSING, S.SENT_FOR_ENROLLMENT)
PRINT_REPORTS = (S.SENT_FOR_CARD_PRINTING, S.CARD_PRINTED, S.CARD_SHIPPED, S.CARD_ISSUED)
FAILURES = (S.ENROLL_FAILURE_AT_CENTRAL, S.ENROLL_FAILURE_AT_REGIONAL, S.SEARCH_FAILURE_AT_CENTRAL)


def is_legal(current: EktpStatus, target: EktpStatus) -> bool:
    return target in LEGAL_MOVES[current]


def path_to(
    current: EktpStatus, target: EktpStatus, through: Iterable[EktpStatus]
) -> list[EktpStatus] | None:
    """The moves from `current` to `target` that only pass through `through`, or None if there are none.

    A packet arriving at the centre proves that the region captured, processed and sent it, even when the
    region never reported those steps: the registry fills them in, but only along legal moves.
    """
    allowed = set(through) | {target}
    frontier: list[list[EktpStatus]] = [[current]]
    seen = {current}
    while frontier:
        path = frontier.pop(0)
        for step in LEGAL_MOVES[path[-1]]:
            if step == target:
                return [*path[1:], step]
            if step in allowed and step not in seen:
                seen.add(step)
                frontier.append([*path, step])
    return None

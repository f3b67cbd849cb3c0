"""Stable problem codes with reasons in Bahasa Indonesia and English, shared by every service."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Severity(enum.StrEnum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True)
class Problem:
    """A stable code a sender can act on, with a reason in both languages."""

    code: str
    reason_id: str
    reason_en: str
    severity: Severity = Severity.ERROR


# Problems with a whole message: it is dead-lettered with this reason (and answered when the sender is known).
MESSAGE_NOT_JSON = Problem(
    "MESSAGE_NOT_JSON", "Isi pesan bukan JSON yang sah.", "The message body is not valid JSON."
)
MESSAGE_SCHEMA = Problem(
    "MESSAGE_SCHEMA", "Isi pesan tidak sesuai skema.", "The message body does not match the schema."
)
MESSAGE_ID_MISSING = Problem(
    "MESSAGE_ID_MISSING", "Properti message_id tidak ada.", "The message_id property is missing."
)
MESSAGE_ID_MISMATCH = Problem(
    "MESSAGE_ID_MISMATCH",
    "message_id pada isi pesan berbeda dengan properti message_id.",
    "The message_id in the body differs from the message_id property.",
)
USER_ID_MISSING = Problem(
    "USER_ID_MISSING",
    "Properti user_id tidak ada; pengirim tidak dapat dipastikan.",
    "The user_id property is missing, so the sender cannot be established.",
)
SENDER_NOT_ALLOWED = Problem(
    "SENDER_NOT_ALLOWED",
    "Pengirim tidak berwenang mengirim pesan ini.",
    "The sender is not allowed to send this message.",
)
SENDER_MISMATCH = Problem(
    "SENDER_MISMATCH",
    "Kiriman untuk unit lain: upt_id harus sama dengan unit pengirim.",
    "Submission for another unit: upt_id must equal the sending unit.",
)
ROUTING_KEY_MISMATCH = Problem(
    "ROUTING_KEY_MISMATCH",
    "Routing key tidak sesuai dengan pengirim atau jenis pesan.",
    "The routing key does not match the sender or the message type.",
)
DATA_NOT_STORABLE = Problem(
    "DATA_NOT_STORABLE",
    "Isi pesan memuat nilai yang tidak dapat disimpan (misalnya karakter NUL atau angka di luar jangkauan); "
    "mengirim ulang pesan yang sama akan selalu gagal.",
    "The message holds a value that cannot be stored (such as a NUL character or a number out of range); "
    "sending the same message again will always fail.",
)
DELIVERY_LIMIT = Problem(
    "DELIVERY_LIMIT",
    "Pesan gagal diproses berulang kali dan dipindahkan ke antrean pesan mati.",
    "The message failed repeatedly and was moved to the dead-letter queue.",
)

MESSAGE_PROBLEMS = (
    MESSAGE_NOT_JSON,
    MESSAGE_SCHEMA,
    MESSAGE_ID_MISSING,
    MESSAGE_ID_MISMATCH,
    USER_ID_MISSING,
    SENDER_NOT_ALLOWED,
    SENDER_MISMATCH,
    ROUTING_KEY_MISMATCH,
    DATA_NOT_STORABLE,
    DELIVERY_LIMIT,
)

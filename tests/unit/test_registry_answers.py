"""Whom the registry answers when a message cannot be read, and what the answer replies to."""

from __future__ import annotations

import pytest

from services.registry.handlers import reply_id, unit_of_routing_key
from shared.contracts import derive_message_id


@pytest.mark.parametrize(
    ("key", "unit"),
    [
        ("sdp.upt-3273-1.submission", "upt-3273-1"),
        ("ektp.3273.packet", "dukcapil-3273"),
        ("ektp.3273.status", "dukcapil-3273"),
        ("sdp..submission", None),
        ("ektp.bandung.packet", None),
        ("sdp.dukcapil-3273.submission", None),
        ("dedup.verdict.ektp", None),
        ("", None),
    ],
)
def test_the_routing_key_names_the_unit_only_its_user_may_publish_as(key: str, unit: str | None) -> None:
    assert unit_of_routing_key(key) == unit


def test_an_answer_replies_to_the_property_else_the_id_the_body_names_else_one_derived() -> None:
    assert reply_id("m-1", {"message_id": "m-body"}, b"{}") == "m-1"
    assert reply_id(None, {"message_id": "m-body"}, b"{}") == "m-body"  # what the sender knows it by
    unusable: list[object] = [
        {"message_id": "x" * 129},
        {"message_id": "a\x00b"},
        {"message_id": 7},
        [],
        None,
    ]
    for body in unusable:
        assert reply_id(None, body, b"raw") == derive_message_id("unnamed", b"raw")

"""The simulator's regional clients ride out a broker away for longer than a few attempts, and give up only
on what can never succeed or when their time is up (sim.publisher.riding_out)."""

from __future__ import annotations

import asyncio
from typing import Any

import aiormq
import pytest

from sim import publisher


@pytest.fixture
def no_waiting(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    pauses: list[float] = []

    async def pause(seconds: float) -> None:
        pauses.append(seconds)

    monkeypatch.setattr(asyncio, "sleep", pause)
    return pauses


async def test_a_broker_away_for_many_attempts_is_waited_for_with_capped_back_off(
    no_waiting: list[float],
) -> None:
    lost = iter(range(20))

    async def connected() -> str:
        if next(lost) < 20 - 1:
            raise ConnectionError("the broker is restarting")
        return "sent"

    assert await publisher.riding_out(connected, timeout=3600) == ("sent", 19)
    assert no_waiting[:4] == [1.0, 2.0, 4.0, 8.0]
    assert max(no_waiting) == publisher.BACK_OFF_MAX


async def test_a_refusal_is_not_retried_and_time_running_out_ends_the_attempts(
    no_waiting: list[float],
) -> None:
    async def refused() -> Any:
        raise aiormq.exceptions.ChannelAccessRefused("ACCESS_REFUSED")

    with pytest.raises(aiormq.exceptions.ChannelAccessRefused):
        await publisher.riding_out(refused, timeout=3600)
    assert no_waiting == []

    async def away() -> Any:
        raise ConnectionError("the broker is away")

    with pytest.raises(ConnectionError):
        await publisher.riding_out(away, timeout=5)  # (no time passes here: a pause longer than 5 s ends it)
    assert no_waiting == [1.0, 2.0, 4.0]


async def test_a_channel_found_closed_by_a_lost_connection_is_connected_again(
    no_waiting: list[float],
) -> None:
    lost = iter(range(3))

    async def connected() -> str:
        if next(lost) == 0:
            raise aiormq.exceptions.ChannelInvalidStateError("<Channel> closed")
        return "sent"

    assert await publisher.riding_out(connected, timeout=3600) == ("sent", 1)
    assert no_waiting == [1.0]

"""The benchmarks' event loop: an interrupted benchmark reaches its clean-up even when a task will not end."""

from __future__ import annotations

import asyncio
import time

import pytest

from bench import harness


async def interrupted_beside_a_stubborn_task(cancelled: list[str]) -> None:
    async def stubborn() -> None:  # like a client closing its connection to a broker that does not answer
        while True:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                cancelled.append("stubborn")

    async def polite() -> None:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cancelled.append("polite")
            raise

    asyncio.get_running_loop().create_task(stubborn())
    asyncio.get_running_loop().create_task(polite())
    await asyncio.sleep(0.05)
    raise KeyboardInterrupt  # as Ctrl-C raises it in the middle of the loop


def test_an_interrupted_run_gives_up_on_a_task_that_will_not_end() -> None:
    cancelled: list[str] = []
    began = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        harness.run(interrupted_beside_a_stubborn_task(cancelled), grace=0.3)
    assert time.monotonic() - began < 3  # asyncio.run would wait for the stubborn task for ever
    assert sorted(cancelled) == ["polite", "stubborn"]


def test_a_run_returns_its_result_though_a_task_still_sleeps() -> None:
    async def main() -> int:
        asyncio.get_running_loop().create_task(asyncio.sleep(3600))
        return 7

    assert harness.run(main()) == 7

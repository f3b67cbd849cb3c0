"""Background work: it outlives its failures, and stops when asked."""

from __future__ import annotations

import asyncio

import pytest

from shared.tasks import Background, every


async def test_background_work_runs_again_after_a_failure_and_stops_when_asked() -> None:
    calls: list[int] = []
    third = asyncio.Event()

    async def work() -> None:
        calls.append(len(calls))
        if len(calls) < 3:
            raise RuntimeError("the database is restarting")
        third.set()
        await asyncio.Event().wait()  # then runs until stopped

    task = Background("test", work, retry_after=0.01)
    task.start()
    await asyncio.wait_for(third.wait(), 2)
    await task.stop()
    assert calls == [0, 1, 2]


async def test_every_repeats_its_step_until_the_step_fails() -> None:
    steps: list[int] = []

    async def step() -> None:
        steps.append(1)
        if len(steps) == 3:
            raise ValueError("stop")

    with pytest.raises(ValueError, match="stop"):
        await asyncio.wait_for(every(0.001, step), 2)
    assert len(steps) == 3


async def test_a_stop_never_waits_longer_than_its_timeout() -> None:
    release = asyncio.Event()

    async def stubborn() -> None:
        while not release.is_set():
            try:
                await asyncio.sleep(0.01)
            except asyncio.CancelledError:
                continue  # work that will not end when asked

    task = Background("stubborn", stubborn, retry_after=0.01)
    task.start()
    await asyncio.sleep(0)
    loop = asyncio.get_running_loop()
    began = loop.time()
    await task.stop(timeout=0.1)
    assert loop.time() - began < 1
    release.set()
    await asyncio.sleep(0.05)  # it ends by itself now

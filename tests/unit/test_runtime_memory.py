"""A service's memory is kept returned: cyclic garbage does not wait weeks for the collector's oldest
generation (shared.runtime.keep_memory_returned)."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import weakref

from shared import db
from shared.runtime import keep_memory_returned


class Holder:
    """Stands for what a failed attempt leaves behind: an exception, its traceback and frames, in a cycle."""

    def __init__(self) -> None:
        self.me = self
        self.payload = bytearray(1 << 20)


async def test_cyclic_garbage_is_collected_and_freed_pages_returned_without_waiting_for_the_collector() -> (
    None
):
    gc.disable()  # as with tune_garbage_collector's thresholds: no automatic full collection in sight
    try:
        holder = Holder()
        gone = weakref.ref(holder)
        del holder  # garbage now, but only a full collection can see it (the cycle keeps its count above 0)
        await asyncio.sleep(0.05)
        assert gone() is not None
        keeper = asyncio.create_task(keep_memory_returned(every=0.01))
        for _ in range(100):
            await asyncio.sleep(0.01)
            if gone() is None:
                break
        keeper.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await keeper
        assert gone() is None
    finally:
        gc.enable()


class Part:
    """Stands for a decoded part that the failed attempt's frame held."""


async def test_a_retried_database_failure_lets_go_of_what_its_frames_held_without_a_collection() -> None:
    attempts: list[int] = []
    held: list[weakref.ref[Part]] = []

    async def connect() -> str:
        part = Part()  # a local of the failing frame, as a part being staged is
        held.append(weakref.ref(part))
        attempts.append(1)
        if len(attempts) == 1:
            try:
                raise ConnectionRefusedError("the database is away")
            except ConnectionRefusedError as e:
                failure = e  # the frame keeps its exception, as a future awaited in it does: a cycle
                raise failure from None
        return "staged"

    gc.disable()  # no collection may free the cycle: only letting go of the frames does
    try:
        assert await db.retrying(connect, first_delay=0.01, what="stage part") == "staged"
        assert len(attempts) == 2
        assert held[0]() is None  # the failed attempt's frame no longer keeps its part
    finally:
        gc.enable()


def test_where_the_memory_is_held_is_said_only_while_python_traces_its_allocations() -> None:
    import tracemalloc

    from shared.runtime import held_by

    assert held_by() is None
    tracemalloc.start()
    try:
        kept = [bytearray(1 << 20) for _ in range(4)]  # this line holds 4 MiB
        top = held_by(lines=3)
        assert top is not None
        assert top[0].startswith(f"{__file__}:")
        assert int(top[0].rsplit(" ", 1)[1]) >= 4 * 1024
        assert len(kept) == 4
    finally:
        tracemalloc.stop()

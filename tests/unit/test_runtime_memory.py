"""A service's memory is kept returned: cyclic garbage does not wait weeks for the collector's oldest
generation (shared.runtime.keep_memory_returned)."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import weakref

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

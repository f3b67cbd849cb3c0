"""A service's memory is kept returned: cyclic garbage does not wait weeks for the collector's oldest
generation (shared.runtime.keep_memory_returned)."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import sys
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


async def test_a_failure_shared_with_a_unit_still_on_its_way_out_is_retried_without_breaking_that_unit() -> (
    None
):
    """Units that joined one transaction all get its failure, the same exception object, whose traceback holds
    the frames of the unit that committed it, still suspended while it gives its connection back. A retry may
    not clear those frames: clearing a suspended coroutine's frame closes it, and that unit then never finished
    (the monitor stopped consuming its status queue after the database refused connections)."""
    shared: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    others_go, committer_goes = asyncio.Event(), asyncio.Event()
    calls = {"committer": 0, "member": 0}

    async def committer() -> str:
        calls["committer"] += 1
        if calls["committer"] == 1:
            try:
                raise ConnectionResetError("the commit's connection broke")
            except ConnectionResetError as error:
                shared.set_exception(error)  # every member of the transaction gets it (with this traceback)
                others_go.set()
                # giving its connection back: suspended, its frame in the traceback the member gets
                await committer_goes.wait()
                raise
        return "committed"

    async def member() -> str:
        calls["member"] += 1
        if calls["member"] == 1:
            await others_go.wait()
            try:
                await shared
            finally:
                committer_goes.set()
        return "joined"

    done = await asyncio.wait_for(
        asyncio.gather(
            db.retrying(committer, first_delay=0.01, what="commit"),
            db.retrying(member, first_delay=0.01, what="join"),
        ),
        timeout=5,
    )
    assert list(done) == ["committed", "joined"]
    assert calls == {"committer": 2, "member": 2}


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


def test_with_more_frames_what_a_library_holds_is_told_by_the_project_line_that_asked_for_it() -> None:
    import json
    import tracemalloc

    from shared.runtime import held_by

    text = json.dumps(["x" * 100 for _ in range(20_000)])
    tracemalloc.start(8)
    try:
        kept = json.loads(text)  # the decoder allocates the strings; this line asked for them
        asked = f"{__file__}:{sys._getframe().f_lineno - 1}"
        top = held_by(lines=3)
        assert top is not None
        place, kib = top[0].rsplit(" ", 1)
        assert place.startswith(f"{asked} <- ")
        assert "json" in place.split(" <- ")[1]
        assert int(kib) >= 2_000
        assert len(kept) == 20_000
    finally:
        tracemalloc.stop()


def test_the_census_counts_the_kinds_of_object_held() -> None:
    from shared.runtime import census

    class Kept:
        pass

    kept = [Kept() for _ in range(300_000)]
    top = census(lines=5)
    kind, count, mb = next(line.split(" ") for line in top if ".Kept " in line)
    assert kind.endswith("test_the_census_counts_the_kinds_of_object_held.<locals>.Kept")
    assert int(count) >= 300_000
    assert float(mb) > 0
    assert len(kept) == 300_000


class _Part:
    pass


class _Holder:
    def __init__(self) -> None:
        self.slot = {"part": _Part()}


KEPT = [_Holder()]


def test_what_keeps_an_object_alive_is_told_up_to_the_module_that_holds_it() -> None:
    from shared.runtime import held_through

    chain = held_through(f"{__name__}._Part")
    assert chain == ["builtins.dict['part']", f"{__name__}._Holder", "builtins.list", "builtins.dict['KEPT']"]
    assert held_through(f"{__name__}.Nothing") is None

"""The memory allocator a service runs on: jemalloc where the system has it, else CPython's own.

Why: CPython's small-object allocator takes memory from the system in 1 MiB arenas and gives an arena back only
when every object in it is gone. A burst (parts decoded while the database is away, a reconnect storm after a
broker restart) spreads the few objects that outlive it (new connections, caches) over many arenas, and the
free space around them stays resident for good: the soak (bench.soak) saw each service's memory at rest rise by
a fifth to a third after its largest burst and never come down. With every allocation going to jemalloc
(`PYTHONMALLOC=malloc`), memory is kept in small runs of one size and freed pages go back to the system, so a
service's resident size follows what it holds (BENCHMARKS.md, the soak).

The allocator must be chosen before the interpreter starts: `use_chosen_allocator()` runs first in every
service's `__main__` and, when the process is not on the chosen allocator yet, replaces it with the same
command on it (`exec`: the process id stays). `MEMORY_ALLOCATOR=pymalloc` keeps CPython's allocator.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys
from collections.abc import Callable, Mapping

SETTING = "MEMORY_ALLOCATOR"
CHOICES = ("jemalloc", "pymalloc")  # the first: the default
# Freed pages go back to the system within a second (a background thread does it, not the next allocation), and
# straight away rather than first marked lazily free (pages the kernel may take back still count as resident).
JEMALLOC_CONF = "background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:0"
MALLCTL_ARENAS_ALL = 4096  # jemalloc 5: "every arena" in an `arena.<i>.*` name


def jemalloc_library() -> str | None:
    """jemalloc's shared library as the dynamic loader finds it, or None where it is not installed."""
    found = ctypes.util.find_library("jemalloc")
    return found if found else None


def environment_for(choice: str, environ: Mapping[str, str], library: str | None) -> dict[str, str] | None:
    """The environment to run again with, or None when the process may go on as it is (the chosen allocator is
    in place, CPython's was chosen, or jemalloc is not installed)."""
    if choice != "jemalloc" or library is None:
        return None
    preloaded = environ.get("LD_PRELOAD", "").replace(":", " ").split()
    if environ.get("PYTHONMALLOC") == "malloc" and library in preloaded:
        return None
    return dict(environ) | {
        "PYTHONMALLOC": "malloc",
        "LD_PRELOAD": " ".join([library, *preloaded]),
        "MALLOC_CONF": environ.get("MALLOC_CONF", JEMALLOC_CONF),
    }


def use_chosen_allocator() -> None:
    """Run this process on the chosen allocator (MEMORY_ALLOCATOR, default jemalloc), replacing it if needed."""
    choice = _setting(os.environ)
    if choice not in CHOICES:
        raise SystemExit(f"{SETTING} must be one of {', '.join(CHOICES)}, not {choice!r}")
    environ = environment_for(choice, os.environ, jemalloc_library())
    if environ is not None:
        sys.stdout.flush()
        sys.stderr.flush()
        os.execve(sys.executable, [sys.executable, *sys.orig_argv[1:]], environ)  # noqa: S606 (this very command)


def chosen(environ: Mapping[str, str]) -> str:
    """The allocator a service started with this environment runs on: 'jemalloc' or 'pymalloc'."""
    return "jemalloc" if _setting(environ) == "jemalloc" and jemalloc_library() is not None else "pymalloc"


def _setting(environ: Mapping[str, str]) -> str:
    return environ.get(SETTING, CHOICES[0])


def in_use() -> str:
    """The allocator this process runs on: 'jemalloc', 'malloc' (the C library's) or 'pymalloc'."""
    if os.environ.get("PYTHONMALLOC") != "malloc":
        return "pymalloc"
    return "jemalloc" if _mallctl() is not None else "malloc"


def _mallctl() -> Callable[..., int] | None:
    try:
        function = ctypes.CDLL(None).mallctl
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_char_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t]
    function.restype = ctypes.c_int
    return function


def jemalloc_purger() -> Callable[[], object] | None:
    """What makes jemalloc hand every unused page back to the system now; None when jemalloc is not loaded."""
    mallctl = _mallctl()
    if mallctl is None:
        return None
    name = f"arena.{MALLCTL_ARENAS_ALL}.purge".encode()
    return lambda: mallctl(name, None, None, None, 0)


def jemalloc_allocated_mb() -> int | None:
    """What the process holds in jemalloc now (its `stats.allocated`, in MB: the live heap, without the pages
    jemalloc keeps for reuse); None when jemalloc is not loaded or keeps no statistics."""
    mallctl = _mallctl()
    if mallctl is None:
        return None
    epoch = ctypes.c_uint64(1)
    mallctl(
        b"epoch", None, None, ctypes.byref(epoch), ctypes.sizeof(epoch)
    )  # the statistics brought up to date
    allocated, size = ctypes.c_size_t(0), ctypes.c_size_t(ctypes.sizeof(ctypes.c_size_t))
    if mallctl(b"stats.allocated", ctypes.byref(allocated), ctypes.byref(size), None, 0) != 0:
        return None
    return allocated.value // 2**20

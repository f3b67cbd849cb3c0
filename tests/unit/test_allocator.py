"""The services run on jemalloc where it is installed (shared.allocator): a service's process replaces itself
with the same command on it, once, and says which allocator it runs on."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from shared import allocator

LIBRARY = "libjemalloc.so.2"


def test_a_process_not_on_jemalloc_is_run_again_with_it_preloaded_and_every_allocation_going_to_it() -> None:
    environ = allocator.environment_for("jemalloc", {"PATH": "/bin", "LD_PRELOAD": "libother.so"}, LIBRARY)
    assert environ is not None
    assert environ["PYTHONMALLOC"] == "malloc"
    assert environ["LD_PRELOAD"].split() == [LIBRARY, "libother.so"]  # what was preloaded stays
    assert environ["MALLOC_CONF"] == allocator.JEMALLOC_CONF
    assert environ["PATH"] == "/bin"


def test_a_process_already_on_jemalloc_goes_on_and_an_operators_tuning_is_kept() -> None:
    on_it = {"PYTHONMALLOC": "malloc", "LD_PRELOAD": f"libother.so:{LIBRARY}"}
    assert allocator.environment_for("jemalloc", on_it, LIBRARY) is None
    tuned = allocator.environment_for("jemalloc", {"MALLOC_CONF": "narenas:2"}, LIBRARY)
    assert tuned is not None
    assert tuned["MALLOC_CONF"] == "narenas:2"


def test_cpythons_allocator_when_chosen_or_when_jemalloc_is_not_installed() -> None:
    assert allocator.environment_for("pymalloc", {}, LIBRARY) is None
    assert allocator.environment_for("jemalloc", {}, None) is None


SCRIPT = """
import json, os, sys
from shared import allocator
allocator.use_chosen_allocator()
purge = allocator.jemalloc_purger()
held = bytearray(64 << 20)
print(json.dumps({"pid": os.getpid(), "argv": sys.argv[1:], "in_use": allocator.in_use(),
                  "purged": purge() if purge else None, "heap_mb": allocator.jemalloc_allocated_mb()}))
"""


@pytest.mark.skipif(allocator.jemalloc_library() is None, reason="jemalloc is not installed (make setup)")
def test_the_process_replaces_itself_once_keeping_its_arguments_and_runs_on_jemalloc() -> None:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, "--some", "argument"], capture_output=True, text=True, check=True
    )
    said = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(said) == 1  # replaced (exec), not started again beside itself
    assert said[0]["argv"] == ["--some", "argument"]
    assert said[0]["in_use"] == "jemalloc"
    assert said[0]["purged"] == 0  # jemalloc's mallctl answered: every arena purged
    assert 64 <= said[0]["heap_mb"] < 128  # what the process holds, as jemalloc counts it


def test_cpythons_allocator_when_the_operator_chooses_it() -> None:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        capture_output=True,
        text=True,
        check=True,
        env={"MEMORY_ALLOCATOR": "pymalloc", "PATH": "/usr/bin:/bin"},
    )
    said = json.loads(done.stdout)
    assert said["in_use"] == "pymalloc"
    assert said["heap_mb"] is None


def test_an_unknown_choice_is_refused_with_the_choices() -> None:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, env={"MEMORY_ALLOCATOR": "tcmalloc"}
    )
    assert done.returncode == 1
    assert "jemalloc, pymalloc" in done.stderr
    assert "tcmalloc" in done.stderr


def test_the_allocator_a_service_will_run_on_is_told_from_its_environment() -> None:
    assert allocator.chosen({"MEMORY_ALLOCATOR": "pymalloc"}) == "pymalloc"
    assert allocator.chosen({}) == ("jemalloc" if allocator.jemalloc_library() else "pymalloc")

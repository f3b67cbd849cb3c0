"""What every benchmark shares: an isolated installation, the machine's description, and the record."""

from __future__ import annotations

import asyncio
import json
import os
import platform
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterator, Sequence
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import asyncpg

from deploy.local import MANAGEMENT_PORT, enable_stream_protocol, management_url_of, reachable
from deploy.sandbox import Processes, Sandbox, Servers, create_sandbox, remove_sandbox
from shared.settings import PROJECT_ROOT
from shared.units import Units

BENCHMARKS = PROJECT_ROOT / "BENCHMARKS.md"
T = TypeVar("T")


def servers() -> Servers:
    """The local servers (an administrator and a superuser), as `make test` names them; the broker's
    management API where it answers (the monitor's queue depths; benchmarks do not enable it)."""
    amqp = os.environ.get("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
    management = management_url_of(amqp)
    return Servers(
        amqp,
        os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"),
        tuple(os.environ.get("RABBITMQCTL", "rabbitmqctl").split()),
        int(os.environ.get("STREAM_PORT", "5552")),
        management if reachable(management, MANAGEMENT_PORT) else None,
    )


@contextmanager
def installation(
    units: Units,
    services: Sequence[str],
    *,
    label: str = "bench",
    instances: int = 1,
    log_level: str = "WARNING",
    keep_logs: Path | None = None,
    env: dict[str, dict[str, str]] | None = None,
) -> Iterator[tuple[Sandbox, Processes]]:
    """A fresh vhost, users and database with the given services running (each as `instances` processes
    consuming the same queues, each started with `env`'s settings for it); all removed afterwards."""
    with interruptible(), tempfile.TemporaryDirectory(prefix="simpul-bench-") as tmp:
        directory = Path(tmp)
        say(f"provisioning an isolated installation ({len(units.upts)} UPTs, {len(units.dukcapil)} Dukcapil)")
        stream_protocol(servers())
        sandbox = create_sandbox(servers(), directory, units, label=label)
        processes = Processes(sandbox, directory, env=dict(env or {}))
        try:
            for service in services:
                for instance in range(1, instances + 1):
                    processes.start(service, instance=instance, LOG_LEVEL=log_level)
            say(f"started: {', '.join(services)} ({instances} process{'es' if instances > 1 else ''} each)")
            yield sandbox, processes
        except BaseException:
            if keep_logs is not None:  # what the services said, for the failure's story
                keep_logs.mkdir(parents=True, exist_ok=True)
                for log in directory.glob("*.log"):
                    shutil.copy(log, keep_logs / log.name)
                say(f"the services' logs are kept in {keep_logs}")
            raise
        finally:
            processes.stop_all()
            remove_sandbox(sandbox)


def stream_protocol(at: Servers) -> None:
    """The central feed as the suite runs it: over RabbitMQ's stream protocol, enabled as `make run` enables
    it on a local broker. Without it the consolidator falls back to AMQP, which changes what the feed's
    figures measure: say so before anything is measured."""
    host = urlsplit(at.amqp_url).hostname or "127.0.0.1"
    why = enable_stream_protocol(host, at.stream_port)
    if why is not None:
        say(f"note: no stream protocol at {host}:{at.stream_port} ({why}): the central feed goes over AMQP")


@contextmanager
def interruptible() -> Iterator[None]:
    """SIGTERM (a `timeout`, a CI runner stopping) ends the run as Ctrl-C does: through every `finally`, so that
    the installation's vhost, users, database and processes go with it."""

    def stop(signum: int, frame: object) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # once: a second one (`timeout` passes it on) must not
        raise SystemExit(128 + signum)  # cut the clean-up short

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run(main: Coroutine[Any, Any, T], *, grace: float = 10.0) -> T:
    """asyncio.run for a benchmark: when it is interrupted (Ctrl-C, or SIGTERM through `interruptible`), its
    tasks are cancelled and given `grace` seconds to end, and then abandoned: a client still closing its
    connection to a broker that no longer answers cannot hold up the clean-up that follows (asyncio.run waits
    for every task for ever, and one Ctrl-C then left the installation behind)."""
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(main)
    finally:
        pending = asyncio.all_tasks(loop)
        for task in pending:
            task.cancel()
        if pending:
            with suppress(BaseException):
                loop.run_until_complete(asyncio.wait(pending, timeout=grace))
        with suppress(BaseException):
            loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()


async def until(
    check: Callable[[], Awaitable[Any]], what: str, timeout: float, *, every: float = 15.0
) -> Any:
    """Poll every half second until `check` gives something true; progress every `every` seconds."""
    began = said = time.monotonic()
    while not (result := await check()):
        if time.monotonic() - began > timeout:
            raise TimeoutError(f"{what}: not within {timeout:.0f} s")
        if time.monotonic() - said > every:
            say(f"  waiting for {what} ({time.monotonic() - began:.0f} s)")
            said = time.monotonic()
        await asyncio.sleep(0.5)
    return result


def memory_mb(pid: int | str = "self") -> dict[str, int]:
    """Resident ("rss") and peak resident ("peak") memory of a process, in MB."""
    fields = {"VmRSS": "rss", "VmHWM": "peak"}
    out = {}
    with open(f"/proc/{pid}/status", encoding="utf-8") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in fields:
                out[fields[key]] = int(value.split()[0]) // 1024
    return out


def cpu_seconds(pid: int | str = "self") -> float:
    """User and system CPU time a process has spent so far."""
    with open(f"/proc/{pid}/stat", encoding="utf-8") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _first_line(command: Sequence[str]) -> str:
    try:
        out = subprocess.run(command, capture_output=True, text=True, timeout=30, check=False).stdout.strip()
    except OSError:
        return "unknown"
    return out.splitlines()[-1] if out else "unknown"


async def database_version(dsn: str) -> str:
    conn = await asyncpg.connect(dsn)
    try:
        return str(await conn.fetchval("SHOW server_version"))
    finally:
        await conn.close()


def reference_seconds(rounds: int = 3) -> float:
    """The best of a few timings of one fixed piece of pure Python work (ten million additions): machines of
    one kind differ (the same benchmark has run twice as long on one as on another), and this says how fast
    the one that measured was. Lower is faster."""
    best = float("inf")
    for _ in range(rounds):
        began = time.perf_counter()
        total = 0
        for i in range(10_000_000):
            total += i
        best = min(best, time.perf_counter() - began)
    return round(best, 2)


def machine(database: str) -> dict[str, Any]:
    cpu = "unknown"
    with suppress(OSError, StopIteration):
        cpu = next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {
        "cpus": os.cpu_count(),
        "cpu": cpu,
        "memory_gib": round(memory, 1),
        "python": platform.python_version(),
        "rabbitmq": _first_line([*servers().rabbitmqctl, "version"]),
        "postgresql": database,
        "reference_s": reference_seconds(),
    }


def record(title: str, figures: dict[str, Any], notes: Sequence[str], info: dict[str, Any]) -> None:
    """Append the run to BENCHMARKS.md: date, machine, command and figures."""
    command = "python -m " + " ".join(
        [
            sys.modules["__main__"].__spec__.name if sys.modules["__main__"].__spec__ else sys.argv[0],
            *map(shlex.quote, sys.argv[1:]),
        ]
    )
    lines = [
        "",
        f"## {datetime.now(UTC):%Y-%m-%d %H:%M} UTC — {title}",
        "",
        f"Command: `{command}`  ",
        f"Machine: {info['cpus']} CPUs ({info['cpu']}), {info['memory_gib']} GiB, Python {info['python']}, "
        f"RabbitMQ {info['rabbitmq']}, PostgreSQL {info['postgresql']}; reference loop {info['reference_s']} s",
        "",
        "| figure | value |",
        "| --- | --- |",
        *(f"| {k} | {v} |" for k, v in figures.items()),
        "",
        *notes,
    ]
    with BENCHMARKS.open("a", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    say(f"recorded in {BENCHMARKS}")


def finish(figures: dict[str, Any]) -> None:
    """The last line a benchmark prints: its figures as one JSON object."""
    print(json.dumps(figures), flush=True)

"""The faults the fault harness injects into the local servers and service processes, each undone in a `finally`.

A fault that stops or starves the broker or PostgreSQL brings it back healthy even when the scenario around it
fails: every later test or benchmark on the machine depends on them. The broker is only ever (re)started with
a raised open-files limit (RabbitMQ's production guidance, 65,536): on the default 1,024 a node holding more
than about 927 queues never finishes recovering them after a restart.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field

import asyncpg

from bench import harness
from deploy import dbroles, localhost, provision
from deploy.sandbox import Processes

OPEN_FILES = provision.OPEN_FILES_ADVISED


class FaultError(RuntimeError):
    """A fault could not be injected or undone: the servers need a look before anything else runs."""


def _run(command: Sequence[str], timeout: float = 120) -> str:
    result = subprocess.run(list(command), capture_output=True, text=True, timeout=timeout, check=False)
    if result.returncode != 0:
        raise FaultError(f"{' '.join(command[:3])}: {(result.stderr or result.stdout).strip()[-500:]}")
    return result.stdout


@dataclass
class Broker:
    """The local RabbitMQ node, driven with `rabbitmqctl` as its administrator."""

    rabbitmqctl: tuple[str, ...] = ("rabbitmqctl",)

    def ctl(self, *args: str, timeout: float = 120) -> str:
        return _run([*self.rabbitmqctl, *args], timeout)

    def running(self) -> bool:
        try:
            self.ctl("await_startup", "--timeout", "5", timeout=30)
        except (FaultError, subprocess.TimeoutExpired):
            return False
        return True

    def open_files(self) -> int:
        status = json.loads(self.ctl("status", "--formatter", "json"))
        return int(status["file_descriptors"]["total_limit"])

    def queues(self) -> int:
        return int(self.ctl("eval", "length(rabbit_amqqueue:list()).").strip())

    def ensure_handles(self, extra_queues: int) -> None:
        """Before restarting a node that will hold `extra_queues` more queues: restart it now with a raised
        open-files limit if its own is too low to recover them all."""
        limit, queues = self.open_files(), self.queues() + extra_queues
        if provision.handles_suffice(limit, queues):
            return
        harness.say(
            f"the broker may hold {limit} open files, too few to recover {queues} queues after a restart: "
            f"restarting it now with 'ulimit -n {OPEN_FILES}'"
        )
        self.restart_node()

    def stop_app(self) -> None:
        self.ctl("stop_app")

    def start_app(self) -> None:
        self.ctl("start_app", timeout=600)
        self.ctl("await_startup", "--timeout", "600", timeout=660)

    def stop_node(self) -> None:
        self.ctl("stop", timeout=300)

    def start_node(self) -> None:
        """Start the node with the raised open-files limit (deploy/localhost.py), and wait for it."""
        command = localhost.broker_start_command(OPEN_FILES)
        if command is None:
            raise FaultError("rabbitmq-server is not installed on this machine")
        subprocess.run(command, capture_output=True, timeout=120, check=False)
        deadline = time.monotonic() + 600
        while not self.running():
            if time.monotonic() > deadline:
                raise FaultError("the broker did not start within 10 minutes")
            time.sleep(1)

    def restart_node(self) -> None:
        self.stop_node()
        self.start_node()

    def ensure_running(self) -> None:
        """Whatever happened: the node up with its application running."""
        if self.running():
            return
        with suppress(FaultError, subprocess.TimeoutExpired):
            self.ctl("start_app", timeout=600)  # the node is up, its application was stopped
        if not self.running():
            self.start_node()

    def disk_free_limit(self) -> int:
        return int(self.ctl("eval", "rabbit_disk_monitor:get_disk_free_limit().").strip())

    def memory_watermark(self) -> str:
        """As `set_vm_memory_high_watermark` takes it back: a fraction, or `absolute N`."""
        value = self.ctl("eval", "vm_memory_monitor:get_vm_memory_high_watermark().").strip()
        if value.startswith("{absolute,"):
            return "absolute " + value.removeprefix("{absolute,").rstrip("}")
        return value

    @asynccontextmanager
    async def disk_alarm(self) -> AsyncIterator[None]:
        """The free-disk limit set above what the disk has free: the broker blocks every publisher."""
        before = await asyncio.to_thread(self.disk_free_limit)
        free = shutil.disk_usage("/").free
        try:
            await asyncio.to_thread(self.ctl, "set_disk_free_limit", str(free + 2**40))
            yield
        finally:
            await asyncio.to_thread(self.ctl, "set_disk_free_limit", str(before))

    @asynccontextmanager
    async def memory_alarm(self) -> AsyncIterator[None]:
        """The memory watermark set to nothing: the broker blocks every publisher until it is set back."""
        before = await asyncio.to_thread(self.memory_watermark)
        try:
            await asyncio.to_thread(self.ctl, "set_vm_memory_high_watermark", "0.0001")
            yield
        finally:
            await asyncio.to_thread(self.ctl, "set_vm_memory_high_watermark", *before.split())


@dataclass
class Postgres:
    """The local PostgreSQL cluster (Debian's pg_ctlcluster) and, through a superuser, one database in it."""

    superuser_url: str
    database_url: str

    def cluster(self) -> tuple[str, str]:
        versions = sorted(os.listdir("/etc/postgresql"), key=lambda v: int(v) if v.isdigit() else 0)
        return versions[-1], "main"

    def ctl(self, action: str) -> None:
        version, name = self.cluster()
        _run(["pg_ctlcluster", "--skip-systemctl-redirect", version, name, action], timeout=180)

    async def answers(self) -> bool:
        try:
            conn = await asyncpg.connect(self.superuser_url, timeout=5)
        except (OSError, asyncpg.PostgresError, TimeoutError):
            return False
        await conn.close()
        return True

    async def ensure_running(self) -> None:
        if await self.answers():
            return
        with suppress(FaultError, subprocess.TimeoutExpired):
            self.ctl("start")
        deadline = time.monotonic() + 120
        while not await self.answers():
            if time.monotonic() > deadline:
                raise FaultError("PostgreSQL did not come back within 2 minutes")
            await asyncio.sleep(1)

    async def restart(self) -> None:
        try:
            await asyncio.to_thread(self.ctl, "restart")
        finally:
            await self.ensure_running()

    @asynccontextmanager
    async def refusing(self) -> AsyncIterator[None]:
        """The installation's database refuses every connection, and those it had are cut: to its services
        PostgreSQL is away, while every other database on the server goes on."""
        name = dbroles.database_name(self.database_url)
        conn = await asyncpg.connect(self.superuser_url)
        try:
            await conn.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS false')
            await conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> "
                "pg_backend_pid()",
                name,
            )
            yield
        finally:
            await self.ensure_running()
            with suppress(asyncpg.PostgresError, OSError):
                await conn.close()
            conn = await asyncpg.connect(self.superuser_url)
            try:
                await conn.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS true')
            finally:
                await conn.close()


@dataclass
class Supervisor:
    """Keeps the installation's service processes running as a service manager would (restart always): a
    process that dies, killed or crashed, is started again; every exit it did not cause is counted."""

    processes: Processes
    names: tuple[str, ...]
    crashes: list[str] = field(default_factory=list)
    restarts: int = 0
    _task: asyncio.Task[None] | None = None
    _killed: set[str] = field(default_factory=set)

    def start(self) -> None:
        self._task = asyncio.create_task(self._watch())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with suppress(asyncio.CancelledError):
                await self._task

    def kill(self, name: str) -> None:
        """kill -9: the process gets no chance to finish anything."""
        self._killed.add(name)
        with suppress(ProcessLookupError):
            os.kill(self.processes.pid(name), signal.SIGKILL)

    async def _watch(self) -> None:
        while True:
            for name in self.names:
                process = self.processes.running.get(name)
                if process is None or process.poll() is None:
                    continue
                if name not in self._killed:
                    self.crashes.append(f"{name} exited ({process.returncode})")
                self._killed.discard(name)
                await self._restart(name)
            await asyncio.sleep(0.2)

    async def _restart(self, name: str) -> None:
        service, _, instance = name.partition("-")
        self.processes.running.pop(name, None)
        for attempt in range(1, 100):
            try:
                await asyncio.to_thread(
                    self.processes.start, service, 120, instance=int(instance or 1), LOG_LEVEL="INFO"
                )
                self.restarts += 1
                return
            except RuntimeError as failed:  # not ready yet (its broker or database away): again, like systemd
                stray = self.processes.running.pop(name, None)
                if stray is not None and stray.poll() is None:
                    stray.kill()
                    stray.wait()
                harness.say(f"    {name} did not start (attempt {attempt}): {str(failed)[-200:]}")
                await asyncio.sleep(min(2.0 * attempt, 10.0))
        raise FaultError(f"{name} could not be started again")

    def all_ready(self) -> bool:
        return all(n in self.processes.running and self.processes.ready(n) for n in self.names)

    async def until_ready(self, timeout: float = 600) -> float:
        """Seconds until every process answers ready again."""
        began = time.monotonic()
        while not await asyncio.to_thread(self.all_ready):
            if time.monotonic() - began > timeout:
                raise FaultError(f"not every service was ready again within {timeout:.0f} s")
            await asyncio.sleep(0.2)
        return time.monotonic() - began

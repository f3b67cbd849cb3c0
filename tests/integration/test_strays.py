"""`make clean-sandboxes`: what a crashed run left on the local broker and database goes; a run in progress
(its marker names a live process) and the `make run` installation stay."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid

import asyncpg
import pytest

from deploy import strays
from deploy.sandbox import MARKERS, Servers
from shared import db, messaging
from tests.conftest import Installation

pytestmark = pytest.mark.integration


def ctl(servers: Servers, *args: str) -> None:
    subprocess.run([*servers.rabbitmqctl, *args], check=True, capture_output=True, timeout=120)


async def make_database(servers: Servers, name: str, role: str) -> None:
    await db.ensure_database(db.with_database(servers.database_url, name))
    conn = await asyncpg.connect(db.with_database(servers.database_url, "postgres"))
    try:
        await conn.execute(f'CREATE ROLE "{role}"')
    finally:
        await conn.close()


def leave_behind(servers: Servers, run: str) -> None:
    """A sandbox's remains as a killed run leaves them: a vhost, a broker user, a database and its role."""
    ctl(servers, "add_vhost", f"simpul-test-{run}")
    ctl(servers, "add_user", f"t{run}-svc-registry", "x")
    asyncio.run(make_database(servers, f"simpul_test_{run}", f"simpul_test_{run}_registry"))


def test_strays_go_and_a_run_in_progress_stays(servers: Servers) -> None:
    dead, alive = uuid.uuid4().hex[:8], uuid.uuid4().hex[:8]
    MARKERS.mkdir(exist_ok=True)
    (MARKERS / alive).write_text(f"{os.getpid()}\n")  # this process: alive
    (MARKERS / dead).write_text("999999999\n")  # a process that is no more
    try:
        leave_behind(servers, dead)
        leave_behind(servers, alive)
        found, busy = strays.find(servers)
        mine = {f.run: f for f in found if f.run in (dead, alive)}
        assert set(mine) == {dead}
        assert alive in busy
        assert mine[dead].vhosts == [f"simpul-test-{dead}"]
        assert mine[dead].users == [f"t{dead}-svc-registry"]
        assert mine[dead].databases == [f"simpul_test_{dead}"]
        assert mine[dead].roles == [f"simpul_test_{dead}_registry"]
        assert all(not f.vhosts or f.vhosts != ["simpul"] for f in found)  # never the installation's
        strays.remove(servers, mine[dead])
        found, busy = strays.find(servers)
        assert dead not in {f.run for f in found}
        assert not (MARKERS / dead).exists()
    finally:
        (MARKERS / alive).unlink(missing_ok=True)
        for leftovers in strays.find(servers)[0]:  # the alive one's marker is gone: now a stray too
            if leftovers.run in (dead, alive):
                strays.remove(servers, leftovers)


def test_the_command_line_lists_before_it_removes(servers: Servers) -> None:
    run = uuid.uuid4().hex[:8]
    leave_behind(servers, run)
    env = {**os.environ, "AMQP_URL": servers.amqp_url, "DATABASE_URL": servers.database_url}
    try:
        dry = subprocess.run(
            [sys.executable, "-m", "deploy.strays", "--dry-run"],
            capture_output=True,
            text=True,
            env=env,
            timeout=300,
        )
        assert dry.returncode == 0, dry.stderr
        assert f"would remove run {run}: 1 vhosts, 1 users, 1 databases, 1 roles" in dry.stdout
        assert f"simpul_test_{run}" in asyncio.run(names(servers))  # nothing removed yet
    finally:
        done = subprocess.run(
            [sys.executable, "-m", "deploy.strays"], capture_output=True, text=True, env=env, timeout=300
        )
    assert done.returncode == 0, done.stderr
    assert f"removing run {run}" in done.stdout
    assert f"simpul_test_{run}" not in asyncio.run(names(servers))


async def names(servers: Servers) -> list[str]:
    conn = await asyncpg.connect(db.with_database(servers.database_url, "postgres"))
    try:
        return [r[0] for r in await conn.fetch("SELECT datname FROM pg_database")]
    finally:
        await conn.close()


def test_the_broker_says_how_many_handles_it_has_and_queues_it_holds(installation: Installation) -> None:
    from deploy.provision import RabbitmqctlBackend

    found = RabbitmqctlBackend(installation.servers.rabbitmqctl).handles()
    assert found is not None
    handles, queues = found
    assert handles > 100  # RabbitMQ keeps about 90 % of the process's open-files limit as handles
    assert queues >= len(messaging.QUEUES)  # at least this session's installation's

"""RabbitMQ and PostgreSQL installed on this machine (Debian packages): started when they have stopped.

`make run`, `make test` and the fault harness start a stopped local server instead of failing. The broker is
always started with a raised open-files limit (RabbitMQ's production guidance, 65,536, as far as the host's
hard limit allows): on the default 1,024 a node holding more than about 927 queues never finishes recovering
them after a restart. As root, the broker's own user is taken with setpriv: Debian's wrapper switches with
`su`, whose PAM session sets the soft limit back to 1,024.
"""

from __future__ import annotations

import os
import pwd
import resource
import shutil
import socket
import subprocess
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from urllib.parse import urlsplit

from deploy.provision import OPEN_FILES_ADVISED as OPEN_FILES

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


def _has_user(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def broker_server() -> str | None:
    """This machine's rabbitmq-server, if it has one."""
    found = shutil.which("rabbitmq-server")
    if found is None and Path("/usr/sbin/rabbitmq-server").exists():
        found = "/usr/sbin/rabbitmq-server"
    return found


def broker_start_command(open_files: int = OPEN_FILES) -> list[str] | None:
    """The command that starts this machine's broker detached with the raised limit; None without one."""
    server = broker_server()
    if server is None:
        return None
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    limit = open_files if hard == resource.RLIM_INFINITY else min(open_files, hard)
    command = f"exec {server} -detached"
    if os.geteuid() == 0 and shutil.which("setpriv") and _has_user("rabbitmq"):
        home = Path("/var/lib/rabbitmq")
        command = (
            f"cd {home} && exec setpriv --reuid=rabbitmq --regid=rabbitmq --init-groups "
            f"env HOME={home} {server} -detached"
        )
    return ["bash", "-c", f"ulimit -n {limit} && {command}"]


def postgres_start_commands() -> list[list[str]]:
    """Debian's commands that start every PostgreSQL cluster of this machine."""
    ctl, root = shutil.which("pg_ctlcluster"), Path("/etc/postgresql")
    if ctl is None or not root.is_dir():
        return []
    return [
        [ctl, "--skip-systemctl-redirect", version.name, cluster.name, "start"]
        for version in sorted(root.iterdir())
        for cluster in sorted(version.iterdir())
        if cluster.is_dir()
    ]


def _wait(ready: Callable[[], bool], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while not ready():
        if time.monotonic() > deadline:
            return False
        time.sleep(1)
    return True


def ensure_started(
    amqp_url: str,
    database_url: str,
    *,
    grace: float = 30,
    wait: float = 300,
    say: Callable[[str], None] = print,
) -> list[str]:
    """Start this machine's broker or database when its URL names this machine and it does not answer (after
    `grace` seconds: it may be booting); what still does not answer, each with why. Servers elsewhere are
    left alone."""
    problems: list[str] = []
    servers = (
        ("RabbitMQ", urlsplit(amqp_url), 5672, [c] if (c := broker_start_command()) else []),
        ("PostgreSQL", urlsplit(database_url), 5432, postgres_start_commands()),
    )
    for name, url, default_port, commands in servers:
        host, port = url.hostname or "127.0.0.1", url.port or default_port
        if _wait(partial(answers, host, port), grace):
            continue
        if host not in LOOPBACK or not commands:
            problems.append(f"{name} does not answer on {host}:{port} and is not installed on this machine")
            continue
        say(f"{name} does not answer on {host}:{port}: starting it ({' '.join(commands[0][-3:])})")
        for command in commands:
            subprocess.run(command, capture_output=True, timeout=120, check=False)
        if not _wait(partial(answers, host, port), wait):
            problems.append(f"{name} was started but does not answer on {host}:{port} after {wait:.0f} s")
    return problems

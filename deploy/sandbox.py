"""Isolated installations on shared servers: own vhost, broker users and database, and service processes.

Tests and benchmarks use them so that they never touch a running suite or each other, and clean up after.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from deploy import credentials as creds
from deploy import dbroles, provision
from shared import db
from shared.settings import PROJECT_ROOT, ServiceSettings
from shared.units import Units, write_units

S = TypeVar("S", bound=ServiceSettings)
SERVICES = ("registry", "dedup", "consolidator", "monitor")


@dataclass(frozen=True)
class Servers:
    amqp_url: str  # an administrator on the broker
    database_url: str  # a superuser on the PostgreSQL server
    rabbitmqctl: tuple[str, ...] = ("rabbitmqctl",)
    stream_port: int = 5552  # the rabbitmq_stream plugin's, on the same host as amqp_url
    # the broker's management API, where it answers (the monitor's queue depths)
    management_url: str | None = None


@dataclass
class Sandbox:
    """One isolated copy of the suite's broker and database set-up."""

    servers: Servers
    vhost: str
    namespace: str
    database_url: str
    units: Units
    credentials: list[creds.Credential]
    credentials_path: Path

    def url_for(self, role: str, unit_id: str) -> str:
        return creds.amqp_url(self.servers.amqp_url, creds.find(self.credentials, role, unit_id), self.vhost)

    @property
    def admin_url(self) -> str:
        return provision.vhost_url(self.servers.amqp_url, self.vhost)

    @property
    def units_dir(self) -> Path:
        return self.credentials_path.parent / "units"

    def database_url_for(self, service: str) -> str:
        """What the service connects with: its own role where it has one (see deploy/dbroles.py)."""
        return creds.database_url(self.database_url, self.credentials, service)

    def settings(self, service: str, settings_type: type[S], **overrides: Any) -> S:
        values: dict[str, Any] = {
            "amqp_url": self.url_for("service", service),
            "database_url": self.database_url_for(service),
            "broker_namespace": self.namespace,
            "health_port": 0,
            "graceful_timeout": 5.0,
            "units_dir": self.units_dir,
        }
        return settings_type(**(values | overrides))

    def service_env(self, service: str, **extra: str) -> dict[str, str]:
        return {
            **os.environ,
            "AMQP_URL": self.url_for("service", service),
            "DATABASE_URL": self.database_url_for(service),
            "BROKER_NAMESPACE": self.namespace,
            "UNITS_DIR": str(self.units_dir),
            "LOG_JSON": "true",
            "GRACEFUL_TIMEOUT": "10",
            **({"DEDUP_GALLERY_KEY": self.gallery_key()} if service == "dedup" else {}),
            **({"FEED_STREAM_PORT": str(self.servers.stream_port)} if service == "consolidator" else {}),
            **extra,
        }

    def gallery_key(self) -> str:
        return creds.gallery_key(self.credentials_path.parent)


# Where a run in progress says so (its process id, by run id): deploy/strays.py leaves its sandbox alone.
MARKERS = Path(tempfile.gettempdir()) / "simpul-sandboxes"


def create_sandbox(servers: Servers, directory: Path, units: Units, *, label: str = "test") -> Sandbox:
    run = uuid.uuid4().hex[:8]
    MARKERS.mkdir(exist_ok=True)
    (MARKERS / run).write_text(f"{os.getpid()}\n")
    write_units(units, directory / "units")
    database_url = db.with_database(servers.database_url, f"simpul_{label.replace('-', '_')}_{run}")
    sandbox = Sandbox(
        servers,
        f"simpul-{label}-{run}",
        f"{label[0]}{run}-",
        database_url,
        units,
        [],
        directory / "credentials.csv",
    )
    try:
        sandbox.credentials = asyncio.run(
            provision.provision(
                units=units,
                vhost=sandbox.vhost,
                namespace=sandbox.namespace,
                admin_url=servers.amqp_url,
                backend=provision.RabbitmqctlBackend(servers.rabbitmqctl),
                credentials_path=sandbox.credentials_path,
                database_url=database_url,
                quiet=True,
            )
        )
    except BaseException:
        # Leave nothing behind: whatever part of the vhost, users and database was made goes again.
        sandbox.credentials = creds.read(sandbox.credentials_path)
        remove_sandbox(sandbox)
        raise
    return sandbox


def remove_sandbox(sandbox: Sandbox) -> None:
    provision.deprovision(
        provision.RabbitmqctlBackend(sandbox.servers.rabbitmqctl), sandbox.vhost, sandbox.credentials
    )
    asyncio.run(db.drop_database(sandbox.database_url))
    # Roles belong to the server, not the database: gone only when dropped, after the database they hold.
    database = dbroles.database_name(sandbox.database_url)
    roles = [c.username for c in sandbox.credentials if c.role == "database"]
    roles += [dbroles.role_name(database, s) for s in creds.DATABASE_ROLE_SERVICES]
    asyncio.run(dbroles.drop_roles(sandbox.servers.database_url, roles))
    (MARKERS / sandbox.vhost.rsplit("-", 1)[-1]).unlink(missing_ok=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Processes:
    """Service processes of a sandbox, started as `make up` starts them, each with its own log."""

    sandbox: Sandbox
    logs: Path
    ports: dict[str, int] = field(default_factory=dict)
    running: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    # Settings of every start of a service, restarts included (e.g. MEMORY_CENSUS for a memory hunt).
    env: dict[str, dict[str, str]] = field(default_factory=dict)

    @property
    def monitor_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['monitor']}"

    @property
    def api_url(self) -> str:
        """The consolidator's person lookup API."""
        return f"http://127.0.0.1:{self.ports['consolidator-api']}"

    def ready_url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.ports[service]}/health/ready"

    def start(self, service: str, timeout: float = 60, *, instance: int = 1, **env: str) -> str:
        """Start a service process (another instance of it: more consumers on the same queues); its name."""
        name = service if instance == 1 else f"{service}-{instance}"
        self.ports.setdefault(name, free_port())
        port = str(self.ports[name])
        extra = {"WEB_PORT": port, "HEALTH_PORT": "0"} if service == "monitor" else {"HEALTH_PORT": port}
        if service == "monitor":  # the /metrics of every other service started so far
            others = {
                n: p for n, p in self.ports.items() if n in self.running and not n.startswith("monitor")
            }
            extra["METRICS_TARGETS"] = json.dumps(
                {n: f"http://127.0.0.1:{p}/metrics" for n, p in others.items()}
            )
            if self.sandbox.servers.management_url:
                extra["RABBITMQ_API_URL"] = self.sandbox.servers.management_url
        if service == "consolidator":
            # Runs only when a test or a benchmark commands one; the lookup API on a port of its own.
            self.ports.setdefault(f"{name}-api", free_port())
            extra |= {"API_PORT": str(self.ports[f"{name}-api"]), "CONSOLIDATION_SCHEDULE": ""}
        log = (self.logs / f"{name}.log").open("ab")
        self.running[name] = subprocess.Popen(
            [sys.executable, "-m", f"services.{service}"],
            cwd=PROJECT_ROOT,
            env=self.sandbox.service_env(service, **extra, **self.env.get(service, {}), **env),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.running[name].poll() is not None:
                raise RuntimeError(f"{name} exited: {self.log(name)[-3000:]}")
            if self.ready(name):
                return name
            time.sleep(0.2)
        raise RuntimeError(f"{name} not ready after {timeout}s")

    def ready(self, service: str) -> bool:
        try:
            with urllib.request.urlopen(self.ready_url(service), timeout=2) as response:  # noqa: S310 (localhost)
                return bool(json.load(response)["ready"])
        except (OSError, ValueError):
            return False

    def stop(self, service: str, timeout: float = 30) -> int:
        """SIGTERM and wait: the exit code of a graceful stop."""
        process = self.running.pop(service)
        process.send_signal(signal.SIGTERM)
        try:
            return process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            raise

    def stop_all(self) -> None:
        for service in list(self.running):
            try:
                self.stop(service)
            except Exception:  # a process that will not stop must not keep the run's resources alive
                self.running.pop(service, None)

    def log(self, service: str) -> str:
        return (self.logs / f"{service}.log").read_text()

    def pid(self, service: str) -> int:
        return self.running[service].pid

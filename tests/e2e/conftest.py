"""The four services as real processes on an isolated installation, like `make up` does."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from shared.settings import PROJECT_ROOT
from tests.conftest import Installation, Servers, make_installation, remove_installation

SERVICES = ("registry", "dedup", "consolidator", "monitor")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Suite:
    installation: Installation
    logs: Path
    ports: dict[str, int] = field(default_factory=dict)
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def monitor_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['monitor']}"

    def ready_url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.ports[service]}/health/ready"

    def start(self, service: str, timeout: float = 60) -> None:
        self.ports.setdefault(service, free_port())
        extra = (
            {"WEB_PORT": str(self.ports[service]), "HEALTH_PORT": "0"}
            if service == "monitor"
            else {"HEALTH_PORT": str(self.ports[service])}
        )
        log = (self.logs / f"{service}.log").open("ab")
        self.processes[service] = subprocess.Popen(
            [sys.executable, "-m", f"services.{service}"],
            cwd=PROJECT_ROOT,
            env=self.installation.service_env(service, **extra),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.processes[service].poll() is not None:
                raise RuntimeError(f"{service} exited: {(self.logs / f'{service}.log').read_text()[-3000:]}")
            if self.ready(service):
                return
            time.sleep(0.2)
        raise RuntimeError(f"{service} not ready after {timeout}s")

    def ready(self, service: str) -> bool:
        try:
            with urllib.request.urlopen(self.ready_url(service), timeout=2) as response:  # noqa: S310
                return bool(json.load(response)["ready"])
        except (OSError, ValueError):
            return False

    def stop(self, service: str, timeout: float = 30) -> int:
        """SIGTERM and wait: the exit code of a graceful stop."""
        process = self.processes.pop(service)
        process.send_signal(signal.SIGTERM)
        try:
            return process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            raise

    def log(self, service: str) -> str:
        return (self.logs / f"{service}.log").read_text()


@pytest.fixture(scope="session")
def suite(servers: Servers, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Suite]:
    directory = tmp_path_factory.mktemp("suite")
    installation = make_installation(servers, directory)
    suite = Suite(installation, directory)
    try:
        for service in SERVICES:
            suite.start(service)
        yield suite
    finally:
        for service in list(suite.processes):
            try:
                suite.stop(service)
            except Exception:  # a process that will not stop must not keep the run's resources alive
                suite.processes.pop(service, None)
        remove_installation(installation)
        if os.environ.get("SIMPUL_KEEP_LOGS"):
            print(f"service logs kept in {directory}")

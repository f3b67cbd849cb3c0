"""deploy/localhost.py: a stopped local server is started, the broker with its open-files limit raised."""

from __future__ import annotations

import socket
import subprocess
from typing import Any

import pytest

from deploy import localhost


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_the_broker_starts_detached_with_the_raised_open_files_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(localhost, "broker_server", lambda: "/usr/sbin/rabbitmq-server")
    command = localhost.broker_start_command(4096)
    assert command is not None
    assert command[:2] == ["bash", "-c"]
    assert command[2].startswith("ulimit -n 4096 && ")
    assert command[2].endswith("/usr/sbin/rabbitmq-server -detached")


def test_no_command_without_a_broker_on_this_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(localhost, "broker_server", lambda: None)
    assert localhost.broker_start_command() is None


def test_servers_that_answer_are_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    ran: list[Any] = []
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: ran.append(a))
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        url = f"amqp://guest:guest@127.0.0.1:{port}/"
        assert localhost.ensure_started(url, f"postgresql://postgres@127.0.0.1:{port}/x", grace=0) == []
    assert ran == []


def test_a_silent_server_elsewhere_is_reported_not_started(monkeypatch: pytest.MonkeyPatch) -> None:
    ran: list[Any] = []
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: ran.append(a))
    monkeypatch.setattr(localhost, "answers", lambda host, port: host == "127.0.0.1")
    problems = localhost.ensure_started(
        "amqp://guest:guest@broker.example:5672/", "postgresql://postgres@127.0.0.1:5432/x", grace=0
    )
    assert problems == [
        "RabbitMQ does not answer on broker.example:5672 and is not installed on this machine"
    ]
    assert ran == []


def test_a_silent_local_server_is_started_and_awaited(monkeypatch: pytest.MonkeyPatch) -> None:
    port, started = free_port(), []
    monkeypatch.setattr(
        localhost, "postgres_start_commands", lambda: [["pg_ctlcluster", "15", "main", "start"]]
    )
    monkeypatch.setattr(subprocess, "run", lambda command, **k: started.append(command))
    monkeypatch.setattr(localhost, "answers", lambda host, p: p != port or bool(started))
    said: list[str] = []
    problems = localhost.ensure_started(
        "amqp://guest:guest@127.0.0.1:5672/", f"postgresql://postgres@127.0.0.1:{port}/x", grace=0,
        say=said.append,
    )  # fmt: skip
    assert problems == []
    assert started == [["pg_ctlcluster", "15", "main", "start"]]
    assert said == [f"PostgreSQL does not answer on 127.0.0.1:{port}: starting it (15 main start)"]

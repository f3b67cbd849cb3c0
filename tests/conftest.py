"""Fixtures for tests on real servers: each run gets its own vhost, broker users and database."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from deploy.sandbox import Sandbox as Installation
from deploy.sandbox import Servers, create_sandbox, remove_sandbox
from shared.settings import PROJECT_ROOT
from shared.units import load_units

__all__ = ["Installation", "Servers", "make_installation", "remove_sandbox"]

# Seven UPTs under three Kanwil and two Dukcapil offices: enough to cross units and scopes, small to provision.
TEST_UNITS = (
    "upt-1101-1",
    "upt-1102-1",
    "upt-1171-1",
    "upt-3273-1",
    "upt-3273-2",
    "upt-3204-1",
    "upt-3171-1",
    "dukcapil-3273",
    "dukcapil-1101",
)


def _docker_available() -> bool:
    try:
        import docker

        docker.from_env().ping()
        return True
    except Exception:
        return False


@pytest.fixture(scope="session")
def servers() -> Iterator[Servers]:
    """The local servers named by AMQP_URL/DATABASE_URL, or containers when a Docker engine answers."""
    amqp, database = os.environ.get("AMQP_URL"), os.environ.get("DATABASE_URL")
    if amqp and database:
        rabbitmqctl = tuple(os.environ.get("RABBITMQCTL", "rabbitmqctl").split())
        stream_port = int(os.environ.get("STREAM_PORT", "5552"))
        from deploy import localhost
        from deploy.local import enable_management, enable_stream_protocol, management_url_of

        host = urlsplit(amqp).hostname or "127.0.0.1"
        # A stopped local broker or database is started (with the broker's open-files limit raised), as
        # `make run` does; one that still does not answer fails every test that needs it, with this reason.
        for problem in localhost.ensure_started(amqp, database):
            print(f"\n{problem}")
        # The central feed's tests speak the stream protocol: a local broker gets its plugin, as `make run` does.
        enable_stream_protocol(host, stream_port)
        # The monitor reads queue depths from the management API where the broker has it, as `make run` sets up.
        management = None if enable_management(host) else management_url_of(amqp)
        yield Servers(amqp, database, rabbitmqctl, stream_port, management)
        return
    if not _docker_available():
        pytest.skip("AMQP_URL/DATABASE_URL not set and no Docker engine answers")
    from testcontainers.postgres import PostgresContainer
    from testcontainers.rabbitmq import RabbitMqContainer

    with (
        RabbitMqContainer("rabbitmq:3.10-management") as rabbit,
        PostgresContainer("postgres:15", driver=None) as pg,
    ):
        params = rabbit.get_connection_params()
        yield Servers(
            f"amqp://{rabbit.username}:{rabbit.password}@{params.host}:{params.port}/",
            pg.get_connection_url(),
            ("docker", "exec", rabbit.get_wrapped_container().id, "rabbitmqctl"),
            management_url=f"http://{params.host}:{rabbit.get_exposed_port(15672)}",
        )


def make_installation(servers: Servers, directory: Path, units: tuple[str, ...] = TEST_UNITS) -> Installation:
    everything = load_units(PROJECT_ROOT / "deploy" / "units")
    return create_sandbox(servers, directory, everything.subset(set(units)))


@pytest.fixture(scope="session")
def installation(servers: Servers, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installation]:
    inst = make_installation(servers, tmp_path_factory.mktemp("installation"))
    yield inst
    remove_sandbox(inst)

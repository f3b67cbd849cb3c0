"""Fixtures for tests on real servers: each run gets its own vhost, broker users and database."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest

from deploy import credentials as creds
from deploy import provision
from shared import db
from shared.settings import PROJECT_ROOT, ServiceSettings
from shared.units import Units, load_units

S = TypeVar("S", bound=ServiceSettings)
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


@dataclass(frozen=True)
class Servers:
    amqp_url: str  # an administrator on the broker
    database_url: str  # a superuser on the PostgreSQL server
    rabbitmqctl: tuple[str, ...]


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
        yield Servers(amqp, database, tuple(os.environ.get("RABBITMQCTL", "rabbitmqctl").split()))
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
        )


@dataclass
class Installation:
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

    def settings(self, service: str, settings_type: type[S], **overrides: Any) -> S:
        values: dict[str, Any] = {
            "amqp_url": self.url_for("service", service),
            "database_url": self.database_url,
            "broker_namespace": self.namespace,
            "health_port": 0,
            "graceful_timeout": 5.0,
            "units_dir": self.units_dir,
        }
        return settings_type(**(values | overrides))

    @property
    def units_dir(self) -> Path:
        return self.credentials_path.parent / "units"

    def service_env(self, service: str, **extra: str) -> dict[str, str]:
        return {
            **os.environ,
            "AMQP_URL": self.url_for("service", service),
            "DATABASE_URL": self.database_url,
            "BROKER_NAMESPACE": self.namespace,
            "UNITS_DIR": str(self.units_dir),
            "LOG_JSON": "true",
            "GRACEFUL_TIMEOUT": "10",
            **extra,
        }


def make_installation(servers: Servers, directory: Path, upts: tuple[str, ...] = TEST_UNITS) -> Installation:
    run = uuid.uuid4().hex[:8]
    units = load_units(PROJECT_ROOT / "deploy" / "units").subset(set(upts))
    from shared.units import write_units

    write_units(units, directory / "units")
    database_url = db.with_database(servers.database_url, f"simpul_test_{run}")
    inst = Installation(
        servers, f"simpul-test-{run}", f"t{run}-", database_url, units, [], directory / "credentials.csv"
    )
    inst.credentials = asyncio.run(
        provision.provision(
            units=units,
            vhost=inst.vhost,
            namespace=inst.namespace,
            admin_url=servers.amqp_url,
            backend=provision.RabbitmqctlBackend(servers.rabbitmqctl),
            credentials_path=inst.credentials_path,
            database_url=database_url,
            quiet=True,
        )
    )
    return inst


def remove_installation(inst: Installation) -> None:
    provision.deprovision(
        provision.RabbitmqctlBackend(inst.servers.rabbitmqctl), inst.vhost, inst.credentials
    )
    asyncio.run(db.drop_database(inst.database_url))


@pytest.fixture(scope="session")
def installation(servers: Servers, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installation]:
    inst = make_installation(servers, tmp_path_factory.mktemp("installation"))
    yield inst
    remove_installation(inst)

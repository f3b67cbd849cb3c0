"""The four services as real processes on an isolated installation, like `make up` does."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from deploy.sandbox import SERVICES, Processes, Sandbox
from tests.conftest import Servers, make_installation, remove_sandbox


class Suite(Processes):
    @property
    def installation(self) -> Sandbox:
        return self.sandbox


@pytest.fixture(scope="session")
def suite(servers: Servers, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Suite]:
    directory = tmp_path_factory.mktemp("suite")
    suite = Suite(make_installation(servers, directory), directory)
    try:
        for service in SERVICES:
            suite.start(service)
        yield suite
    finally:
        suite.stop_all()
        remove_sandbox(suite.sandbox)
        if os.environ.get("SIMPUL_KEEP_LOGS"):
            print(f"service logs kept in {directory}")

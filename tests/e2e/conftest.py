"""The four services as real processes on an isolated installation, like `make up` does."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import date

import asyncpg
import pytest

from deploy import credentials as creds
from deploy.sandbox import SERVICES, Processes, Sandbox
from services.consolidator.command import request_run
from tests.conftest import Servers, make_installation, remove_sandbox
from tests.integration.helpers import eventually


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


async def consolidate(suite: Suite, day: date, *, accept: tuple[str, ...] = (), timeout: float = 120) -> str:
    """The centre commands a run of the day (as its broker user) and waits for its last step; the run id."""
    inst = suite.installation
    pusat = creds.find(inst.credentials, "pusat", "pusat")
    run_id = await request_run(
        inst.url_for("pusat", "pusat"), pusat.username, day, requested_by="e2e", reason="test", accept=accept
    )

    async def finished() -> str | None:
        conn = await asyncpg.connect(inst.database_url)
        try:
            state = await conn.fetchval("SELECT state FROM consolidator.runs WHERE run_id = $1", run_id)
        finally:
            await conn.close()
        return run_id if state == "finished" else None

    await eventually(finished, timeout=timeout, what=f"consolidation run {run_id}")
    return run_id


async def wait_staged(suite: Suite, upt_id: str, *, snapshot: int, timeout: float = 60) -> None:
    """Until every part of that snapshot has reached the consolidator (dedup checks parts after receipts)."""

    async def staged() -> bool:
        conn = await asyncpg.connect(suite.installation.database_url)
        try:
            missing = await conn.fetchval(
                "SELECT count(*) = 0 OR bool_or(NOT (checked OR (stored AND accepted = 0))) "
                "FROM consolidator.sdp_parts WHERE upt_id = $1 AND snapshot = $2",
                upt_id,
                snapshot,
            )
        finally:
            await conn.close()
        return not missing

    await eventually(staged, timeout=timeout, what=f"{upt_id} snapshot {snapshot} staged")

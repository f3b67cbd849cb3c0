"""make backup / make restore: an installation that ran a day and its run, backed up, removed from the broker
and the database server, restored into them empty, holds the same central records, verdicts and run report,
and its services run on it again with the restored credentials and gallery key."""

from __future__ import annotations

import argparse
import asyncio
import random
import shutil
from datetime import datetime, timedelta
from typing import Any

import asyncpg
import pytest

from bench import harness
from bench import planted as planted_day
from bench.faultkit import Broker, Postgres, Supervisor
from bench.faultrun import CENTRAL, VERDICTS, Rig, play, report_files
from deploy import backup, provision
from deploy.credentials import GALLERY_KEY_FILE
from deploy.sandbox import Servers, remove_sandbox
from shared.contracts import WIB
from shared.settings import PROJECT_ROOT
from shared.units import load_units
from sim.ektp import CaptureStations, PacketOptions

pytestmark = pytest.mark.e2e
SERVICES = ("registry", "dedup", "consolidator")


async def _nothing(rig: Rig) -> None:
    return None


async def held(dsn: str, run_id: str) -> dict[str, Any]:
    """What the installation holds that a restore must give back."""
    conn = await asyncpg.connect(dsn)
    try:
        central = sorted(tuple(r) for r in await conn.fetch(CENTRAL))
        verdicts = sorted(tuple(r) for r in await conn.fetch(VERDICTS))
        audit = await conn.fetchval("SELECT count(*) FROM consolidator.lookup_audit")
    finally:
        await conn.close()
    report = await report_files(dsn, run_id)
    assert report
    return {"central": central, "verdicts": verdicts, "audit": audit, "report": report}


@pytest.fixture(scope="module")
def restored(servers: Servers, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    day = datetime.now(WIB).date() - timedelta(days=1)
    args = argparse.Namespace(total=800, upts=5, part_size=100, seed=5)
    planted = planted_day.plant(args, day)
    all_units = load_units(PROJECT_ROOT / "deploy" / "units")
    sending = {u.upt_id for u in planted.units.upts} - {planted.truth.silent_upt}
    units = all_units.subset(sending | {all_units.dukcapil[0].unit_id})
    packets = CaptureStations(units.dukcapil, PacketOptions(as_of=day, total=40, seed=5)).day()
    folder = tmp_path_factory.mktemp("backup") / "simpul-backup"
    run_dir = tmp_path_factory.mktemp("restored-run")
    out: dict[str, Any] = {}
    with harness.installation(units, SERVICES, label="backup") as (sandbox, processes):
        rig = Rig(
            sandbox, processes, Supervisor(processes, SERVICES), Broker(servers.rabbitmqctl),
            Postgres(servers.database_url, sandbox.database_url), random.Random(5), 60.0,
        )  # fmt: skip

        async def the_day() -> str:
            try:
                *_, run_id, _ = await play(rig, _nothing, units, planted.by_upt, day, packets, 100)
                return run_id
            finally:
                await rig.supervisor.stop()

        run_id = asyncio.run(the_day())
        out["before"] = asyncio.run(held(sandbox.database_url, run_id))
        processes.stop_all()
        backup.create(
            folder, database_url=sandbox.database_url, vhost=sandbox.vhost,
            run_dir=sandbox.credentials_path.parent, rabbitmqctl=servers.rabbitmqctl,
        )  # fmt: skip
        out["files"] = sorted(p.name for p in folder.iterdir())
        remove_sandbox(sandbox)  # the broker's vhost and users, the database and its roles: all gone
        ctl = provision.RabbitmqctlBackend(servers.rabbitmqctl)
        damaged = folder.parent / "damaged"
        shutil.copytree(folder, damaged)
        (damaged / "broker.json").write_text("{}")
        with pytest.raises(backup.BackupError, match="does not match the manifest"):
            backup.restore(damaged, database_url=sandbox.database_url, vhost=sandbox.vhost, run_dir=run_dir,
                           backend=ctl)  # fmt: skip
        backup.restore(
            folder, database_url=sandbox.database_url, vhost=sandbox.vhost, run_dir=run_dir, backend=ctl
        )
        with pytest.raises(backup.BackupError, match="exists"):  # never over a live installation
            backup.restore(folder, database_url=sandbox.database_url, vhost=sandbox.vhost,
                           run_dir=run_dir, backend=ctl)  # fmt: skip
        out["after"] = asyncio.run(held(sandbox.database_url, run_id))
        out["key_same"] = (run_dir / GALLERY_KEY_FILE).read_bytes() == (
            sandbox.credentials_path.parent / GALLERY_KEY_FILE
        ).read_bytes()
        # the services start on the restored broker and database with the restored credentials and key
        out["ready"] = [processes.start(s, LOG_LEVEL="WARNING") for s in SERVICES]
        out["queues"] = Broker(servers.rabbitmqctl).ctl("list_queues", "-p", sandbox.vhost, "name")
    return out


def test_a_backup_holds_the_database_the_broker_and_the_files_that_go_with_them(
    restored: dict[str, Any],
) -> None:
    assert restored["files"] == sorted([*backup.FILES, "manifest.json"])


def test_the_restored_installation_holds_the_same_central_records_verdicts_and_report(
    restored: dict[str, Any],
) -> None:
    before, after = restored["before"], restored["after"]
    assert len(before["central"]) > 500
    assert len(before["verdicts"]) > 20
    assert after == before  # byte for byte: the same run's report files, every record, every verdict
    assert restored["key_same"]


def test_the_services_run_again_on_the_restored_installation(restored: dict[str, Any]) -> None:
    assert restored["ready"] == list(SERVICES)
    assert "registry.sdp" in restored["queues"]
    assert "central.records" in restored["queues"]

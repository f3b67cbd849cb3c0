"""`make run` / `make up`: which processes run and where their health endpoints are."""

from __future__ import annotations

from pathlib import Path

from deploy import credentials as creds
from deploy.local import Installation, processes, service_of


def test_registry_runs_as_several_processes_on_distinct_health_ports() -> None:
    inst = Installation(registry_workers=3, health_base_port=8081, monitor_port=8080)
    assert inst.processes == ("registry", "registry-2", "registry-3", "dedup", "consolidator", "monitor")
    ports = [inst.health_port(p) for p in inst.processes]
    assert len(set(ports)) == len(ports)
    assert ports[:1] + ports[3:] == [8081, 8082, 8083, 8080]


def test_every_registry_process_uses_the_registry_user() -> None:
    cred = creds.Credential("service", "registry", "svc-registry", "pw")
    role = creds.Credential("database", "registry", "simpul_registry", "db-pw")
    inst = Installation(registry_workers=2, vhost="simpul")
    env = inst.service_env("registry-2", [cred, role])
    assert env["AMQP_URL"].startswith("amqp://svc-registry:pw@")
    assert env["DATABASE_URL"].startswith("postgresql://simpul_registry:db-pw@")  # its own role too
    assert env["HEALTH_PORT"] == str(inst.health_port("registry-2")) != str(inst.health_port("registry"))


def test_one_worker_means_one_registry() -> None:
    assert processes(1) == ("registry", "dedup", "consolidator", "monitor")
    assert service_of("registry-2") == "registry"


def test_stop_finds_processes_started_with_more_workers(tmp_path: Path) -> None:
    from deploy.local import _known_processes

    (tmp_path / "pids").mkdir()
    (tmp_path / "pids" / "registry-4.pid").write_text("1")
    inst = Installation(registry_workers=1, run_dir=tmp_path)
    assert "registry-4" in _known_processes(inst)

"""Back up and restore an installation: its database (every schema), its broker definitions and the files that
go with them (credentials and dedup's gallery key, without which the sealed templates cannot be read).

python -m deploy.backup create DIR      (make backup DIR=...)
python -m deploy.backup restore DIR     (make restore DIR=...), into an empty database and broker

A backup folder holds `database.dump` (pg_dump, custom format), `broker.json` (the vhost's definitions: the
vhost, its users with their password hashes and limits, permissions, exchanges, queues, bindings, policies),
`credentials.csv`, the gallery key and `manifest.json` (what, when, from where, each file's SHA-256). Messages
still in queues are not part of it: stop the senders and let the queues drain first (`make down` after the
day). Restore refuses a folder whose files do not match the manifest, and a database or vhost that exists.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg

from deploy import credentials as creds
from deploy import dbroles, provision
from deploy.local import Installation
from shared import db

FILES = ("database.dump", "broker.json", "credentials.csv", creds.GALLERY_KEY_FILE)
# What the broker's definitions file holds per vhost, and the order an import takes them (as provisioning).
PER_VHOST = ("queues", "exchanges", "bindings", "policies")


class BackupError(RuntimeError):
    """What the operator must fix before a backup or restore can go on."""


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _postgres_env() -> dict[str, str]:
    """pg_dump/pg_restore take the connection as a URL; no PG* variable of the caller's may redirect them."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("PG", "DATABASE"))}


def vhost_definitions(everything: dict[str, Any], vhost: str) -> dict[str, Any]:
    """Only the installation's part of the broker's definitions: its vhost, the users holding permissions in
    it (with their password hashes and limits), and its exchanges, queues, bindings and policies."""
    permissions = [p for p in everything.get("permissions", []) if p.get("vhost") == vhost]
    users = {p["user"] for p in permissions}
    return {
        "rabbit_version": everything.get("rabbit_version"),
        "vhosts": [v for v in everything.get("vhosts", []) if v.get("name") == vhost],
        "users": [u for u in everything.get("users", []) if u.get("name") in users],
        "permissions": permissions,
        "topic_permissions": [p for p in everything.get("topic_permissions", []) if p.get("vhost") == vhost],
        **{kind: [x for x in everything.get(kind, []) if x.get("vhost") == vhost] for kind in PER_VHOST},
    }


def export_broker(rabbitmqctl: Sequence[str], vhost: str) -> dict[str, Any]:
    result = subprocess.run(
        [*rabbitmqctl, "export_definitions", "-", "--format", "json"],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise BackupError(f"the broker's definitions could not be exported: {result.stderr.strip()[-300:]}")
    found = vhost_definitions(json.loads(result.stdout), vhost)
    if not found["vhosts"]:
        raise BackupError(f"the broker has no vhost {vhost!r}")
    return found


async def _refuse_existing(database_url: str) -> None:
    name = dbroles.database_name(database_url)
    conn = await asyncpg.connect(db.with_database(database_url, "postgres"))
    try:
        if await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            raise BackupError(
                f"the database {name!r} exists: restore goes into an empty server (drop it first)"
            )
    finally:
        await conn.close()


def create(
    directory: Path, *, database_url: str, vhost: str, run_dir: Path, rabbitmqctl: Sequence[str]
) -> Path:
    """Write a backup into `directory` (created; it must be empty); the manifest's path."""
    directory.mkdir(parents=True, exist_ok=True)
    if any(directory.iterdir()):
        raise BackupError(f"{directory} is not empty: a backup goes into a folder of its own")
    os.chmod(directory, 0o700)  # password hashes, the credentials file and the gallery key
    print(f"database: pg_dump of {dbroles.database_name(database_url)}", flush=True)
    dump = subprocess.run(
        ["pg_dump", "--format=custom", f"--file={directory / 'database.dump'}", f"--dbname={database_url}"],
        capture_output=True, text=True, env=_postgres_env(), check=False,
    )  # fmt: skip
    if dump.returncode != 0:
        raise BackupError(f"pg_dump failed: {dump.stderr.strip()[-500:]}")
    print(f"broker: definitions of vhost {vhost!r}", flush=True)
    (directory / "broker.json").write_text(json.dumps(export_broker(rabbitmqctl, vhost), indent=1))
    for name in ("credentials.csv", creds.GALLERY_KEY_FILE):
        source = run_dir / name
        if not source.exists():
            raise BackupError(f"{source} is missing: without it the installation cannot be restored")
        shutil.copy2(source, directory / name)
    manifest = {
        "created_at": datetime.now(UTC).isoformat(),
        "database": dbroles.database_name(database_url),
        "vhost": vhost,
        "files": {name: _sha256(directory / name) for name in FILES},
    }
    path = directory / "manifest.json"
    path.write_text(json.dumps(manifest, indent=1))
    print(f"backup written to {directory}", flush=True)
    return path


def check(directory: Path) -> dict[str, Any]:
    """The backup's manifest, once every file matches it."""
    try:
        manifest: dict[str, Any] = json.loads((directory / "manifest.json").read_text())
    except (OSError, ValueError) as wrong:
        raise BackupError(f"{directory} holds no readable manifest.json: {wrong}") from wrong
    for name in FILES:
        path = directory / name
        if not path.exists() or _sha256(path) != manifest["files"].get(name):
            raise BackupError(f"{path} is missing or does not match the manifest: the backup is damaged")
    return manifest


def restore(
    directory: Path, *, database_url: str, vhost: str, run_dir: Path, backend: provision.Backend,
) -> None:  # fmt: skip
    """Into an empty server: the credentials and key, the database roles, the database, the broker."""
    check(directory)
    asyncio.run(_refuse_existing(database_url))
    broker = json.loads((directory / "broker.json").read_text())
    if broker["vhosts"][0]["name"] != vhost:
        broker = rename_vhost(broker, vhost)
    run_dir.mkdir(parents=True, exist_ok=True)
    for name in ("credentials.csv", creds.GALLERY_KEY_FILE):
        target = run_dir / name
        if target.exists() and target.read_bytes() != (directory / name).read_bytes():
            raise BackupError(f"{target} exists and differs from the backup's: move it away first")
        shutil.copy2(directory / name, target)
        os.chmod(target, 0o600)
    credentials = creds.read(run_dir / "credentials.csv")
    asyncio.run(_roles_and_database(database_url, credentials))
    print(f"database: pg_restore into {dbroles.database_name(database_url)}", flush=True)
    loaded = subprocess.run(
        ["pg_restore", "--exit-on-error", f"--dbname={database_url}", str(directory / "database.dump")],
        capture_output=True, text=True, env=_postgres_env(), check=False,
    )  # fmt: skip
    if loaded.returncode != 0:
        raise BackupError(f"pg_restore failed: {loaded.stderr.strip()[-500:]}")
    asyncio.run(_grants(database_url, credentials))  # the database's own grants are not in a dump
    print(
        f"broker: vhost {vhost!r}, {len(broker['users'])} users, {len(broker['queues'])} queues", flush=True
    )
    for kind in ("vhosts", "users", "permissions", "topic_permissions", *PER_VHOST):  # (as provisioning does)
        if broker.get(kind):
            backend.import_definitions({kind: broker[kind]})
    print("restored; start the suite (make up)", flush=True)


def rename_vhost(broker: dict[str, Any], vhost: str) -> dict[str, Any]:
    renamed = dict(broker)
    renamed["vhosts"] = [{**v, "name": vhost} for v in broker["vhosts"]]
    for kind in ("permissions", "topic_permissions", *PER_VHOST):
        renamed[kind] = [{**x, "vhost": vhost} for x in broker.get(kind, [])]
    return renamed


async def _roles_and_database(database_url: str, credentials: list[creds.Credential]) -> None:
    """The services' roles (with their passwords from the credentials) exist before the dump's grants."""
    await db.ensure_database(database_url)
    conn = await asyncpg.connect(database_url)
    try:
        for c in credentials:
            if c.role == "database":
                await dbroles.ensure_role(conn, c.username, c.password)
    finally:
        await conn.close()


async def _grants(database_url: str, credentials: list[creds.Credential]) -> None:
    for c in credentials:
        if c.role == "database":
            await dbroles.provision_service_role(database_url, c.unit_id, c.username, c.password)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("action", choices=("create", "restore", "check"))
    parser.add_argument("directory", type=Path)
    parser.add_argument("--rabbitmqctl", default=os.environ.get("RABBITMQCTL", "rabbitmqctl"))
    args = parser.parse_args(argv)
    inst = Installation()
    rabbitmqctl = args.rabbitmqctl.split()
    try:
        if args.action == "create":
            create(args.directory, database_url=inst.database_url, vhost=inst.vhost, run_dir=inst.run_dir,
                   rabbitmqctl=rabbitmqctl)  # fmt: skip
        elif args.action == "check":
            manifest = check(args.directory)
            print(f"{args.directory}: complete ({manifest['database']}, vhost {manifest['vhost']}, "
                  f"{manifest['created_at']})")  # fmt: skip
        else:
            restore(args.directory, database_url=inst.database_url, vhost=inst.vhost, run_dir=inst.run_dir,
                    backend=provision.RabbitmqctlBackend(rabbitmqctl))  # fmt: skip
    except BackupError as problem:
        print(f"{args.action}: {problem}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

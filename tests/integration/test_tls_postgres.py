"""PostgreSQL over TLS, as docker-compose runs it, live: a throwaway PostgreSQL started with the compose file's
settings (ssl on, the `tls` step's certificate, deploy/postgres/pg_hba.conf) accepts a service's pool and
pg_dump (make backup) over TLS with the server checked against the local CA (sslmode=verify-full), and refuses
a connection without TLS and a client that does not trust its certificate."""

from __future__ import annotations

import asyncio
import os
import shutil
import ssl
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest

from deploy import tls
from deploy.sandbox import free_port
from shared.runtime import Database
from shared.settings import PROJECT_ROOT

pytestmark = pytest.mark.integration


@dataclass(frozen=True)
class TlsPostgres:
    port: int
    ca: Path
    bin: Path

    def url(self, query: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres?{query}"


def _as_postgres(*command: str | Path) -> None:
    subprocess.run(["runuser", "-u", "postgres", "--", *map(str, command)], check=True, capture_output=True)


@pytest.fixture
def tls_postgres() -> Iterator[TlsPostgres]:
    binaries = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3]))
    if not binaries or os.geteuid() != 0 or shutil.which("runuser") is None:
        pytest.skip("needs PostgreSQL's server binaries and root (to start a server as the postgres user)")
    import pwd

    owner = pwd.getpwnam("postgres")
    bin_dir = binaries[-1].parent
    home = Path(tempfile.mkdtemp(prefix="simpul-pgtls-"))
    try:
        material = tls.create(home / "tls")  # names 127.0.0.1, as compose's names `postgres`
        for path in (home, material.key, material.certificate):
            os.chown(path, owner.pw_uid, owner.pw_gid)  # the server's user alone reads its key (mode 0600)
        home.chmod(0o755)
        (home / "tls").chmod(0o755)
        hba = home / "pg_hba.conf"
        shutil.copy(PROJECT_ROOT / "deploy" / "postgres" / "pg_hba.conf", hba)
        hba.chmod(0o644)
        data, port = home / "data", free_port()
        _as_postgres(bin_dir / "initdb", "-D", data, "-U", "postgres", "--auth=trust", "--no-sync")
        settings = {
            "port": port, "listen_addresses": "127.0.0.1", "unix_socket_directories": home, "fsync": "off",
            # as docker-compose.yml's postgres command
            "ssl": "on", "ssl_cert_file": material.certificate, "ssl_key_file": material.key,
            "ssl_min_protocol_version": "TLSv1.2", "hba_file": hba,
        }  # fmt: skip
        options = " ".join(f"-c {k}={v}" for k, v in settings.items())
        _as_postgres(
            bin_dir / "pg_ctl",
            "-D",
            data,
            "-l",
            home / "server.log",
            "-w",
            "-t",
            "60",
            "-o",
            options,
            "start",
        )
        try:
            yield TlsPostgres(port, material.ca, bin_dir)
        finally:
            _as_postgres(bin_dir / "pg_ctl", "-D", data, "-m", "immediate", "-w", "stop")
    finally:
        shutil.rmtree(home, ignore_errors=True)


async def test_a_service_and_pg_dump_speak_tls_to_postgresql_and_nothing_else_gets_in(
    tls_postgres: TlsPostgres,
) -> None:
    checked = tls_postgres.url(f"sslmode=verify-full&sslrootcert={tls_postgres.ca}")
    database = Database.of_service(checked, "registry")  # the services' own pool and migrations
    await database.open()
    try:
        row = await database.pool.fetchrow(
            "SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()"
        )
        assert row is not None
        assert row["ssl"] is True
        assert row["version"] in ("TLSv1.2", "TLSv1.3")
        assert await database.pool.fetchval("SELECT count(*) FROM registry.schema_migrations") > 0
    finally:
        await database.close()
    # make backup's pg_dump (libpq) over the same URL
    dump = await asyncio.to_thread(
        subprocess.run,
        [str(tls_postgres.bin / "pg_dump"), "--schema-only", "--schema=registry", checked],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert dump.returncode == 0, dump.stderr
    assert "CREATE TABLE registry.outbox" in dump.stdout
    # without TLS: no pg_hba.conf line matches, refused
    with pytest.raises(asyncpg.exceptions.InvalidAuthorizationSpecificationError, match="no encryption"):
        await asyncpg.connect(tls_postgres.url("sslmode=disable"))
    # a client that checks the server against another CA: the handshake fails
    other = tls.create(Path(tempfile.mkdtemp(prefix="simpul-otherca-")) / "tls")
    try:
        with pytest.raises(ssl.SSLCertVerificationError):
            await asyncpg.connect(tls_postgres.url(f"sslmode=verify-full&sslrootcert={other.ca}"))
    finally:
        shutil.rmtree(other.folder.parent, ignore_errors=True)

"""The generated credentials file `.run/credentials.csv` (role,unit_id,username,password)."""

from __future__ import annotations

import csv
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

COLUMNS = ("role", "unit_id", "username", "password")
# Services that connect to PostgreSQL as their own least-privileged role; the others still as the admin.
DATABASE_ROLE_SERVICES = ("registry", "dedup", "consolidator", "monitor")


@dataclass(frozen=True)
class Credential:
    role: str  # service | upt | dukcapil | pusat | monitor | database
    # service name (service, database), upt id, "pusat", or for monitor logins the scope (pusat / kanwil-xx)
    unit_id: str
    username: str
    password: str


def new_password() -> str:
    return secrets.token_urlsafe(18)


def read(path: Path) -> list[Credential]:
    if not path.exists():
        return []
    with path.open(encoding="utf-8") as f:
        return [Credential(**{c: row[c] for c in COLUMNS}) for row in csv.DictReader(f)]


def write(path: Path, credentials: list[Credential]) -> None:
    """Written owner-readable only: these are live passwords."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(COLUMNS)
        w.writerows((c.role, c.unit_id, c.username, c.password) for c in credentials)
    tmp.replace(path)


def find(credentials: list[Credential], role: str, unit_id: str) -> Credential:
    for c in credentials:
        if c.role == role and c.unit_id == unit_id:
            return c
    raise KeyError(f"no {role} credential for {unit_id}; run `make provision`")


def amqp_url(base_url: str, credential: Credential, vhost: str | None = None) -> str:
    """The broker URL of `base_url` with this credential's user and password (and optionally vhost)."""
    parts = urlsplit(base_url)
    host = parts.hostname or "127.0.0.1"
    netloc = f"{quote(credential.username, safe='')}:{quote(credential.password, safe='')}@{host}"
    if parts.port:
        netloc += f":{parts.port}"
    path = "/" + quote(vhost, safe="") if vhost is not None else parts.path
    return urlunsplit(parts._replace(netloc=netloc, path=path))


def database_url(base_url: str, credentials: list[Credential], service: str) -> str:
    """The service's database URL: `base_url` with its own role and password where it has one, else as given."""
    if service not in DATABASE_ROLE_SERVICES:
        return base_url
    credential = find(credentials, "database", service)
    parts = urlsplit(base_url)
    netloc = f"{quote(credential.username, safe='')}:{quote(credential.password, safe='')}@"
    netloc += parts.hostname or "127.0.0.1"
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit(parts._replace(netloc=netloc))


GALLERY_KEY_FILE = "dedup-gallery.key"


def gallery_key(directory: Path, *, create: bool = False) -> str:
    """Dedup's gallery key (AES-256, base64), kept beside the credentials, owner-readable only. Generated once:
    a lost key makes the gallery unreadable, so back this file up with the database."""
    path = directory / GALLERY_KEY_FILE
    if path.exists():
        return path.read_text(encoding="utf-8").strip()
    if not create:
        raise FileNotFoundError(f"no gallery key at {path}: run the provisioning first")
    import base64

    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    key = base64.b64encode(secrets.token_bytes(32)).decode()
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(key + "\n")
    return key

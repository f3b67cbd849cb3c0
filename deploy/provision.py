"""Provisions an installation: vhost, users and permissions, topology, database and monitor logins.

Users and permissions are generated from the units files and imported as RabbitMQ definitions (one call,
through `rabbitmqctl` or the management HTTP API); the topology is declared over AMQP so that a queue whose
arguments drifted fails loudly. Passwords already in the credentials file are kept, so reruns change nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal, Protocol
from urllib.parse import quote, unquote, urlsplit

import aio_pika

from deploy import credentials as creds
from deploy import dbroles
from deploy.credentials import Credential
from shared import db, messaging
from shared.settings import PROJECT_ROOT
from shared.units import Units, load_units

SERVICES = ("registry", "dedup", "consolidator", "monitor")

# What each service may do on the broker: publish to (write), consume from (read), and which routing keys
# it may use on the topic exchanges. Nobody but the provisioner may configure anything.
SERVICE_GRANTS: dict[str, dict[str, Any]] = {
    "registry": {
        "write": ["events", "receipts", "dead"],
        "read": r"registry\..*",
        "topics": {"events": r"^(registry|status\.registry)\."},
    },
    "dedup": {
        "write": ["events", "dead"],
        "read": r"dedup\..*",
        "topics": {"events": r"^(dedup|status\.dedup)\."},
    },
    "consolidator": {
        # the central feed goes straight into its stream over the stream protocol (services/consolidator/
        # stream_wire.py), which checks write on the stream itself
        "write": ["events", "dead", messaging.CENTRAL_RECORDS.name],
        "read": r"consolidator\..*",
        "topics": {"events": r"^(central|consolidation|status\.consolidator)\."},
    },
    "monitor": {
        "write": ["events", "commands", "dead"],
        "read": r"monitor\..*",
        # its alerts, and the adjudication desk's decisions (made by a logged-in centre operator)
        "topics": {"events": r"^status\.alert\.", "commands": r"^command\.adjudication\.decide$"},
    },
}


def rabbit_password_hash(password: str, salt: bytes | None = None) -> str:
    """RabbitMQ's rabbit_password_hashing_sha256: base64(salt + sha256(salt + password))."""
    salt = salt if salt is not None else os.urandom(4)
    return base64.b64encode(salt + hashlib.sha256(salt + password.encode()).digest()).decode()


def _one_of(names: Sequence[str]) -> str:
    return "^(" + "|".join(re.escape(n) for n in names) + ")$" if names else "^$"


def plan_credentials(
    units: Units, namespace: str, existing: Sequence[Credential], database: str | None = None
) -> list[Credential]:
    """Every broker user, monitor login and (given the database) service database role of the installation;
    known passwords are reused."""
    known = {(c.role, c.unit_id): c for c in existing}

    def cred(role: str, unit_id: str, username: str) -> Credential:
        old = known.get((role, unit_id))
        password = old.password if old and old.username == username else creds.new_password()
        return Credential(role, unit_id, username, password)

    out = [cred("service", s, f"{namespace}svc-{s}") for s in SERVICES]
    out.append(cred("pusat", "pusat", f"{namespace}pusat"))
    out.append(cred("operator", "pusat", f"{namespace}operator"))  # the centre's dead-letter tool
    out += [cred("upt", u.upt_id, f"{namespace}{u.upt_id}") for u in units.upts]
    out += [cred("dukcapil", d.unit_id, f"{namespace}{d.unit_id}") for d in units.dukcapil]
    out.append(cred("monitor", "pusat", "pusat"))
    out += [cred("monitor", k.kanwil_id, k.kanwil_id) for k in units.kanwil]
    out += [cred("monitor", u.upt_id, u.upt_id) for u in units.upts]  # a UPT watches its own status
    out += [cred("monitor", d.unit_id, d.unit_id) for d in units.dukcapil]
    if database is not None:
        out += [cred("database", s, dbroles.role_name(database, s)) for s in creds.DATABASE_ROLE_SERVICES]
    return out


def definitions(vhost: str, admin_user: str, credentials: Sequence[Credential]) -> dict[str, Any]:
    """RabbitMQ definitions for the vhost, the users and their (least) privileges."""
    users: list[dict[str, Any]] = []
    permissions: list[dict[str, Any]] = [
        {"user": admin_user, "vhost": vhost, "configure": ".*", "write": ".*", "read": ".*"}
    ]
    topic_permissions: list[dict[str, Any]] = []

    def add(
        c: Credential,
        write: str,
        read: str,
        topics: dict[str, str],
        max_connections: int,
        tags: Sequence[str] = (),
    ) -> None:
        users.append(
            {
                "name": c.username,
                "password_hash": rabbit_password_hash(c.password),
                "hashing_algorithm": "rabbit_password_hashing_sha256",
                "tags": list(tags),
                # a regional client needs a channel or two per connection: a flood of either stops at the broker
                "limits": {"max-connections": max_connections, "max-channels": 10 * max_connections},
            }
        )
        permissions.append(
            {"user": c.username, "vhost": vhost, "configure": "^$", "write": write, "read": read}
        )
        topic_permissions.extend(
            {"user": c.username, "vhost": vhost, "exchange": ex, "write": w, "read": "^$"}
            for ex, w in topics.items()
        )

    for c in credentials:
        if c.role == "service":
            g = SERVICE_GRANTS[c.unit_id]
            # The monitor reads its vhost's queue depths from the management API: the `management` tag opens
            # the API for the vhosts a user has permissions in, with no more rights than over AMQP.
            tags = ["management"] if c.unit_id == "monitor" else []
            add(c, _one_of(g["write"]), f"^{g['read']}$", g["topics"], 20, tags)
        elif c.role == "upt":
            unit = re.escape(c.unit_id)
            add(c, "^ingest$", f"^receipts\\.{unit}$", {"ingest": f"^sdp\\.{unit}\\."}, 5)
        elif c.role == "dukcapil":
            kabkota = re.escape(c.unit_id.removeprefix("dukcapil-"))
            add(c, "^ingest$", f"^receipts\\.{re.escape(c.unit_id)}$", {"ingest": f"^ektp\\.{kabkota}\\."}, 5)
        elif c.role == "pusat":
            add(c, "^commands$", "^central\\.records$", {"commands": r"^command\."}, 10)
        elif c.role == "operator":
            # deploy/deadletters.py: takes dead letters into its audited store and replays one where it came
            # from, in its sender's name (the broker lets an impersonator set another user id, no one else)
            replay = dict.fromkeys(("ingest", "events", "commands"), ".*")
            add(c, "^(ingest|events|commands)$", "^dead\\.letters$", replay, 2, ["impersonator"])
    return {
        "vhosts": [{"name": vhost}],
        "users": users,
        "permissions": permissions,
        "topic_permissions": topic_permissions,
    }


class Backend(Protocol):
    def import_definitions(self, defs: dict[str, Any]) -> None: ...
    def delete_vhost(self, vhost: str) -> None: ...
    def delete_users(self, usernames: Sequence[str]) -> None: ...
    def handles(self) -> tuple[int, int] | None:
        """(file handles the broker may use, queues it holds in all vhosts); None when it cannot tell."""


# The RabbitMQ production guidance; the broker keeps about 90 % of the limit as file handles.
OPEN_FILES_ADVISED = 65_536
HANDLES_PER_QUEUE_MARGIN = 1.5  # room beside the queues: connections, segment files, the management stats


def handles_suffice(handles: int, queues: int) -> bool:
    """Whether a broker with this many file handles can recover this many queues after a restart."""
    return handles >= queues * HANDLES_PER_QUEUE_MARGIN


def open_files_advice(handles: int, queues: int) -> str | None:
    """What to tell the operator when the broker could not reopen its queues after a restart (RabbitMQ 3.10
    on the default 1,024 open files logged "Recovering 2110 queues, available file handles: 927" and never
    finished starting); None when the limit leaves room."""
    if handles_suffice(handles, queues) and handles >= OPEN_FILES_ADVISED * 0.9 * 0.5:
        return None
    return (
        f"broker: WARNING: RabbitMQ may use {handles:,} file handles and holds {queues:,} queues: after a "
        f"restart it may never finish recovering them. Raise its open-files limit to {OPEN_FILES_ADVISED:,} "
        "(the RabbitMQ production guidance): with systemd, `systemctl edit rabbitmq-server` and "
        f"`[Service] LimitNOFILE={OPEN_FILES_ADVISED}`; started by hand, `ulimit -n {OPEN_FILES_ADVISED}` "
        "first, as the rabbitmq user (as root, Debian's rabbitmq-server switches user with su, whose PAM "
        "session sets the limit back to 1,024: `setpriv --reuid=rabbitmq --regid=rabbitmq --init-groups "
        "env HOME=/var/lib/rabbitmq rabbitmq-server -detached`, or a line `rabbitmq - nofile "
        f"{OPEN_FILES_ADVISED}` in /etc/security/limits.d/); in docker-compose.yml it is set (ulimits: "
        "nofile). Then restart the broker."
    )


class RabbitmqctlBackend:
    """Runs `rabbitmqctl` (locally, or any prefix such as `docker exec <id> rabbitmqctl`)."""

    def __init__(self, command: Sequence[str] = ("rabbitmqctl",)) -> None:
        self.command = list(command)

    def _run(self, *args: str) -> None:
        result = subprocess.run([*self.command, *args], capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"{shlex.join([*self.command, *args[:1]])} failed: {result.stderr.strip()}")

    def eval(self, expression: str) -> str:
        """An Erlang expression evaluated on the broker; its printed result. rabbitmqctl exits 0 when the
        expression returned an error tuple, so that is raised too."""
        result = subprocess.run(
            [*self.command, "eval", expression], capture_output=True, text=True, check=False
        )
        out = result.stdout.strip()
        if result.returncode != 0 or out.startswith("{error"):
            raise RuntimeError(
                f"{shlex.join([*self.command, 'eval'])} failed: {(out or result.stderr.strip())[:500]}"
            )
        return out

    def import_definitions(self, defs: dict[str, Any]) -> None:
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
            json.dump(defs, f)
        try:
            os.chmod(f.name, 0o644)  # the broker runs as its own user and must read it
            self._run("import_definitions", f.name)
        finally:
            os.unlink(f.name)

    def delete_vhost(self, vhost: str) -> None:
        self._run("delete_vhost", vhost)

    def handles(self) -> tuple[int, int] | None:
        try:
            status = subprocess.run(
                [*self.command, "status", "--formatter", "json"], capture_output=True, text=True, timeout=60
            )
            queues = subprocess.run(
                [*self.command, "eval", "length(rabbit_amqqueue:list())."], capture_output=True, text=True,
                timeout=60,
            )  # fmt: skip
            return int(json.loads(status.stdout)["file_descriptors"]["total_limit"]), int(
                queues.stdout.strip()
            )
        except (OSError, subprocess.SubprocessError, ValueError, KeyError, TypeError):
            return None

    def delete_users(self, usernames: Sequence[str]) -> None:
        """One `eval` for all users: a `rabbitmqctl` call costs half a second, hundreds of them minutes."""
        if not usernames:
            return
        names = ",".join("<<" + json.dumps(n) + ">>" for n in usernames)
        self.eval(
            'lists:foreach(fun(U) -> rabbit_auth_backend_internal:delete_user(U, <<"provision">>) '
            f"end, [{names}])."
        )


class HttpBackend:
    """The management plugin's HTTP API (the way in when the broker runs in a container)."""

    def __init__(self, api_url: str, user: str, password: str) -> None:
        self.api_url = api_url.rstrip("/")
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        self.headers = {"Authorization": f"Basic {token}", "Content-Type": "application/json"}

    def _call(self, method: str, path: str, body: Any = None) -> None:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(  # noqa: S310 (operator-supplied management URL)
            self.api_url + path, data=data, method=method, headers=self.headers
        )
        with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310
            if response.status >= 300:
                raise RuntimeError(f"{method} {path}: HTTP {response.status}")

    def import_definitions(self, defs: dict[str, Any]) -> None:
        self._call("POST", "/api/definitions", defs)

    def delete_vhost(self, vhost: str) -> None:
        self._call("DELETE", f"/api/vhosts/{quote(vhost, safe='')}")

    def handles(self) -> tuple[int, int] | None:
        try:
            nodes = self._get("/api/nodes")
            overview = self._get("/api/overview")
            return int(nodes[0]["fd_total"]), int(overview["object_totals"]["queues"])
        except (OSError, ValueError, KeyError, IndexError, TypeError):
            return None

    def _get(self, path: str) -> Any:
        request = urllib.request.Request(self.api_url + path, headers=self.headers)  # noqa: S310
        with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310
            return json.load(response)

    def delete_users(self, usernames: Sequence[str]) -> None:
        if usernames:
            self._call("POST", "/api/users/bulk-delete", {"users": list(usernames)})


def choose_backend(api_url: str | None, admin_url: str, rabbitmqctl: str) -> Backend:
    if api_url:
        parts = urlsplit(admin_url)
        return HttpBackend(api_url, unquote(parts.username or "guest"), unquote(parts.password or "guest"))
    return RabbitmqctlBackend(shlex.split(rabbitmqctl))


def vhost_url(url: str, vhost: str) -> str:
    return urlsplit(url)._replace(path="/" + quote(vhost, safe="")).geturl()


async def _connect_with_retry(url: str, timeout: float) -> aio_pika.abc.AbstractConnection:
    """Definitions are imported asynchronously by the broker, so a new user or vhost may lag a moment."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return await aio_pika.connect(url, timeout=5)
        except Exception:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.3)


def queue_kinds(units: Units, receipts_kind: Literal["quorum", "classic"] = "classic") -> dict[str, int]:
    """How many queues of each type an installation holds: what the broker must reopen after a restart (each
    quorum queue and stream keeps log files open; a classic queue its index and store)."""
    senders = len(units.upts) + len(units.dukcapil)
    kinds: dict[str, int] = {}
    for spec in messaging.QUEUES:
        kinds[spec.kind] = kinds.get(spec.kind, 0) + 1
    kinds[receipts_kind] = kinds.get(receipts_kind, 0) + senders  # one receipts queue per sender
    return kinds


async def declare_topology(
    admin_url: str, vhost: str, units: Units, receipts_kind: Literal["quorum", "classic"] = "classic"
) -> int:
    """Exchanges, queues (quorum, delivery limit, DLX, reject-publish) and bindings; returns queue count."""
    connection = await _connect_with_retry(vhost_url(admin_url, vhost), 30)
    try:
        channel = await connection.channel()
        exchanges = {
            name: await channel.declare_exchange(name, kind.value, durable=True)
            for name, kind in messaging.EXCHANGE_TYPES.items()
        }
        senders = [*(u.upt_id for u in units.upts), *(d.unit_id for d in units.dukcapil)]
        specs = [*messaging.QUEUES, *(messaging.receipts_queue(s, receipts_kind) for s in senders)]
        for spec in specs:
            queue = await channel.declare_queue(spec.name, durable=True, arguments=spec.arguments())
            for exchange, key in spec.bindings:
                await queue.bind(exchanges[exchange], key)
        return len(specs)
    finally:
        await connection.close()


async def verify_login(base_url: str, vhost: str, credential: Credential) -> None:
    connection = await _connect_with_retry(creds.amqp_url(base_url, credential, vhost), 30)
    await connection.close()


async def provision(
    *,
    units: Units,
    vhost: str,
    namespace: str,
    admin_url: str,
    backend: Backend,
    credentials_path: Path,
    database_url: str | None,
    monitor_accounts: bool = True,
    quiet: bool = False,
    receipts_kind: Literal["quorum", "classic"] = "classic",
) -> list[Credential]:
    def say(message: str) -> None:
        if not quiet:
            print(message, flush=True)

    admin_user = unquote(urlsplit(admin_url).username or "guest")
    earlier = {(c.role, c.unit_id): c.password for c in creds.read(credentials_path)}
    database = dbroles.database_name(database_url) if database_url else None
    credentials = plan_credentials(units, namespace, creds.read(credentials_path), database)
    changed = {c.username for c in credentials if earlier.get((c.role, c.unit_id)) != c.password}
    creds.write(credentials_path, credentials)
    creds.gallery_key(credentials_path.parent, create=True)
    say(f"broker: importing {len(credentials)} users and permissions into vhost {vhost!r}")
    defs = definitions(vhost, admin_user, credentials)
    # One kind at a time: RabbitMQ 3.10 wedged importing a new vhost and hundreds of permissions at once.
    for kind in ("vhosts", "users", "permissions", "topic_permissions"):
        backend.import_definitions({kind: defs[kind]})
    queues = await declare_topology(admin_url, vhost, units, receipts_kind)
    kinds = ", ".join(f"{n} {kind}" for kind, n in sorted(queue_kinds(units, receipts_kind).items()))
    say(f"broker: topology declared ({len(messaging.EXCHANGE_TYPES)} exchanges, {queues} queues: {kinds})")
    found = None if quiet else backend.handles()  # (test sandboxes skip it: two more broker calls each)
    if found is not None and (advice := open_files_advice(*found)) is not None:
        print(advice, file=sys.stderr, flush=True)
    sample = (
        creds.find(credentials, "upt", units.upts[-1].upt_id)
        if units.upts
        else creds.find(credentials, "service", "registry")
    )
    await verify_login(admin_url, vhost, sample)
    if database_url:
        created = await db.ensure_database(database_url)
        say(f"database: {'created' if created else 'exists'}")
        if monitor_accounts:
            from services.monitor import accounts  # the monitor owns its logins and its schema

            logins = [c for c in credentials if c.role == "monitor"]
            n = await accounts.import_accounts(database_url, logins, refresh=changed)
            say(f"monitor: {len(logins)} logins ready ({n} created or changed)")
        for c in credentials:
            if c.role == "database":
                await dbroles.provision_service_role(database_url, c.unit_id, c.username, c.password)
                say(f"database: {c.unit_id} migrated, connects as its own role {c.username}")
        if monitor_accounts:
            from services.consolidator import api_users  # the consolidator owns its API logins

            # The centre's and the Kanwil's logins: the centre reads, a Kanwil is told it may not (403).
            api = [
                c for c in credentials
                if c.role == "monitor" and (c.unit_id == "pusat" or c.unit_id.startswith("kanwil-"))
            ]  # fmt: skip
            n = await api_users.import_users(database_url, api, refresh=changed)
            say(f"consolidator API: {len(api)} logins ready ({n} created or changed)")
    say(f"credentials written to {credentials_path}")
    return credentials


def deprovision(backend: Backend, vhost: str, credentials: Sequence[Credential]) -> None:
    """Remove an installation's vhost and broker users (used by test runs to clean up after themselves)."""
    backend.delete_vhost(vhost)
    backend.delete_users(
        [c.username for c in credentials if c.role in ("service", "upt", "dukcapil", "pusat", "operator")]
    )


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--units", type=Path, default=PROJECT_ROOT / "deploy" / "units")
    parser.add_argument("--vhost", default=os.environ.get("SIMPUL_VHOST", "simpul"))
    parser.add_argument("--namespace", default=os.environ.get("BROKER_NAMESPACE", ""))
    parser.add_argument(
        "--admin-url", default=os.environ.get("RABBITMQ_ADMIN_URL", "amqp://guest:guest@127.0.0.1:5672/")
    )
    parser.add_argument(
        "--api-url",
        default=os.environ.get("RABBITMQ_API_URL"),
        help="management API URL; without it rabbitmqctl is used",
    )
    parser.add_argument("--rabbitmqctl", default=os.environ.get("RABBITMQCTL", "rabbitmqctl"))
    parser.add_argument(
        "--database-url",
        default=os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/simpul"),
    )
    parser.add_argument("--credentials", type=Path, default=PROJECT_ROOT / ".run" / "credentials.csv")
    parser.add_argument(
        "--receipts-queue-type",
        choices=["classic", "quorum"],
        default=os.environ.get("RECEIPTS_QUEUE_TYPE", "classic"),
        help="quorum needs a broker with a raised open-files limit (see README)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = parser().parse_args(argv)
    try:
        asyncio.run(
            provision(
                units=load_units(args.units),
                vhost=args.vhost,
                namespace=args.namespace,
                admin_url=args.admin_url,
                backend=choose_backend(args.api_url, args.admin_url, args.rabbitmqctl),
                credentials_path=args.credentials,
                database_url=args.database_url,
                receipts_kind=args.receipts_queue_type,
            )
        )
    except (OSError, RuntimeError) as exc:
        print(f"provisioning failed: {exc!r}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()

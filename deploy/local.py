"""Runs the suite on this machine: `up` / `down` in the background (pids and logs under .run/), or `run`.

python -m deploy.local run      provision, start the four services, feed a simulated day, wait for Ctrl-C
                                (SIM_ARGS: options of sim.day; EKTP_ARGS: of sim.ektp_day, "--skip" for none;
                                REGISTRY_WORKERS: registry processes, default 2)
python -m deploy.local up       provision and start the services in the background
python -m deploy.local down     stop them (in-flight messages finish or are requeued)
python -m deploy.local status   what is running and whether it is ready
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, replace
from datetime import date, datetime
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg

from deploy import credentials as creds
from deploy import localhost, provision
from shared.contracts import WIB
from shared.settings import PROJECT_ROOT

SERVICES = ("registry", "dedup", "consolidator", "monitor")
RUN_DIR = PROJECT_ROOT / ".run"
MANAGEMENT_PORT = 15672  # the broker's management API (rabbitmq_management)


def management_url_of(amqp_url: str) -> str:
    """The management API of the broker an AMQP URL names (its default port, on the same host)."""
    return f"http://{urlsplit(amqp_url).hostname or '127.0.0.1'}:{MANAGEMENT_PORT}"


def processes(registry_workers: int) -> tuple[str, ...]:
    """The processes to run: each service once, the registry `registry_workers` times (registry, registry-2...),
    all consuming the same queues."""
    extra = tuple(f"registry-{n}" for n in range(2, registry_workers + 1))
    return ("registry", *extra, "dedup", "consolidator", "monitor")


def service_of(process: str) -> str:
    return process.split("-", 1)[0]


@dataclass(frozen=True)
class Installation:
    """Where the suite's servers are and what it is called there."""

    amqp_url: str = os.environ.get("AMQP_BASE_URL", "amqp://127.0.0.1:5672/")
    admin_url: str = os.environ.get("RABBITMQ_ADMIN_URL", "amqp://guest:guest@127.0.0.1:5672/")
    database_url: str = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/simpul")
    vhost: str = os.environ.get("SIMPUL_VHOST", "simpul")
    namespace: str = os.environ.get("BROKER_NAMESPACE", "")
    run_dir: Path = RUN_DIR
    api_url: str | None = os.environ.get("RABBITMQ_API_URL")
    monitor_port: int = int(os.environ.get("MONITOR_PORT", "8080"))
    api_port: int = int(os.environ.get("CONSOLIDATOR_API_PORT", "8093"))
    health_base_port: int = int(os.environ.get("HEALTH_BASE_PORT", "8081"))
    registry_workers: int = max(1, int(os.environ.get("REGISTRY_WORKERS", "2")))

    @property
    def processes(self) -> tuple[str, ...]:
        return processes(self.registry_workers)

    @property
    def credentials_path(self) -> Path:
        return self.run_dir / "credentials.csv"

    def health_port(self, process: str) -> int:
        """8081-8083 for the first registry, dedup and consolidator; 8091, 8101... for more registries."""
        service = service_of(process)
        if service == "monitor":
            return self.monitor_port
        instance = int(process.split("-", 1)[1]) if "-" in process else 1
        return self.health_base_port + 10 * (instance - 1) + SERVICES.index(service)

    @property
    def management_url(self) -> str:
        """The broker's management API (the monitor reads queue depths there with its own user)."""
        return self.api_url or management_url_of(self.amqp_url)

    def metrics_targets(self) -> str:
        """Every other process's /metrics, for the monitor's operations view (JSON, as METRICS_TARGETS)."""
        others = [p for p in self.processes if service_of(p) != "monitor"]
        return json.dumps({p: f"http://127.0.0.1:{self.health_port(p)}/metrics" for p in others})

    def ready_url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.health_port(service)}/health/ready"

    def service_env(self, process: str, credentials: list[creds.Credential]) -> dict[str, str]:
        service = service_of(process)
        cred = creds.find(credentials, "service", service)
        env = {
            **os.environ,
            "AMQP_URL": creds.amqp_url(self.amqp_url, cred, self.vhost),
            "DATABASE_URL": creds.database_url(self.database_url, credentials, service),
            "BROKER_NAMESPACE": self.namespace,
            "LOG_JSON": "true",
            "PYTHONUNBUFFERED": "1",
        }
        if service == "dedup":
            env["DEDUP_GALLERY_KEY"] = creds.gallery_key(self.run_dir)
        if service == "consolidator":
            env["API_PORT"] = str(self.api_port)
            if urlsplit(self.amqp_url).scheme == "amqps":  # a TLS broker: the stream protocol over TLS too
                env.setdefault("FEED_STREAM_PORT", "5551")
        if service == "monitor":
            env |= {
                "WEB_PORT": str(self.monitor_port),
                "HEALTH_PORT": "0",
                "METRICS_TARGETS": self.metrics_targets(),
                "RABBITMQ_API_URL": self.management_url,
            }
        else:
            env["HEALTH_PORT"] = str(self.health_port(process))
        return env


def reachable(url: str, default_port: int) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or default_port), timeout=2):
            return True
    except OSError:
        return False


def docker_answers() -> bool:
    if shutil.which("docker") is None:
        return False
    return subprocess.run(["docker", "info"], capture_output=True, check=False).returncode == 0


def ensure_servers(inst: Installation) -> Installation:
    """RabbitMQ and PostgreSQL must answer; start what is missing with docker compose if possible, else explain."""
    servers = (
        ("RabbitMQ", "rabbitmq", inst.admin_url, 5672),
        ("PostgreSQL", "postgres", inst.database_url, 5432),
    )
    missing = [(name, compose_name) for name, compose_name, url, port in servers if not reachable(url, port)]
    if not missing:
        return inst
    if not localhost.ensure_started(
        inst.admin_url, inst.database_url, grace=0, say=lambda line: print(f"   {line}", flush=True)
    ):
        return inst  # this machine's stopped broker or database, started
    names = " and ".join(name for name, _ in missing)
    if docker_answers():
        print(f"{names} not reachable: starting with docker compose", flush=True)
        subprocess.run(
            ["docker", "compose", "up", "-d", "--wait", *(c for _, c in missing)],
            check=True,
            cwd=PROJECT_ROOT,
        )
        if ("RabbitMQ", "rabbitmq") in missing:
            # The container's broker speaks TLS only (deploy/rabbitmq/tls.conf): its CA, made by the compose
            # `tls` step, is copied here. It refuses guest from outside and has no local rabbitmqctl: its admin.
            ca = inst.run_dir / "tls" / "ca.pem"
            ca.parent.mkdir(parents=True, exist_ok=True)
            subprocess.run(
                ["docker", "compose", "cp", "tls:/tls/ca.pem", str(ca)], check=True, cwd=PROJECT_ROOT
            )
            tls = f"localhost:5671/?cafile={ca.resolve()}"
            return replace(
                inst,
                amqp_url=f"amqps://{tls}",
                admin_url=f"amqps://simpul-admin:simpul-admin@{tls}",
                api_url="http://127.0.0.1:15672",
            )
        return inst
    sys.exit(
        f"{names} not reachable and no Docker engine answers.\n"
        "Install and start them, then run `make run` again:\n"
        "  Debian/Ubuntu: sudo apt-get install rabbitmq-server postgresql\n"
        "                 sudo rabbitmq-server -detached   (or: sudo systemctl start rabbitmq-server)\n"
        "                 sudo pg_ctlcluster 15 main start  (or: sudo systemctl start postgresql)\n"
        "  PostgreSQL must accept user 'postgres' on 127.0.0.1:5432; RabbitMQ guest/guest on 127.0.0.1:5672.\n"
        "  Or install Docker: `make run` then starts both from docker-compose.yml."
    )


def _pid_file(inst: Installation, service: str) -> Path:
    return inst.run_dir / "pids" / f"{service}.pid"


def _pid(inst: Installation, service: str) -> int | None:
    try:
        pid = int(_pid_file(inst, service).read_text())
        os.kill(pid, 0)
        return pid
    except (OSError, ValueError):
        return None


def ready(inst: Installation, service: str) -> bool:
    try:
        with urllib.request.urlopen(inst.ready_url(service), timeout=3) as response:  # noqa: S310 (localhost)
            return bool(json.load(response).get("ready"))
    except (OSError, ValueError):
        return False


def start(inst: Installation, timeout: float = 60) -> None:
    credentials = creds.read(inst.credentials_path)
    (inst.run_dir / "logs").mkdir(parents=True, exist_ok=True)
    (inst.run_dir / "pids").mkdir(parents=True, exist_ok=True)
    for process in inst.processes:
        if (pid := _pid(inst, process)) is not None:
            print(f"  {process}: already running (pid {pid})")
            continue
        log = (inst.run_dir / "logs" / f"{process}.log").open("ab")
        proc = subprocess.Popen(
            [sys.executable, "-m", f"services.{service_of(process)}"],
            cwd=PROJECT_ROOT,
            env=inst.service_env(process, credentials),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        _pid_file(inst, process).write_text(str(proc.pid))
    deadline = time.monotonic() + timeout
    pending = set(inst.processes)
    while pending and time.monotonic() < deadline:
        for service in list(pending):
            if _pid(inst, service) is None:
                sys.exit(f"{service} exited during start; see {inst.run_dir / 'logs' / (service + '.log')}")
            if ready(inst, service):
                pending.discard(service)
                print(f"  {service}: ready ({inst.ready_url(service)})", flush=True)
        time.sleep(0.3)
    if pending:
        sys.exit(f"not ready after {timeout:.0f}s: {', '.join(sorted(pending))}; see {inst.run_dir / 'logs'}")


def stop(inst: Installation, timeout: float = 40) -> None:
    """SIGTERM: each service stops consuming, finishes what it holds, publishes its outbox, then exits."""
    known = _known_processes(inst)
    pids = {s: p for s in known if (p := _pid(inst, s)) is not None}
    for pid in pids.values():
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while pids and time.monotonic() < deadline:
        pids = {s: p for s, p in pids.items() if _alive(p)}
        time.sleep(0.2)
    for service, pid in pids.items():
        print(f"  {service} did not stop in {timeout:.0f}s: killing it")
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    for process in known:
        _pid_file(inst, process).unlink(missing_ok=True)


def _known_processes(inst: Installation) -> list[str]:
    """Everything with a pid file, whatever REGISTRY_WORKERS was when it started."""
    directory = inst.run_dir / "pids"
    found = sorted(p.stem for p in directory.glob("*.pid")) if directory.is_dir() else []
    return sorted(set(found) | set(inst.processes))


def _alive(pid: int) -> bool:
    try:
        waited, _ = os.waitpid(pid, os.WNOHANG)
        if waited == pid:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def enable_plugin(host: str, plugin: str, port: int) -> str | None:
    """None once the broker on `host` answers on the plugin's port, enabling the plugin when the broker is this
    machine's; else why not."""
    if reachable(f"tcp://{host}:{port}/", port):
        return None
    plugins = shutil.which("rabbitmq-plugins")
    if plugins is None or host not in ("127.0.0.1", "localhost", "::1"):
        return "the broker is not on this machine or rabbitmq-plugins is missing"
    done = subprocess.run([plugins, "enable", plugin], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        return (done.stderr or done.stdout).strip()[-300:]
    for _ in range(30):  # the listener opens a moment after the plugin starts
        if reachable(f"tcp://{host}:{port}/", port):
            return None
        time.sleep(1)
    return f"port {port} still does not answer"


def enable_stream_protocol(host: str, port: int = 5552) -> str | None:
    """The rabbitmq_stream plugin (the central feed's protocol): None once it answers, else why not."""
    return enable_plugin(host, "rabbitmq_stream", port)


def enable_management(host: str, port: int = MANAGEMENT_PORT) -> str | None:
    """The rabbitmq_management plugin (the monitor reads each queue's ready and unacknowledged messages from
    its HTTP API): None once it answers, else why not."""
    return enable_plugin(host, "rabbitmq_management", port)


def ensure_stream_protocol(inst: Installation) -> None:
    """The central feed is written and replayed over RabbitMQ's stream protocol (port 5552, the rabbitmq_stream
    plugin); without it the suite works, the feed going over AMQP, several times slower to replay."""
    if urlsplit(inst.admin_url).scheme == "amqps":
        return  # a TLS broker (docker-compose's): its stream protocol listens with TLS on 5551
    why = enable_stream_protocol(urlsplit(inst.admin_url).hostname or "127.0.0.1")
    if why is None:
        return
    print(f"   could not enable RabbitMQ's stream protocol: {why}", flush=True)
    print(
        "   note: RabbitMQ's stream protocol (port 5552) does not answer: the central feed goes over AMQP "
        "instead. To enable it: `rabbitmq-plugins enable rabbitmq_stream` on the broker's host.",
        flush=True,
    )


def ensure_management(inst: Installation) -> None:
    """The monitor's operations view counts each queue's messages in delivery (unacknowledged) as well as the
    ready ones when the broker's management API answers; without it, the ready ones alone."""
    if inst.api_url:
        return  # a broker that has it (docker-compose's)
    why = enable_management(urlsplit(inst.admin_url).hostname or "127.0.0.1")
    if why is not None:
        print(
            f"   note: RabbitMQ's management API does not answer ({why}): the monitor counts each queue's ready "
            "messages alone. To enable it: `rabbitmq-plugins enable rabbitmq_management` on the broker's host.",
            flush=True,
        )


def do_provision(inst: Installation) -> list[creds.Credential]:
    from shared.units import load_units

    return asyncio.run(
        provision.provision(
            units=load_units(PROJECT_ROOT / "deploy" / "units"),
            vhost=inst.vhost,
            namespace=inst.namespace,
            admin_url=inst.admin_url,
            backend=provision.choose_backend(
                os.environ.get("RABBITMQ_API_URL"), inst.admin_url, "rabbitmqctl"
            ),
            credentials_path=inst.credentials_path,
            database_url=inst.database_url,
        )
    )


def monitor_login(inst: Installation) -> creds.Credential:
    return creds.find(creds.read(inst.credentials_path), "monitor", "pusat")


def run(inst: Installation, sim_args: list[str]) -> None:
    inst = ensure_servers(inst)
    ensure_stream_protocol(inst)
    ensure_management(inst)
    print("== provisioning", flush=True)
    do_provision(inst)
    print("== starting the services", flush=True)
    stop(inst)
    start(inst)
    login = monitor_login(inst)
    banner = (
        f"\n== monitor: http://127.0.0.1:{inst.monitor_port}/   login: {login.username} / {login.password}\n"
        f"   (Kanwil logins and all broker users: {inst.credentials_path})\n"
    )
    print(banner, flush=True)
    stopping = False

    def on_signal(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True
        raise KeyboardInterrupt

    # Both, explicitly: a shell starting us in the background would leave SIGINT ignored.
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        print("== simulated day: every UPT publishes its snapshot as its own broker user", flush=True)
        subprocess.run(
            [
                sys.executable,
                "-m",
                "sim.day",
                "--vhost",
                inst.vhost,
                "--amqp-url",
                inst.amqp_url,
                "--credentials",
                str(inst.credentials_path),
                *sim_args,
            ],
            cwd=PROJECT_ROOT,
            check=False,
        )
        ektp_args = shlex.split(os.environ.get("EKTP_ARGS", "--total 5000"))
        if ektp_args != ["--skip"]:
            print(
                "== simulated e-KTP intake: every kab/kota office sends enrolment packets as its own broker user",
                flush=True,
            )
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "sim.ektp_day",
                    "--vhost",
                    inst.vhost,
                    "--amqp-url",
                    inst.amqp_url,
                    "--credentials",
                    str(inst.credentials_path),
                    *ektp_args,
                ],
                cwd=PROJECT_ROOT,
                check=False,
            )
        consolidate_today(inst)
        print(banner + "   the suite keeps running; press Ctrl-C to stop everything.", flush=True)
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        print("\n== stopping the services", flush=True)
        stop(inst)
        print("stopped.")


async def _parts_staged(dsn: str, day: date) -> tuple[int, int]:
    """(parts the consolidator knows completely, parts it has heard of) for the day."""
    conn = await asyncpg.connect(dsn)
    try:
        row = await conn.fetchrow(
            "SELECT count(*) FILTER (WHERE checked OR (stored AND accepted = 0)) AS known, count(*) AS heard "
            "FROM consolidator.sdp_parts WHERE as_of = $1",
            day,
        )
    finally:
        await conn.close()
    return (int(row["known"]), int(row["heard"])) if row else (0, 0)


def consolidate_today(inst: Installation, timeout: float = 300) -> None:
    """The centre's run of the simulated day, once dedup has passed every part on; then its report."""
    day = datetime.now(WIB).date()
    print("== the centre's consolidation of the day (waiting for dedup to pass every part on)", flush=True)
    deadline, last = time.monotonic() + timeout, (-1, -1)
    while time.monotonic() < deadline:
        known, heard = asyncio.run(_parts_staged(inst.database_url, day))
        if known == heard and (known, heard) == last:
            break
        last = (known, heard)
        time.sleep(2)
    python = [sys.executable, "-m"]
    common = ["--amqp-url", inst.amqp_url, "--vhost", inst.vhost, "--credentials", str(inst.credentials_path)]
    subprocess.run(
        [*python, "services.consolidator.command", "--date", day.isoformat(), "--by", "make run",
         "--reason", "simulated day", "--wait", "--api-url", f"http://127.0.0.1:{inst.api_port}", *common],
        cwd=PROJECT_ROOT, check=False,
    )  # fmt: skip
    subprocess.run(
        [*python, "services.consolidator.report", "--date", day.isoformat(), "--database-url", inst.database_url],
        cwd=PROJECT_ROOT, check=False,
    )  # fmt: skip
    print(
        f"   person lookup API (centre logins): http://127.0.0.1:{inst.api_port}/openapi.json; central feed: "
        f"python -m services.consolidator.feed --from first --vhost {inst.vhost}",
        flush=True,
    )


def status(inst: Installation) -> None:
    for process in _known_processes(inst):
        pid = _pid(inst, process)
        state = "stopped" if pid is None else ("ready" if ready(inst, process) else "running, not ready")
        print(f"{process:13} {state:20} {'' if pid is None else f'pid {pid}'}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("command", choices=["run", "up", "down", "status", "provision"])
    args, rest = parser.parse_known_args()
    inst = Installation()
    if args.command == "run":
        run(inst, rest)
    elif args.command == "up":
        inst = ensure_servers(inst)
        do_provision(inst)
        start(inst)
        login = monitor_login(inst)
        print(f"monitor: http://127.0.0.1:{inst.monitor_port}/  login: {login.username} / {login.password}")
    elif args.command == "provision":
        inst = ensure_servers(inst)
        do_provision(inst)
    elif args.command == "down":
        stop(inst)
    else:
        status(inst)


if __name__ == "__main__":
    main()

"""Live updates to many browsers across monitor instances during the national SDP day: delay, loss, cost.

python -m bench.monitor_fanout [--clients 1000] [--instances 2] [--day 275600] [--reconnects 20] [--no-record]
python -m bench.monitor_fanout --day 0 [--events 2000] [--rate 100]      (synthetic status events instead)

An isolated installation runs `--instances` registry and monitor processes (the monitors consume the same status
queue, as behind one address, and follow one live-event log); `--clients` SSE clients (the centre and the Kanwil
logins, spread over the instances) read /events while the 526 UPTs publish the national day's `--day` inmates
as themselves and the registry answers and reports every part (with `--day 0`: `--events` SubmissionProcessed
events at `--rate` per second, published as the registry would, each for another UPT in turn). `--reconnects`
clients drop their connection part-way and reconnect with the last event id they got.

Accounting against the monitors' live-event log: each UPT row it appended is due to every client whose login
may see it. Delay: from the append (the monitor took the event off the broker) to the client's receipt;
`lost`: due and never received (after the quiet tail); `doubled`: an event id a client got twice. The monitors'
resident memory and CPU, and the clients' CPU (one Python process: it must not be the limit).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import urlsplit

import aio_pika
import asyncpg
import httpx

from bench import harness
from deploy import credentials as creds
from deploy.sandbox import Processes, Sandbox
from shared.contracts import WIB, ReceiptStatus, SnapshotState, SubmissionProcessed
from shared.settings import PROJECT_ROOT
from shared.units import Units, load_units


@dataclass
class Client:
    """One browser's SSE connection: what it got (SSE id, arrival) and the last id, for its reconnect."""

    base_url: str
    cookie: str
    scope: str  # "pusat" or a Kanwil id
    after: int
    arrivals: dict[int, float] = field(default_factory=dict)  # live event id -> first arrival
    ids: list[int] = field(default_factory=list)
    last: int = 0
    reconnected: bool = False
    broken: int = 0  # streams that broke (not ended by the server or by the bench)

    async def read(self, *, drop_at: float | None = None) -> None:
        """One connection's stream until the server ends it, `drop_at` passes, or the task is cancelled. The
        client is cheap on purpose (plain reads, the chunked framing and the SSE frames parsed in place): a
        thousand of them share one Python process, which must not be what the figures measure."""
        host = urlsplit(self.base_url)
        reader, writer = await asyncio.open_connection(host.hostname, host.port)
        resume = f"Last-Event-ID: {self.last}\r\n" if self.last else ""
        writer.write(
            f"GET /events?after={self.after} HTTP/1.1\r\nHost: {host.netloc}\r\nCookie: simpul_session="
            f"{self.cookie}\r\nAccept: text/event-stream\r\n{resume}\r\n".encode()
        )
        head = await reader.readuntil(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 200"):
            raise RuntimeError(f"/events answered {head[:40]!r}")
        raw, events = bytearray(), bytearray()  # the chunked body as read; the SSE text it carries
        try:
            while True:
                data = await reader.read(65_536)
                if not data:
                    return
                now = time.time()
                raw += data
                while True:  # chunked transfer encoding: <hex size>\r\n<data>\r\n
                    line_end = raw.find(b"\r\n")
                    if line_end < 0:
                        break
                    size = int(raw[:line_end] or b"0", 16)
                    if size == 0:
                        return
                    if len(raw) < line_end + 2 + size + 2:
                        break
                    events += raw[line_end + 2 : line_end + 2 + size]
                    del raw[: line_end + 2 + size + 2]
                while (cut := events.find(b"\n\n")) >= 0:
                    self.take(bytes(events[:cut]), now)
                    del events[: cut + 2]
                if drop_at is not None and now >= drop_at:
                    return
        finally:
            writer.close()

    async def follow(self, drop_at: float | None) -> None:
        """Reads until cancelled, reconnecting (with its last id) whenever a stream ends or breaks."""
        while True:
            try:
                await self.read(drop_at=drop_at)
            except (OSError, asyncio.IncompleteReadError):
                self.broken += 1
                await asyncio.sleep(0.5)
            if drop_at is not None:
                self.reconnected, drop_at = True, None  # once: then it reconnects with its last id

    def take(self, frame: bytes, now: float) -> None:
        event_id = kind = data = None
        for line in frame.split(b"\n"):
            if line.startswith(b"id: "):
                event_id = int(line[4:])
            elif line.startswith(b"event: "):
                kind = line[7:]
            elif line.startswith(b"data: "):
                data = line[6:]
        if event_id is None:
            return
        self.last = max(self.last, event_id)
        if kind != b"unit" or data is None:
            return
        self.ids.append(event_id)
        self.arrivals.setdefault(event_id, now)


def status_event(upt: str, n: int, day: date, produced_at: datetime) -> SubmissionProcessed:
    return SubmissionProcessed(
        message_id=f"fanout-{n}", produced_at=produced_at, submission_id=f"fanout-{n}", upt_id=upt, as_of=day,
        snapshot=1, part=n, parts=1_000_000, status=ReceiptStatus.ACCEPTED, received=1, accepted=1, rejected=0,
        warnings=0, snapshot_state=SnapshotState(parts=1_000_000, parts_received=n, complete=False),
    )  # fmt: skip


async def login(base_url: str, username: str, password: str) -> str:
    async with httpx.AsyncClient(base_url=base_url) as http:
        response = await http.post(
            "/login", data={"username": username, "password": password}, headers={"Origin": base_url}
        )
        token = response.cookies.get("simpul_session")
        if token is None:
            raise RuntimeError(f"login of {username} refused")
        return token


async def measure(
    sandbox: Sandbox, processes: Processes, units: Units, args: argparse.Namespace
) -> dict[str, Any]:
    urls = [processes.monitor_url] + [
        f"http://127.0.0.1:{processes.ports[f'monitor-{i}']}" for i in range(2, args.instances + 1)
    ]
    kanwils = sorted({u.kanwil_id for u in units.upts})
    scopes = ["pusat", *kanwils]
    cookies: dict[tuple[str, str], str] = {}
    for url in urls:
        for scope in scopes:
            cred = creds.find(sandbox.credentials, "monitor", scope)
            cookies[(url, scope)] = await login(url, cred.username, cred.password)
    async with httpx.AsyncClient(
        base_url=urls[0], cookies={"simpul_session": cookies[(urls[0], "pusat")]}
    ) as http:
        after = (await http.get("/api/units")).json()["live_id"]
    clients = []
    for i in range(args.clients):
        url, scope = urls[i % len(urls)], scopes[i % len(scopes)]
        clients.append(Client(url, cookies[(url, scope)], scope, after))
    harness.say(
        f"{len(clients)} SSE clients on {len(urls)} monitor instances; publishing {args.events} events"
    )
    half = time.time() + (20.0 if args.day else args.events / args.rate / 2)  # a few clients drop then
    step = max(1, args.clients // max(1, args.reconnects))
    dropping = set(range(0, args.clients, step)[: args.reconnects])  # spread out, exactly that many
    readers = [asyncio.create_task(c.follow(half if i in dropping else None)) for i, c in enumerate(clients)]
    await asyncio.sleep(2)  # every client connected

    monitors = [p.pid for name, p in processes.running.items() if name.startswith("monitor")]
    cpu_before, bench_cpu_before, began_at = (
        sum(map(harness.cpu_seconds, monitors)),
        harness.cpu_seconds(),
        time.time(),
    )
    if args.day:
        sent = await publish_day(sandbox, units, args)
    else:
        sent = await publish_events(sandbox, units, args)
    harness.say("waiting for the tail: the monitors' live log quiet for --tail seconds")
    await quiet(sandbox.database_url, args.tail)
    seconds = time.time() - began_at
    monitor_cpu = sum(map(harness.cpu_seconds, monitors)) - cpu_before
    bench_cpu = harness.cpu_seconds() - bench_cpu_before
    rss = [harness.memory_mb(pid)["rss"] for pid in monitors]
    for task in readers:
        task.cancel()
    await asyncio.gather(*readers, return_exceptions=True)
    logged = await live_log(sandbox.database_url, after)
    delays, lost, doubled = [], 0, 0
    for c in clients:
        doubled += len(c.ids) - len(set(c.ids))
        for event_id, kanwil_id, appended in logged:
            if c.scope != "pusat" and kanwil_id != c.scope:
                continue
            arrived = c.arrivals.get(event_id)
            if arrived is None:
                lost += 1
            else:
                delays.append(arrived - appended)
    delays.sort()
    quantile = statistics.quantiles(delays, n=100, method="inclusive") if len(delays) > 1 else [0.0] * 99
    return {
        "clients": len(clients), "instances": len(urls), "mode": "sdp_day" if args.day else "events",
        "events": sent or len(logged), "live_events": len(logged), "seconds": round(seconds, 1),
        "reconnected": sum(c.reconnected for c in clients), "deliveries": len(delays),
        "p50_s": round(quantile[49], 3), "p99_s": round(quantile[98], 3),
        "max_s": round(delays[-1], 3) if delays else None,
        "lost": lost, "doubled": doubled, "broken_streams": sum(c.broken for c in clients),
        "monitor_rss_mb": rss, "monitor_cpu_share": round(monitor_cpu / seconds, 2),
        "clients_cpu_share": round(bench_cpu / seconds, 2),
    }  # fmt: skip


async def quiet(dsn: str, seconds: float) -> None:
    """Until the live log has had no new event for `seconds` (the monitors are through their queue and every
    client had that long to get the last events): a fixed wait counted the events of a backlog as lost."""
    conn = await asyncpg.connect(dsn)
    newest, since = -1, time.monotonic()

    async def still() -> bool:
        nonlocal newest, since
        now = await conn.fetchval("SELECT coalesce(max(id), 0) FROM monitor.live_events")
        if now != newest:
            newest, since = now, time.monotonic()
        return time.monotonic() - since >= seconds

    try:
        await harness.until(still, "the monitors' live log to fall quiet", 600)
    finally:
        await conn.close()


async def live_log(dsn: str, after: int) -> list[tuple[int, str | None, float]]:
    """The UPT rows the monitors appended to their live log after `after`: (id, Kanwil, when appended)."""
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT id, kanwil_id, extract(epoch FROM at)::float8 AS at FROM monitor.live_events "
            "WHERE id > $1 AND kind = 'unit' ORDER BY id",
            after,
        )
    finally:
        await conn.close()
    return [(r["id"], r["kanwil_id"], r["at"]) for r in rows]


async def publish_events(sandbox: Sandbox, units: Units, args: argparse.Namespace) -> int:
    """SubmissionProcessed events at a steady rate, as the registry's user, each for another UPT in turn."""
    registry_url = sandbox.url_for("service", "registry")
    user = urlsplit(registry_url).username
    day = datetime.now(WIB).date()
    connection = await aio_pika.connect(registry_url)
    try:
        channel = await connection.channel()
        events = await channel.get_exchange("events", ensure=False)
        upts = [u.upt_id for u in units.upts]
        began = time.time()
        for n in range(1, args.events + 1):
            due = began + (n - 1) / args.rate
            await asyncio.sleep(max(0.0, due - time.time()))
            event = status_event(upts[n % len(upts)], n, day, datetime.now(UTC))
            await events.publish(
                aio_pika.Message(
                    event.model_dump_json().encode(), message_id=event.message_id, user_id=user,
                    content_type="application/json", delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                ),
                routing_key=event.ROUTING_KEY,
            )  # fmt: skip
            if n % max(1, args.events // 5) == 0:
                harness.say(f"  {n} events published")
    finally:
        await connection.close()
    return int(args.events)


async def publish_day(sandbox: Sandbox, units: Units, args: argparse.Namespace) -> int:
    """Every UPT publishes its day's snapshot as itself (sim.day, in a process of its own: the clients' loop
    here must not wait behind 526 publishers); the registry processes answer and report each part."""
    harness.say(f"  {len(units.upts)} UPTs publish {args.day:,} inmates (python -m sim.day)")
    day = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "sim.day", "--units", str(sandbox.units_dir), "--credentials",
        str(sandbox.credentials_path), "--amqp-url", sandbox.servers.amqp_url, "--vhost", sandbox.vhost,
        "--total", str(args.day), "--seed", "7", "--snapshot", "1", cwd=PROJECT_ROOT,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    out, _ = await day.communicate()
    summary = out.decode(errors="replace").strip().splitlines()[-1:]
    harness.say(f"  {summary[0] if summary else ''}")
    if day.returncode != 0:
        raise RuntimeError(f"sim.day failed ({day.returncode}): {out.decode(errors='replace')[-2000:]}")
    return 0  # counted from the live-event log


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clients", type=int, default=1_000)
    parser.add_argument("--instances", type=int, default=2)
    parser.add_argument(
        "--day", type=int, default=275_600,
        help="inmates of the national SDP day the UPTs publish meanwhile (0: synthetic events instead)",
    )  # fmt: skip
    parser.add_argument("--events", type=int, default=2_000, help="without --day: events published")
    parser.add_argument("--rate", type=float, default=100.0, help="events published per second")
    parser.add_argument("--reconnects", type=int, default=20, help="clients that drop and resume half-way")
    parser.add_argument(
        "--tail", type=float, default=5.0, help="seconds the live log must stay quiet at the end"
    )
    parser.add_argument("--no-record", action="store_true", help="do not append to BENCHMARKS.md")
    args = parser.parse_args()
    units = load_units(PROJECT_ROOT / "deploy" / "units")
    services = ("registry", "monitor") if args.day else ("monitor",)
    with harness.installation(units, services, label="fanout", instances=args.instances) as (
        sandbox,
        processes,
    ):
        figures = harness.run(measure(sandbox, processes, units, args))
        info = harness.machine(harness.run(harness.database_version(sandbox.database_url)))
    if not args.no_record:
        harness.record(
            "monitor live fan-out: status events to SSE clients across monitor instances",
            figures,
            [
                f"{args.instances} monitor processes (one status queue between them, one live-event log in the "
                "database that both follow) and, with `mode` sdp_day, as many registry processes while the 526 "
                "UPTs publish the national day as themselves (sim.day in its own process); SSE clients spread "
                "over the monitors, the centre and Kanwil logins in turn. Accounted against the monitors' "
                "live-event log: `p50_s`/`p99_s`: from the start of the monitor's transaction that logged a UPT "
                "row (it had taken the event off the broker) to its arrival at a client whose login may see it; "
                f"`lost`: such arrivals that never came ({args.reconnects} clients reconnect part-way with "
                "Last-Event-ID); `doubled`: an event a client got twice. `monitor_rss_mb`: each monitor "
                "process's resident memory at the end; `monitor_cpu_share` and `clients_cpu_share`: CPU seconds "
                "per second of the run, of the monitors together and of the bench's clients (near 1.0: that "
                "side is the limit)."
            ],
            info,
        )
    harness.finish(figures)


if __name__ == "__main__":
    main()

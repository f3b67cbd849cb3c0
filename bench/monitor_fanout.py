"""Live updates to many browsers across monitor instances: delay from a status event to each page, and loss.

python -m bench.monitor_fanout [--clients 200] [--instances 2] [--events 2000] [--rate 100] [--reconnects 20]
                               [--no-record]

An isolated installation runs `--instances` monitor processes (consuming the same status queue, as behind one
address); `--clients` SSE clients (the centre and the Kanwil logins, spread over the instances) read /events.
The bench publishes `--events` SubmissionProcessed events at `--rate` per second as the registry would, each for
another UPT in turn (a UPT's events are seconds apart), and `--reconnects` clients drop their connection half-way
and reconnect with the last event id they got. Each event's delay: from its publication (its produced_at) to its
arrival at a client. `lost`: events a client's login may see that never reached it (after the quiet tail);
`doubled`: an event id a client got twice.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import urlsplit

import aio_pika
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
    arrivals: dict[tuple[str, str], float] = field(default_factory=dict)  # (upt, produced_at) -> arrival
    ids: list[int] = field(default_factory=list)
    last: int = 0
    reconnected: bool = False

    async def read(self, until: asyncio.Event, *, drop_at: float | None = None) -> None:
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
        buffer = b""
        try:
            while not until.is_set():
                if drop_at is not None and time.time() >= drop_at:
                    return
                try:
                    size_line = await asyncio.wait_for(reader.readline(), 0.5)  # chunked transfer encoding
                except TimeoutError:
                    continue
                size = int(size_line.strip() or b"0", 16)
                if size == 0:
                    return
                buffer += await reader.readexactly(size + 2)
                buffer = buffer[:-2] if buffer.endswith(b"\r\n") else buffer
                while b"\n\n" in buffer:
                    frame, buffer = buffer.split(b"\n\n", 1)
                    self.take(frame.decode(), time.time())
        finally:
            writer.close()

    async def follow(self, until: asyncio.Event, drop_at: float | None) -> None:
        while not until.is_set():
            await self.read(until, drop_at=drop_at)
            if drop_at is not None:
                self.reconnected, drop_at = True, None  # once: then it reconnects with its last id

    def take(self, frame: str, now: float) -> None:
        fields = dict(line.split(": ", 1) for line in frame.splitlines() if ": " in line and line[0] != ":")
        if "id" not in fields or fields.get("event") != "unit":
            if "id" in fields:
                self.last = max(self.last, int(fields["id"]))
            return
        event_id = int(fields["id"])
        self.ids.append(event_id)
        self.last = max(self.last, event_id)
        row = json.loads(fields["data"])["row"]
        self.arrivals.setdefault((row["upt_id"], row["last_submission_at"]), now)


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
    done = asyncio.Event()
    half = time.time() + args.events / args.rate / 2
    step = max(1, args.clients // max(1, args.reconnects))
    dropping = set(range(0, args.clients, step)[: args.reconnects])  # spread out, exactly that many
    readers = [
        asyncio.create_task(c.follow(done, half if i in dropping else None)) for i, c in enumerate(clients)
    ]
    await asyncio.sleep(2)  # every client connected

    registry_url = sandbox.url_for("service", "registry")
    user = urlsplit(registry_url).username
    day = datetime.now(WIB).date()
    sent: list[tuple[str, str, float]] = []
    connection = await aio_pika.connect(registry_url)
    try:
        channel = await connection.channel()
        events = await channel.get_exchange("events", ensure=False)
        upts = [u.upt_id for u in units.upts]
        began = time.time()
        for n in range(1, args.events + 1):
            due = began + (n - 1) / args.rate
            await asyncio.sleep(max(0.0, due - time.time()))
            produced = datetime.now(UTC)
            event = status_event(upts[n % len(upts)], n, day, produced)
            await events.publish(
                aio_pika.Message(
                    event.model_dump_json().encode(), message_id=event.message_id, user_id=user,
                    content_type="application/json", delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                ),
                routing_key=event.ROUTING_KEY,
            )  # fmt: skip
            sent.append((event.upt_id, produced.isoformat(), produced.timestamp()))
            if n % max(1, args.events // 5) == 0:
                harness.say(f"  {n} events published")
    finally:
        await connection.close()
    harness.say("waiting for the tail")
    await asyncio.sleep(args.tail)
    done.set()
    await asyncio.gather(*readers, return_exceptions=True)

    kanwil_of = {u.upt_id: u.kanwil_id for u in units.upts}
    delays, lost, doubled = [], 0, 0
    for c in clients:
        doubled += len(c.ids) - len(set(c.ids))
        for upt, produced_iso, produced_ts in sent:
            if c.scope != "pusat" and kanwil_of[upt] != c.scope:
                continue
            arrived = c.arrivals.get((upt, produced_iso))
            if arrived is None:
                lost += 1
            else:
                delays.append(arrived - produced_ts)
    delays.sort()
    quantile = statistics.quantiles(delays, n=100, method="inclusive") if len(delays) > 1 else [0.0] * 99
    return {
        "clients": len(clients), "instances": len(urls), "events": len(sent), "rate": args.rate,
        "reconnected": sum(c.reconnected for c in clients), "deliveries": len(delays),
        "p50_s": round(quantile[49], 3), "p99_s": round(quantile[98], 3),
        "max_s": round(delays[-1], 3) if delays else None,
        "lost": lost, "doubled": doubled,
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--instances", type=int, default=2)
    parser.add_argument("--events", type=int, default=2_000)
    parser.add_argument("--rate", type=float, default=100.0, help="events published per second")
    parser.add_argument("--reconnects", type=int, default=20, help="clients that drop and resume half-way")
    parser.add_argument("--tail", type=float, default=5.0, help="seconds to wait for stragglers at the end")
    parser.add_argument("--no-record", action="store_true", help="do not append to BENCHMARKS.md")
    args = parser.parse_args()
    units = load_units(PROJECT_ROOT / "deploy" / "units")
    with harness.installation(units, ("monitor",), label="fanout", instances=args.instances) as (
        sandbox,
        processes,
    ):
        figures = asyncio.run(measure(sandbox, processes, units, args))
        info = harness.machine(asyncio.run(harness.database_version(sandbox.database_url)))
    if not args.no_record:
        harness.record(
            "monitor live fan-out: status events to SSE clients across monitor instances",
            figures,
            [
                f"{args.instances} monitor processes (one status queue between them, one live-event log in the "
                "database that both follow); SSE clients spread over them, one in ten of the Kanwil and centre "
                "logins each; the events published as the registry's service user. `p50_s`/`p99_s`: from an "
                "event's publication to its arrival at a client whose login may see it; `lost`: such arrivals "
                f"that never came ({args.reconnects} clients reconnect half-way with Last-Event-ID); `doubled`: "
                "an event a client got twice."
            ],
            info,
        )
    harness.finish(figures)


if __name__ == "__main__":
    main()

"""Replay of the central feed: `read_feed` from the first message of a stream holding N record changes.

python -m bench.feed_replay [--messages 200000] [--seed 2025] [--prefetch 1000] [--no-record]

An isolated installation (no service process) gets N `CentralRecordChanged` messages of about 1.5 KB, shaped
like the consolidator's (services/consolidator/store.py FEED_ROWS), published to `events` on
`central.record.changed` as the consolidator's broker user, with the properties its outbox relay sets. Then
the centre user replays the stream `central.records` from its first message twice, in the bench's process:
- `replay_records_per_s`: `read_feed` with a callback that only checks the offsets (each once, in order);
- `cli_records_per_s`: the command line's own path (each message a JSON line, the offset saved after each
  batch), written to /dev/null.
Rates count from the start of consuming to the last message (the end-of-stream idle wait is not counted).
CPU per message and per second of the plain replay, of the reader and (when the broker runs on this machine,
found with rabbitmqctl) of the broker, tell which of the two is the limit.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import subprocess
import tempfile
import time
from contextlib import suppress
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO

import aiormq
import orjson
from aiormq.abc import ConfirmationFrameType

from bench import harness
from deploy import credentials as creds
from deploy.sandbox import Sandbox
from services.consolidator import feed, stream_wire
from shared.contracts import CentralRecordChanged
from shared.settings import PROJECT_ROOT
from shared.units import load_units

UNITS = ("upt-3273-1",)  # the broker users of one UPT are enough: only the centre and the consolidator act
WINDOW = 2_000  # publishes awaiting their confirms at once
RELAY_BATCH = 500  # the outbox relay's batch (shared/db.py OutboxRelay)
PROGRESS = 20_000
NAMES = ("Budi", "Siti", "Agus", "Dewi", "Eko", "Sri", "Joko", "Rina", "Hendra", "Wati", "Yusuf", "Ani")
PLACES = ("Bandung", "Cimahi", "Garut", "Bogor", "Bekasi", "Depok", "Medan", "Banda Aceh")


def episode(rng: random.Random, upt: str, first: date) -> dict[str, Any]:
    sentence = rng.randrange(180, 3_650)
    return {
        "upt_id": upt, "inmate_id": f"{upt}-{rng.randrange(10**7):07d}", "register": "B.I",
        "register_number": f"B.I-{rng.randrange(10**4):04d}/{first.year}", "entry_date": first.isoformat(),
        "detention_start": None, "detention_expiry": None, "extension_days": 0, "extended_until": None,
        "extensions": [], "sentence_days": sentence, "expected_release": (first + timedelta(sentence)).isoformat(),
        "custody_status": "narapidana", "state": "active", "ended_on": None, "moved_to": None,
        "first_seen": first.isoformat(), "first_snapshot": f"{first.isoformat()}/1",
        "last_seen": "2026-12-01", "last_snapshot": "2026-12-01/1", "population": "matched",
        "flags": [],
    }  # fmt: skip


def record_body(rng: random.Random, n: int, produced_at: str) -> tuple[str, bytes]:
    """One record change as the consolidator's FEED_ROWS writes it: the person's whole document."""
    person_id, nik = 1_000_000 + n, f"3273{rng.randrange(10**12):012d}"
    birth = date(1960, 1, 1) + timedelta(rng.randrange(16_000))
    upts = rng.sample(("upt-3273-1", "upt-3273-2", "upt-3204-1"), 1 + (rng.random() < 0.2))
    episodes = [episode(rng, upt, date(2020, 1, 1) + timedelta(rng.randrange(2_000))) for upt in upts]
    name = f"{rng.choice(NAMES)} {rng.choice(NAMES)}"
    at = {"upt_id": upts[0], "as_of": "2026-12-01", "snapshot": 1}
    message_id = f"central-C{person_id}-v1"
    document = {
        "message_id": message_id, "schema_version": 1, "produced_at": produced_at,
        "central_id": f"C{person_id}", "version": 1, "changed": ["identity", "episodes"],
        "cause": "run-2026-12-01-command-0f3a9c21",
        "person": {
            "central_id": f"C{person_id}", "nik": nik, "version": 1, "merged_into": None,
            "identity": {"full_name": name, "sex": rng.choice("LP"), "birth_date": birth.isoformat(),
                         "birth_place": rng.choice(PLACES), "mother_name": f"{rng.choice(NAMES)} binti X"},
            "provenance": dict.fromkeys(("full_name", "sex", "birth_date", "birth_place", "mother_name"), at),
            "sources": [{"source": "sdp", "id": e["inmate_id"]} for e in episodes],
            "merged": [], "episodes": episodes, "ektp": [],
        },
    }  # fmt: skip
    return message_id, orjson.dumps(document)


async def publish_stream(sandbox: Sandbox, count: int, seed: int) -> int:
    """As the consolidator's outbox relay publishes the feed: over the stream protocol, a relay batch (500)
    in flight at once, each confirmed. Returns the bytes of the bodies."""
    user = creds.find(sandbox.credentials, "service", "consolidator").username
    url = stream_wire.stream_url(sandbox.url_for("service", "consolidator"), harness.servers().stream_port)
    rng, total, began = random.Random(seed), 0, time.monotonic()
    wire = await stream_wire.StreamWire.connect(url)
    try:
        await wire.declare_publisher()
        pending: list[asyncio.Future[None]] = []
        for n in range(count):
            now = datetime.now(UTC)
            message_id, body = record_body(rng, n, now.strftime("%Y-%m-%dT%H:%M:%S.%fZ"))
            total += len(body)
            pending.append(wire.publish(stream_wire.encode_message(
                body, message_id=message_id, created=now, user_id=user, exchange="events",
                routing_key=CentralRecordChanged.ROUTING_KEY, headers={"schema_version": 1},
            )))  # fmt: skip
            if len(pending) >= RELAY_BATCH or n == count - 1:
                await asyncio.gather(*pending)
                pending.clear()
            if (n + 1) % PROGRESS == 0:
                harness.say(
                    f"  published {n + 1:,}/{count:,} ({(n + 1) / (time.monotonic() - began):,.0f}/s)"
                )
    finally:
        await wire.close()
    return total


async def publish(sandbox: Sandbox, count: int, seed: int) -> int:
    """As the consolidator's outbox relay publishes: its own user id, persistent, confirmed. Returns bytes."""
    user = creds.find(sandbox.credentials, "service", "consolidator").username
    rng, total, began = random.Random(seed), 0, time.monotonic()
    key = CentralRecordChanged.ROUTING_KEY
    connection = await aiormq.connect(sandbox.url_for("service", "consolidator"))
    try:
        channel = await connection.channel(publisher_confirms=True)
        pending: list[asyncio.Future[ConfirmationFrameType | None]] = []
        for n in range(count):
            now = datetime.now(UTC)
            message_id, body = record_body(rng, n, now.strftime("%Y-%m-%dT%H:%M:%S.%fZ"))
            total += len(body)
            properties = aiormq.spec.Basic.Properties(
                content_type="application/json", delivery_mode=2, message_id=message_id, user_id=user,
                timestamp=now, headers={"schema_version": 1},
            )  # fmt: skip
            sent = channel.basic_publish(
                body, exchange="events", routing_key=key, properties=properties, mandatory=True
            )
            pending.append(asyncio.ensure_future(sent))
            if len(pending) >= WINDOW or n == count - 1:
                for confirm in await asyncio.gather(*pending):
                    if not isinstance(confirm, aiormq.spec.Basic.Ack):
                        raise RuntimeError(f"the broker did not confirm a publish: {confirm!r}")
                pending.clear()
            if (n + 1) % PROGRESS == 0:
                harness.say(
                    f"  published {n + 1:,}/{count:,} ({(n + 1) / (time.monotonic() - began):,.0f}/s)"
                )
    finally:
        await connection.close()
    return total


class InOrder:
    """The bench's callback: every offset once and in order, nothing else done."""

    def __init__(self) -> None:
        self.last = -1
        self.count = 0

    def __call__(self, message: feed.FeedMessage) -> None:
        if message.offset <= self.last:
            raise AssertionError(f"offset {message.offset} after {self.last}")
        self.last, self.count = message.offset, self.count + 1
        if self.count % PROGRESS == 0:
            harness.say(f"  read {self.count:,}")


def broker_pid() -> int | None:
    """The local broker's process, to count its CPU beside the reader's; None when it runs elsewhere."""
    with suppress(OSError, ValueError, subprocess.SubprocessError):
        command = [*harness.servers().rabbitmqctl, "eval", "os:getpid()."]
        out = subprocess.run(command, capture_output=True, text=True, timeout=60, check=True).stdout
        pid = int(out.strip().strip('"'))
        if Path(f"/proc/{pid}/comm").read_text().strip() == "beam.smp":  # not a container's own pid
            return pid
    return None


def cpu_seconds(pid: int | None) -> float:
    if pid is None:
        return 0.0
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # user and system time


async def plain_replay(url: str, count: int, prefetch: int, broker: int | None) -> dict[str, Any]:
    """`read_feed` from the first message with a callback that only checks the offsets, and the CPU spent."""
    cpu, broker_cpu, check = time.process_time(), cpu_seconds(broker), InOrder()
    plain = await feed.read_feed(
        url, start="first", follow=False, limit=None, idle=2.0, on_message=check, prefetch=prefetch,
        notice=harness.say,
    )  # fmt: skip
    cpu, broker_cpu = time.process_time() - cpu, cpu_seconds(broker) - broker_cpu  # the idle wait costs none
    harness.say(feed.summary_line(plain))
    if (
        plain.messages != count
        or plain.first_offset != 0
        or plain.last_offset != count - 1
        or check.count != count
    ):
        raise AssertionError(f"expected offsets 0..{count - 1}, got {feed.summary_line(plain)}")
    seconds = max(plain.seconds, 1e-9)
    return {
        "records_per_s": round(plain.rate), "seconds": round(plain.seconds, 2),
        "reader_cpu_us_per_message": round(cpu / count * 1e6, 1), "client_cpu_share": round(cpu / seconds, 2),
        "broker_cpu_us_per_message": round(broker_cpu / count * 1e6, 1) if broker else None,
        "broker_cpu_share": round(broker_cpu / seconds, 2) if broker else None,
    }  # fmt: skip


async def replay(sandbox: Sandbox, count: int, prefetch: int, out: BinaryIO) -> dict[str, Any]:
    amqp_url, broker = sandbox.url_for("pusat", "pusat"), broker_pid()
    url = stream_wire.stream_url(amqp_url, harness.servers().stream_port)
    harness.say("replaying over AMQP 0-9-1 (the baseline), with a callback that only checks the offsets")
    amqp = await plain_replay(amqp_url, count, prefetch, broker)
    harness.say("replaying over the stream protocol, with the same callback")
    stream = await plain_replay(url, count, prefetch, broker)
    harness.say(
        "replaying as the command line does (stream protocol, JSON lines to /dev/null, offset per batch)"
    )
    with tempfile.TemporaryDirectory(prefix="simpul-feed-") as tmp:
        tally = feed._Tally(out, Path(tmp) / "feed.offset", PROGRESS, quiet=False)
        cli = await feed.read_feed(
            url, start="first", follow=False, limit=None, idle=2.0, on_message=tally.on_message,
            on_batch=tally.save, prefetch=prefetch, notice=harness.say,
        )  # fmt: skip
        saved = feed.read_offset(Path(tmp) / "feed.offset")
    harness.say(feed.summary_line(cli))
    if cli.messages != count or cli.first_offset != 0 or saved != count - 1:
        raise AssertionError(f"expected offsets 0..{count - 1}, got {feed.summary_line(cli)}, saved {saved}")
    return {
        "replay_records_per_s": stream["records_per_s"], "messages": count, "seconds": stream["seconds"],
        "reader_cpu_us_per_message": stream["reader_cpu_us_per_message"],
        "replay_client_cpu_share": stream["client_cpu_share"],
        "broker_cpu_us_per_message": stream["broker_cpu_us_per_message"],
        "broker_cpu_share": stream["broker_cpu_share"],
        "amqp_replay_records_per_s": amqp["records_per_s"],
        "amqp_reader_cpu_us_per_message": amqp["reader_cpu_us_per_message"],
        "amqp_broker_cpu_us_per_message": amqp["broker_cpu_us_per_message"],
        "ratio_to_amqp": round(stream["records_per_s"] / max(amqp["records_per_s"], 1), 2),
        "cli_records_per_s": round(cli.rate), "cli_seconds": round(cli.seconds, 2),
    }  # fmt: skip


async def measure(sandbox: Sandbox, args: argparse.Namespace, out: BinaryIO) -> dict[str, Any]:
    count = args.messages
    harness.say(f"publishing {count:,} central.record.changed messages as the consolidator")
    began = time.monotonic()
    size = await (publish_stream if args.publish == "stream" else publish)(sandbox, count, args.seed)
    published = time.monotonic() - began
    harness.say(
        f"published {count:,} messages, {size / count:,.0f} bytes each on average, in {published:.1f} s"
    )
    figures = await replay(sandbox, count, args.prefetch, out)
    return figures | {"body_bytes_mean": round(size / count), "publish_seconds": round(published, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=2025)
    parser.add_argument("--prefetch", type=int, default=1_000, help="the reader's (read_feed's default)")
    parser.add_argument(
        "--publish", choices=("stream", "amqp"), default="stream",
        help="how the messages are published: as the consolidator does (stream protocol) or over AMQP 0-9-1",
    )  # fmt: skip
    parser.add_argument("--no-record", action="store_true", help="do not append to BENCHMARKS.md")
    args = parser.parse_args()
    if args.messages < 1:
        parser.error("--messages must be positive")
    units = load_units(PROJECT_ROOT / "deploy" / "units").subset(set(UNITS))
    with harness.installation(units, (), label="bench-feed") as (sandbox, _), open(os.devnull, "wb") as out:
        figures = harness.run(measure(sandbox, args, out))
    info = harness.machine(harness.run(harness.database_version(harness.servers().database_url)))
    if not args.no_record:
        harness.record("central feed replay", figures, [
            f"{args.messages:,} `CentralRecordChanged` messages (~{figures['body_bytes_mean']:,} bytes each) "
            f"published as the consolidator publishes the feed ({args.publish}: over the stream protocol a relay "
            "batch of 500 per frame, which the broker stores as a few large chunks) to the stream "
            "`central.records` of an isolated vhost, then replayed from the first message by the centre user in "
            "the bench's process (one asyncio loop, one connection), first over AMQP 0-9-1 (the baseline, "
            "`amqp_*`), then over the stream protocol. `replay_records_per_s`: `read_feed` over the stream "
            "protocol with a callback that only checks the offsets; `cli_records_per_s`: the command line's path "
            "(JSON lines to /dev/null, offset file saved per batch). `*_cpu_us_per_message` and "
            "`*_cpu_share`: CPU per message and per second of the replay, of the reader and of the broker's OS "
            "process (a share near 1.0: that side is the limit).",
        ], info)  # fmt: skip
    harness.finish(figures)


if __name__ == "__main__":
    main()

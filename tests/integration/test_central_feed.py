"""The central feed on the real broker: replay, resume, replay from a time, following, and who may read it."""

from __future__ import annotations

import asyncio
import json
import math
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aio_pika
import aiormq
import pytest

from deploy import credentials as creds
from deploy.sandbox import free_port
from services.consolidator.feed import FeedMessage, read_feed
from services.consolidator.stream_wire import StreamError, StreamWire, encode_message, stream_url
from shared.contracts import CentralRecordChanged, derive_message_id
from shared.settings import PROJECT_ROOT
from tests.conftest import Installation

pytestmark = pytest.mark.integration
UPT = "upt-3273-1"


@dataclass(frozen=True)
class Published:
    """What this module published; the stream is shared with the installation's other tests."""

    early: list[CentralRecordChanged]
    late: list[CentralRecordChanged]
    between: datetime  # a whole second after every early message was stored and before any late one
    offsets: dict[str, int]  # message id -> offset

    @property
    def ids(self) -> list[str]:
        return [r.message_id for r in self.early + self.late]


def records(run: str, numbers: range) -> list[CentralRecordChanged]:
    return [
        CentralRecordChanged(
            message_id=derive_message_id("test-feed", run, i),
            produced_at=datetime.now(UTC),
            central_id=f"C{i:09d}",
            version=1,
            changed=["identity"],
            cause=f"run-{run}",
            person={"nik": f"3273{i:08d}0001", "identity": {"name": f"Orang {i}"}},
        )
        for i in numbers
    ]


async def publish(inst: Installation, batch: list[CentralRecordChanged]) -> None:
    """As the consolidator publishes: its own user id, persistent, with confirms."""
    cred = creds.find(inst.credentials, "service", "consolidator")
    connection = await aio_pika.connect(inst.url_for("service", "consolidator"))
    try:
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        events = await channel.get_exchange("events", ensure=False)
        for r in batch:
            message = aio_pika.Message(
                r.model_dump_json().encode(),
                message_id=r.message_id,
                user_id=cred.username,
                content_type="application/json",
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                timestamp=datetime.now(UTC),
            )
            await events.publish(message, routing_key=CentralRecordChanged.ROUTING_KEY, mandatory=True)
    finally:
        await connection.close()


async def publish_stream(inst: Installation, batch: list[CentralRecordChanged]) -> None:
    """As the consolidator's relay publishes the feed now: over the stream protocol, one batch in flight."""
    cred = creds.find(inst.credentials, "service", "consolidator")
    wire = await StreamWire.connect(
        stream_url(inst.url_for("service", "consolidator"), inst.servers.stream_port)
    )
    try:
        await wire.declare_publisher()
        created = datetime.now(UTC)
        sent = [
            wire.publish(
                encode_message(
                    r.model_dump_json().encode(), message_id=r.message_id, created=created,
                    user_id=cred.username, exchange="events", routing_key=CentralRecordChanged.ROUTING_KEY,
                    headers={"schema_version": 1},
                )
            )
            for r in batch
        ]  # fmt: skip
        await asyncio.gather(*sent)
    finally:
        await wire.close()


def url(inst: Installation, protocol: str, role: str = "pusat", unit: str = "pusat") -> str:
    amqp = inst.url_for(role, unit)
    return stream_url(amqp, inst.servers.stream_port) if protocol == "stream" else amqp


async def read(url: str, start: str | int | datetime, **kw: Any) -> list[FeedMessage]:
    got: list[FeedMessage] = []
    kw = {"follow": False, "limit": None, "idle": 1.0} | kw
    await read_feed(url, start=start, on_message=got.append, **kw)
    return got


async def publish_two_batches(inst: Installation) -> Published:
    run = uuid.uuid4().hex[:8]
    early, late = records(run, range(25)), records(run, range(25, 50))
    await publish(inst, early)  # over AMQP, as any publisher may
    # The broker finds a time by the chunks' timestamps, whole seconds on AMQP: the next whole second is after
    # every confirmed early message and, after the sleep, before every late one.
    between = datetime.fromtimestamp(math.floor(time.time()) + 1, UTC)
    await asyncio.sleep(between.timestamp() - time.time() + 0.3)
    await publish_stream(inst, late)  # over the stream protocol, as the consolidator does
    everything = await read(inst.url_for("pusat", "pusat"), "first")
    offsets = {m.message_id: m.offset for m in everything if m.message_id}
    return Published(early, late, between, {r.message_id: offsets[r.message_id] for r in early + late})


@pytest.fixture(scope="module")
def published(installation: Installation) -> Published:
    return asyncio.run(publish_two_batches(installation))


def feed(inst: Installation, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command(inst, *args), cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=timeout
    )


def interruptible() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def command(inst: Installation, *args: str) -> list[str]:
    base = [
        "--amqp-url",
        inst.servers.amqp_url,
        "--vhost",
        inst.vhost,
        "--credentials",
        str(inst.credentials_path),
    ]
    return [sys.executable, "-m", "services.consolidator.feed", *base, "--idle", "1", *args]


def lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line]


def ours(rows: list[dict[str, Any]], wanted: list[str]) -> list[str]:
    return [r["message_id"] for r in rows if r["message_id"] in set(wanted)]


@pytest.mark.parametrize("protocol", ["amqp", "stream"])
async def test_a_replay_from_the_first_message_reads_all_in_order(
    installation: Installation, published: Published, protocol: str
) -> None:
    got = await read(url(installation, protocol), "first")
    mine = [m for m in got if m.message_id in set(published.ids)]
    assert [m.message_id for m in mine] == published.ids
    assert [m.offset for m in got] == sorted({m.offset for m in got})  # in order, each once
    assert [m.offset for m in mine] == [published.offsets[i] for i in published.ids]
    # what went in over either protocol comes out the same over either
    assert [
        CentralRecordChanged.model_validate_json(m.body) for m in mine
    ] == published.early + published.late
    assert all(
        m.timestamp is not None and abs(m.timestamp - datetime.now(UTC)).total_seconds() < 600 for m in mine
    )


async def test_both_protocols_read_the_same_messages_at_the_same_offsets(
    installation: Installation, published: Published
) -> None:
    start = min(published.offsets.values())
    amqp = await read(url(installation, "amqp"), start)
    stream = await read(url(installation, "stream"), start)
    assert len(amqp) >= len(published.ids)
    assert [(m.offset, m.message_id, m.body) for m in amqp] == [
        (m.offset, m.message_id, m.body) for m in stream
    ]
    # AMQP carries whole seconds; the stream protocol the milliseconds: the same second
    assert [m.timestamp for m in amqp] == [m.timestamp for m in stream]


def test_the_command_line_reads_over_amqp_where_the_stream_port_refuses(
    installation: Installation, published: Published
) -> None:
    closed = free_port()  # nothing listens there
    result = feed(installation, "--stream-port", str(closed), "--from", str(min(published.offsets.values())))
    assert result.returncode == 0, result.stderr
    assert ours(lines(result.stdout), published.ids) == published.ids
    assert f"127.0.0.1:{closed}: no stream protocol there" in result.stderr
    assert "reading over AMQP 0-9-1 instead" in result.stderr


def test_a_saved_offset_resumes_without_repeating_or_losing(
    installation: Installation, published: Published, tmp_path: Path
) -> None:
    offset_file, first = tmp_path / "feed.offset", published.offsets[published.ids[0]]
    one = feed(installation, "--from", str(first), "--limit", "20", "--offset-file", str(offset_file))
    assert one.returncode == 0, one.stderr
    rows = lines(one.stdout)
    assert ours(rows, published.ids) == published.ids[:20]
    assert int(offset_file.read_text()) == rows[-1]["offset"] == published.offsets[published.ids[19]]

    two = feed(installation, "--offset-file", str(offset_file))  # no --from: after the saved offset
    assert two.returncode == 0, two.stderr
    rest = lines(two.stdout)
    assert rest[0]["offset"] == rows[-1]["offset"] + 1
    assert ours(rows + rest, published.ids) == published.ids
    offsets = [r["offset"] for r in rows + rest]
    assert len(offsets) == len(set(offsets))
    assert int(offset_file.read_text()) == rest[-1]["offset"]


def test_a_replay_from_a_time_reads_only_what_the_stream_stored_from_then(
    installation: Installation, published: Published
) -> None:
    result = feed(installation, "--from", published.between.isoformat())
    assert result.returncode == 0, result.stderr
    late = [r.message_id for r in published.late]
    assert ours(lines(result.stdout), published.ids) == late
    assert "begins later" not in result.stderr


def test_a_replay_from_before_the_stream_began_reads_everything_and_says_so(
    installation: Installation, published: Published
) -> None:
    result = feed(installation, "--from", "2000-01-01T00:00:00+07:00")
    assert result.returncode == 0, result.stderr
    rows = lines(result.stdout)
    assert ours(rows, published.ids) == published.ids
    assert "the stream begins later than 2000-01-01T00:00:00+07:00" in result.stderr
    assert f"first message (offset {rows[0]['offset']})" in result.stderr
    assert "replaying from the first message" in result.stderr
    assert f"{len(rows)} messages" in result.stderr
    assert "records/s" in result.stderr
    niks = [r.person["nik"] for r in published.early]
    assert niks[0] in result.stdout  # the feed carries them ...
    assert not any(nik in result.stderr for nik in niks)  # ... and never says them


@pytest.mark.parametrize("protocol", ["amqp", "stream"])
async def test_a_record_larger_than_a_frame_arrives_whole(
    installation: Installation, published: Published, protocol: str
) -> None:
    (record,) = records(uuid.uuid4().hex[:8], range(1))
    big = record.model_copy(update={"person": record.person | {"notes": "catatan " * 60_000}})  # ~480 KB
    await publish(installation, [big])
    got = await read(url(installation, protocol), max(published.offsets.values()) + 1)
    mine = [m for m in got if m.message_id == big.message_id]
    assert len(mine) == 1
    assert len(mine[0].body) > 3 * 131_072  # the broker's largest AMQP frame: there the body came in four
    assert CentralRecordChanged.model_validate_json(mine[0].body) == big


@pytest.mark.parametrize(("stop", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
async def test_following_reads_new_messages_until_stopped_and_saves_the_offset(
    installation: Installation, published: Published, tmp_path: Path, stop: signal.Signals, code: int
) -> None:
    out, offset_file = tmp_path / "feed.jsonl", tmp_path / "feed.offset"
    after = max(published.offsets.values()) + 1  # an offset: nothing published before the attach is missed
    args = ["--follow", "--from", str(after), "--out", str(out), "--offset-file", str(offset_file)]
    # Ctrl-C as a terminal delivers it, also when the tests run in a background job (whose children inherit
    # SIGINT ignored, and a Python started so keeps ignoring it)
    process = await asyncio.create_subprocess_exec(
        *command(installation, *args), cwd=PROJECT_ROOT, stderr=-1, preexec_fn=interruptible
    )
    try:
        new = records(uuid.uuid4().hex[:8], range(100, 103))
        await publish(installation, new)
        deadline = time.monotonic() + 20
        while len(ours(lines(out.read_text()) if out.exists() else [], [r.message_id for r in new])) < 3:
            assert time.monotonic() < deadline, "the new messages never came"
            await asyncio.sleep(0.1)
        process.send_signal(stop)
        _, stderr = await asyncio.wait_for(process.communicate(), 20)
    finally:
        if process.returncode is None:
            process.kill()
    rows = lines(out.read_text())
    assert process.returncode == code
    assert ours(rows, [r.message_id for r in new]) == [r.message_id for r in new]
    assert int(offset_file.read_text()) == rows[-1]["offset"]
    assert f"feed: {len(rows)} messages" in stderr.decode()


async def test_a_upt_user_may_not_read_the_feed(installation: Installation, published: Published) -> None:
    with pytest.raises(aiormq.exceptions.ChannelAccessRefused, match="ACCESS_REFUSED"):
        await read(installation.url_for("upt", UPT), "first")
    with pytest.raises(StreamError, match="access refused: only centre users may read the feed") as refused:
        await read(url(installation, "stream", "upt", UPT), "first")
    assert refused.value.code == 16
    upt = creds.find(installation.credentials, "upt", UPT)
    result = feed(installation, "--user", upt.username, f"--password={upt.password}")
    assert result.returncode == 1
    assert "access refused" in result.stderr
    assert result.stdout == ""


async def test_only_the_consolidator_may_publish_to_the_feed(installation: Installation) -> None:
    for role, unit in (("pusat", "pusat"), ("upt", UPT), ("service", "registry")):
        wire = await StreamWire.connect(url(installation, "stream", role, unit))
        try:
            with pytest.raises(StreamError, match="access refused"):
                await wire.declare_publisher()
        finally:
            await wire.close()

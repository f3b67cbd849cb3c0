"""The central feed over the stream protocol with TLS, live: a throwaway RabbitMQ node started with
docker-compose's broker configuration (deploy/rabbitmq/tls.conf: TLS listeners only, AMQPS and the stream
protocol) and the local CA's certificate (deploy/tls.py). The consolidator's feed publisher writes to the stream
over TLS and the centre's reader replays it, both checking the broker against the CA; a reader that trusts
another CA, and one that speaks the stream protocol without TLS to the TLS port, get nothing."""

from __future__ import annotations

import os
import re
import shutil
import ssl
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import aio_pika
import pytest

from deploy import tls
from deploy.sandbox import free_port
from services.consolidator.feed import read_feed
from services.consolidator.feed_publisher import FeedPublisher
from services.consolidator.stream_wire import FeedMessage, StreamError, stream_url
from shared import db
from shared.contracts import CentralRecordChanged
from shared.settings import PROJECT_ROOT

pytestmark = pytest.mark.integration
RABBITMQ_BIN = Path("/usr/lib/rabbitmq/bin")
ADMIN = "simpul-admin"


@dataclass(frozen=True)
class TlsBroker:
    amqps_url: str  # the administrator, checking the broker against the CA
    stream_port: int
    ca: Path


def broker_configuration(material: tls.Material, amqps: int, stream: int) -> str:
    """docker-compose's tls.conf with this node's files and ports (on the loopback alone)."""
    shipped = (PROJECT_ROOT / "deploy" / "rabbitmq" / "tls.conf").read_text()
    lines = []
    for line in shipped.splitlines():
        line = line.replace("/etc/rabbitmq/tls", str(material.folder))
        line = re.sub(r"^listeners\.ssl\.default = \d+$", f"listeners.ssl.default = 127.0.0.1:{amqps}", line)
        line = re.sub(
            r"^stream\.listeners\.ssl\.default = \d+$",
            f"stream.listeners.ssl.default = 127.0.0.1:{stream}",
            line,
        )
        lines.append(line)
    return "\n".join(
        [*lines, f"default_user = {ADMIN}", f"default_pass = {ADMIN}", "loopback_users = none", ""]
    )


@pytest.fixture
def tls_broker() -> Iterator[TlsBroker]:
    server = RABBITMQ_BIN / "rabbitmq-server"
    if not server.exists() or os.geteuid() != 0 or shutil.which("runuser") is None:
        pytest.skip("needs RabbitMQ's server scripts and root (to start a node as the rabbitmq user)")
    import pwd

    owner = pwd.getpwnam("rabbitmq")
    home = Path(tempfile.mkdtemp(prefix="simpul-rmqtls-"))
    node = f"simpul-tls-{os.getpid()}@localhost"
    amqps, stream, dist = free_port(), free_port(), free_port()
    env = {
        **os.environ, "HOME": owner.pw_dir, "RABBITMQ_NODENAME": node, "RABBITMQ_DIST_PORT": str(dist),
        "RABBITMQ_MNESIA_BASE": str(home / "mnesia"), "RABBITMQ_LOG_BASE": str(home / "log"),
        "RABBITMQ_CONFIG_FILE": str(home / "rabbitmq"), "RABBITMQ_ENABLED_PLUGINS_FILE": str(home / "enabled_plugins"),
        "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
    }  # fmt: skip
    ctl = ["runuser", "-u", "rabbitmq", "--", str(RABBITMQ_BIN / "rabbitmqctl"), "-n", node]
    process: subprocess.Popen[bytes] | None = None
    try:
        material = tls.create(home / "tls")
        (home / "rabbitmq.conf").write_text(broker_configuration(material, amqps, stream))
        (home / "enabled_plugins").write_text("[rabbitmq_stream].\n")
        for path in (home, *home.rglob("*")):
            os.chown(path, owner.pw_uid, owner.pw_gid)  # the node's user alone reads its key (mode 0600)
        with (home / "server.out").open("wb") as out:
            process = subprocess.Popen(
                ["runuser", "-u", "rabbitmq", "--", str(server)], env=env, cwd=home, stdout=out, stderr=out
            )
        deadline = time.monotonic() + 120
        while subprocess.run(
            [*ctl, "await_startup", "--timeout", "5"], env=env, capture_output=True
        ).returncode:
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail("the TLS broker did not start:\n" + (home / "server.out").read_text()[-3000:])
            time.sleep(1)
        yield TlsBroker(
            f"amqps://{ADMIN}:{ADMIN}@localhost:{amqps}/?cafile={material.ca}", stream, material.ca
        )
    finally:
        if process is not None:
            subprocess.run([*ctl, "stop"], env=env, capture_output=True, timeout=120, check=False)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        shutil.rmtree(home, ignore_errors=True)


def changed(n: int) -> db.OutboxRow:
    body = f'{{"message_id": "tls-{n}"}}'.encode()
    return db.OutboxRow(
        n,
        f"tls-{n}",
        "central",
        CentralRecordChanged.ROUTING_KEY,
        body,
        {"schema_version": 1},
        datetime.now(UTC),
    )


async def test_the_central_feed_is_written_and_replayed_over_tls_and_refused_without_the_ca(
    tls_broker: TlsBroker,
) -> None:
    connection = await aio_pika.connect(
        tls_broker.amqps_url
    )  # AMQPS: the compose broker has no plain listener
    async with connection:
        channel = await connection.channel()
        await channel.declare_queue("central.records", durable=True, arguments={"x-queue-type": "stream"})
    feed = stream_url(tls_broker.amqps_url, tls_broker.stream_port)
    assert feed.startswith("rabbitmq-stream+tls://")

    async def over_amqp(row: db.OutboxRow) -> None:
        raise AssertionError(f"{row.message_id} went over AMQP: the stream protocol over TLS did not answer")

    publisher = FeedPublisher(feed, ADMIN)
    try:
        publish = publisher.route(over_amqp)
        for n in range(1, 6):
            await publish(changed(n))
    finally:
        await publisher.close()
    assert publisher.over_stream == 5

    got: list[FeedMessage] = []
    summary = await read_feed(feed, start="first", follow=False, limit=None, idle=3.0, on_message=got.append)
    assert [m.message_id for m in got] == [f"tls-{n}" for n in range(1, 6)]
    assert summary.messages == 5

    other = tls.create(Path(tempfile.mkdtemp(prefix="simpul-otherca-")) / "tls")
    try:
        distrusting = stream_url(
            tls_broker.amqps_url.replace(str(tls_broker.ca), str(other.ca)), tls_broker.stream_port
        )
        with pytest.raises(ssl.SSLCertVerificationError):
            await read_feed(
                distrusting, start="first", follow=False, limit=None, idle=3.0, on_message=got.append
            )
    finally:
        shutil.rmtree(other.folder.parent, ignore_errors=True)
    plain = feed.replace("rabbitmq-stream+tls://", "rabbitmq-stream://")  # the stream protocol in clear
    with pytest.raises(StreamError, match="closed the connection"):
        await read_feed(plain, start="first", follow=False, limit=None, idle=3.0, on_message=got.append)
    assert len(got) == 5  # nothing more came through either

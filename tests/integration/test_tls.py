"""Encryption in transit: with a local CA (deploy/tls.py) the broker accepts AMQPS, the services and the regional
senders speak it (the CA file named in their URL), the broker reports their connections as TLS, a day's parts
are answered through it, and a client that cannot check the broker's certificate is refused."""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
import tempfile
from datetime import datetime
from pathlib import Path

import aio_pika
import aiormq
import pytest

from deploy import credentials as creds
from deploy import tls
from services.registry.app import build_app
from services.registry.config import Settings
from shared.contracts import WIB
from sim import population
from sim.day import run_day
from tests.builders import inmate, submission
from tests.conftest import Installation
from tests.integration.helpers import connections, purge, running
from tests.integration.test_client_example import run_example

pytestmark = pytest.mark.integration
UPTS = ("upt-1102-1", "upt-1171-1")  # used by no other test: its snapshot numbers are its own


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def tls_connections(inst: Installation) -> dict[str, bool]:
    """Each user's connections in the test's vhost, as the broker lists them: encrypted or not."""
    out: dict[str, bool] = {}
    for user, ssl in connections(inst, "user", "ssl"):
        out[user] = out.get(user, True) and ssl == "true"
    return out


async def test_services_and_senders_speak_amqps_with_a_local_ca_and_a_day_is_answered_through_it(
    installation: Installation,
) -> None:
    inst = installation
    if inst.servers.rabbitmqctl[0] != "rabbitmqctl":
        pytest.skip(
            "the broker runs elsewhere (a container): it cannot read this machine's certificate files"
        )
    await purge(inst.admin_url, "registry.sdp", *(f"receipts.{u}" for u in UPTS))
    folder = Path(tempfile.mkdtemp(prefix="simpul-tls-"))  # under /tmp: the broker's user can read it
    port = free_port()
    material = tls.create(folder)
    tls.listen(material, port=port, ctl=inst.servers.rabbitmqctl)
    try:
        tls.listen(material, port=port, ctl=inst.servers.rabbitmqctl)  # listening already: nothing to do
        base = f"amqps://localhost:{port}/?cafile={material.ca}"
        # without the CA, the broker's certificate cannot be checked: refused before any password is sent
        with pytest.raises(aiormq.exceptions.AMQPConnectionError, match="CERTIFICATE_VERIFY_FAILED"):
            await aio_pika.connect(f"amqps://localhost:{port}/", timeout=10)
        # under a name the certificate does not hold, refused too
        with pytest.raises(aiormq.exceptions.AMQPConnectionError, match="CERTIFICATE_VERIFY_FAILED"):
            await aio_pika.connect(f"amqps://{socket.gethostname()}:{port}/?cafile={material.ca}", timeout=10)

        service = creds.find(inst.credentials, "service", "registry")
        settings = inst.settings(
            "registry", Settings, retry_backoff_max=0.05, amqp_url=creds.amqp_url(base, service, inst.vhost)
        )
        units = inst.units.subset(set(UPTS))
        day = datetime.now(WIB).date()
        by_upt = population.generate(units, population.Options(as_of=day, total=400, seed=17, part_size=100))
        async with running(build_app(settings)):
            report = await asyncio.wait_for(
                run_day(
                    units=units, by_upt=by_upt, credentials=inst.credentials, amqp_url=base, vhost=inst.vhost,
                    as_of=day, part_size=100, receipt_timeout=60, progress=False, snapshot=5,
                ),
                120,
            )  # fmt: skip
            seen = await asyncio.to_thread(tls_connections, inst)
            # a regional client in another library (docs/examples/unit_client.py, pika) over the same TLS
            upt = creds.find(inst.credentials, "upt", UPTS[0])
            part = submission([inmate()], upt_id=UPTS[0], as_of=day, snapshot=6)
            (folder / "part.json").write_text(json.dumps(part))
            pika_client = await run_example(
                creds.amqp_url(base, upt, inst.vhost), UPTS[0], folder / "part.json"
            )
        assert pika_client.returncode == 0, pika_client.stderr
        assert json.loads(pika_client.stdout)["in_reply_to"] == part["message_id"]
        assert report.mismatches == []
        assert report.receipts == report.parts == sum(len(population.parts(by_upt[u], 100)) for u in UPTS)
        assert seen.get(service.username) is True  # the registry's connections: every one encrypted
    finally:
        try:
            tls.stop(port=port, ctl=inst.servers.rabbitmqctl)
            with pytest.raises(aiormq.exceptions.AMQPConnectionError):  # the listener is gone again
                await aio_pika.connect(base, timeout=5)
        finally:
            shutil.rmtree(folder, ignore_errors=True)

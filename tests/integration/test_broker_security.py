"""Broker security on the real RabbitMQ: each unit speaks only for itself and reads only its own receipts."""

from __future__ import annotations

import aio_pika
import aiormq
import pytest

from sim.publisher import UnitClient
from tests.builders import inmate, submission
from tests.conftest import Installation
from tests.integration.helpers import purge, queue_depth

pytestmark = pytest.mark.integration
ME, OTHER = "upt-3273-1", "upt-1101-1"


def client(inst: Installation, upt: str = ME) -> UnitClient:
    cred = next(c for c in inst.credentials if c.role == "upt" and c.unit_id == upt)
    return UnitClient(inst.url_for("upt", upt), cred.username, upt)


async def test_a_unit_publishes_under_its_own_key_and_the_message_is_queued(
    installation: Installation,
) -> None:
    await purge(installation.admin_url, "registry.sdp")
    async with client(installation) as me:
        await me.publish_part(submission([inmate()], upt_id=ME))
    assert await queue_depth(installation.admin_url, "registry.sdp") == 1
    await purge(installation.admin_url, "registry.sdp")


async def test_a_unit_cannot_publish_under_another_units_routing_key(installation: Installation) -> None:
    await purge(installation.admin_url, "registry.sdp")
    async with client(installation) as me:
        with pytest.raises(aiormq.exceptions.ChannelAccessRefused, match="access to topic"):
            await me.publish_body(b"{}", message_id="x", routing_key=f"sdp.{OTHER}.submission")
    assert await queue_depth(installation.admin_url, "registry.sdp") == 0


async def test_a_forged_user_id_is_refused_by_the_broker(installation: Installation) -> None:
    async with client(installation) as me:
        with pytest.raises(aiormq.exceptions.ChannelPreconditionFailed, match="user_id property set to"):
            await me.publish_body(b"{}", message_id="x", user_id=f"{installation.namespace}{OTHER}")
    assert await queue_depth(installation.admin_url, "registry.sdp") == 0


async def test_a_unit_cannot_bypass_topic_checks_through_the_default_exchange(
    installation: Installation,
) -> None:
    connection = await aio_pika.connect(installation.url_for("upt", ME))
    try:
        channel = await connection.channel()
        with pytest.raises(aiormq.exceptions.ChannelAccessRefused):
            await channel.default_exchange.publish(aio_pika.Message(b"{}"), routing_key="registry.sdp")
    finally:
        await connection.close()


async def test_a_unit_cannot_declare_anything(installation: Installation) -> None:
    connection = await aio_pika.connect(installation.url_for("upt", ME))
    try:
        channel = await connection.channel()
        with pytest.raises(aiormq.exceptions.ChannelAccessRefused):
            await channel.declare_queue("upt-private-queue")
    finally:
        await connection.close()


async def test_a_unit_reads_its_own_receipts_and_not_another_units(installation: Installation) -> None:
    connection = await aio_pika.connect(installation.url_for("upt", ME))
    try:
        channel = await connection.channel()
        own = await channel.get_queue(f"receipts.{ME}", ensure=False)
        assert await own.get(fail=False) is None  # allowed, and empty
        other = await channel.get_queue(f"receipts.{OTHER}", ensure=False)
        with pytest.raises(aiormq.exceptions.ChannelAccessRefused):
            await other.get(fail=False)
    finally:
        await connection.close()


async def test_a_service_cannot_publish_submissions(installation: Installation) -> None:
    connection = await aio_pika.connect(installation.url_for("service", "dedup"))
    try:
        channel = await connection.channel(publisher_confirms=True)
        ingest = await channel.get_exchange("ingest", ensure=False)
        with pytest.raises(aiormq.exceptions.ChannelAccessRefused):
            await ingest.publish(aio_pika.Message(b"{}"), routing_key=f"sdp.{ME}.submission")
    finally:
        await connection.close()


async def test_a_service_may_only_publish_its_own_events(installation: Installation) -> None:
    connection = await aio_pika.connect(installation.url_for("service", "registry"))
    try:
        channel = await connection.channel(publisher_confirms=True)
        events = await channel.get_exchange("events", ensure=False)
        with pytest.raises(aiormq.exceptions.ChannelAccessRefused):
            await events.publish(aio_pika.Message(b"{}"), routing_key="dedup.verdict.sdp")
    finally:
        await connection.close()

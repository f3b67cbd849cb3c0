"""A regional client written with pika, from the AsyncAPI documents and docs/clients.md alone: a UPT sends
its SDP part, a Dukcapil office an e-KTP packet; each waits for the registry's receipt, and rides out a broker
restart by reconnecting and sending again what was not confirmed (the same message id: the registry answers
it once).

python docs/examples/unit_client.py --url amqp://USER:PASSWORD@HOST:5672/simpul --unit upt-3273-1 part.json
python docs/examples/unit_client.py --url ... --unit dukcapil-3273 packet.json
python docs/examples/unit_client.py --url "amqps://USER:PASSWORD@HOST:5671/simpul?cafile=ca.pem" ...   (TLS)

The JSON file is the message body as the AsyncAPI document of the registry describes it, `message_id`
included. Prints the receipt (JSON) and exits 0 when it came, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import ssl
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import pika
import pika.exceptions


def routing_key(unit: str) -> str:
    """SDP parts: sdp.<upt>.submission; e-KTP packets: ektp.<kab/kota code>.packet."""
    if unit.startswith("dukcapil-"):
        return f"ektp.{unit.removeprefix('dukcapil-')}.packet"
    return f"sdp.{unit}.submission"


def parameters(url: str) -> pika.URLParameters:
    """amqps://...?cafile=ca.pem: TLS, the broker's certificate checked against that CA and its host name (as
    the suite's own clients do); amqp://: plain, for a broker on a trusted network only."""
    parts = urlsplit(url)
    cafile = parse_qs(parts.query).get("cafile", [None])[0]
    params = pika.URLParameters(parts._replace(query="").geturl())
    if parts.scheme == "amqps":
        context = ssl.create_default_context(cafile=cafile)
        params.ssl_options = pika.SSLOptions(context, parts.hostname)
    return params


def send_once(url: str, unit: str, body: dict[str, Any], timeout: float) -> dict[str, Any] | None:
    """One connection: publish (persistent, confirmed, mandatory), then wait for the receipt replying to it."""
    user = unquote(urlsplit(url).username or "")
    connection = pika.BlockingConnection(parameters(url))
    try:
        channel = connection.channel()
        channel.confirm_delivery()  # the broker confirms the part is stored; unroutable raises
        channel.basic_publish(
            exchange="ingest",
            routing_key=routing_key(unit),
            body=json.dumps(body).encode(),
            properties=pika.BasicProperties(
                message_id=body["message_id"],  # the same in the body: the registry checks both
                user_id=user,  # the broker checks it is the connection's own user
                content_type="application/json",
                delivery_mode=pika.DeliveryMode.Persistent,
            ),
            mandatory=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            method, _, payload = channel.basic_get(f"receipts.{unit}", auto_ack=False)
            if method is None:
                connection.sleep(0.2)
                continue
            receipt = json.loads(payload)
            channel.basic_ack(method.delivery_tag)  # every receipt is taken; only ours is returned
            if receipt.get("in_reply_to") == body["message_id"]:
                return dict(receipt)
        return None
    finally:
        if connection.is_open:
            connection.close()


def send(
    url: str, unit: str, body: dict[str, Any], *, timeout: float = 60, attempts: int = 10
) -> dict[str, Any]:
    """Send until the receipt comes: a lost connection (a broker restart) means connect and send again."""
    for attempt in range(1, attempts + 1):
        try:
            receipt = send_once(url, unit, body, timeout)
        except (pika.exceptions.AMQPConnectionError, pika.exceptions.ChannelClosedByBroker) as e:
            if isinstance(e, pika.exceptions.ChannelClosedByBroker) and e.reply_code == 403:
                raise  # refused by the broker (another unit's routing key, a forged user): never retried
            print(f"attempt {attempt}: {type(e).__name__}; sending again", file=sys.stderr)
            time.sleep(min(2**attempt, 30))
            continue
        if receipt is not None:
            return receipt
        print(f"attempt {attempt}: no receipt within {timeout:.0f} s; sending again", file=sys.stderr)
    raise SystemExit(f"no receipt after {attempts} attempts")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--url", required=True, help="amqp://USER:PASSWORD@HOST:5672/VHOST (the unit's own user)"
    )
    parser.add_argument("--unit", required=True, help="upt-... or dukcapil-...")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for the receipt")
    parser.add_argument("body", type=Path, help="the message body, JSON")
    args = parser.parse_args()
    receipt = send(
        args.url, args.unit, json.loads(args.body.read_text(encoding="utf-8")), timeout=args.timeout
    )
    print(json.dumps(receipt, indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())

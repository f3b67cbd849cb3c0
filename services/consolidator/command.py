"""The centre's tool: run a day's consolidation (and follow it), or confirm a person's NIK.

python -m services.consolidator.command --date 2026-12-02 --by "Siti (Ditjenpas)" --reason "harian" [--wait]
python -m services.consolidator.command --link C123 --nik 3273011503850001 --by "Siti" --reason "..."
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import aio_pika

from deploy import credentials as creds
from shared.contracts import ConsolidationRunRequested, Message, PersonLinkRequested

from .domain.runs import run_id_for


async def publish_command(amqp_url: str, user: str, command: Message) -> None:
    """Persistent, confirmed, unroutable raises, as the centre's broker user."""
    connection = await aio_pika.connect(amqp_url, timeout=10)
    try:
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        exchange = await channel.get_exchange("commands", ensure=False)
        await exchange.publish(
            aio_pika.Message(
                command.model_dump_json().encode(),
                message_id=command.message_id,
                user_id=user,
                content_type="application/json",
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                timestamp=command.produced_at,
            ),
            routing_key=command.ROUTING_KEY,
            mandatory=True,
        )
    finally:
        await connection.close()


async def request_run(
    amqp_url: str,
    user: str,
    day: date,
    *,
    requested_by: str,
    reason: str,
    accept: Sequence[str] = (),
    message_id: str | None = None,
) -> str:
    """Publish the command (persistent, confirmed, as the centre's broker user); the run id it starts."""
    command = ConsolidationRunRequested(
        message_id=message_id or str(uuid.uuid4()),
        produced_at=datetime.now(UTC),
        day=day,
        requested_by=requested_by,
        reason=reason,
        accept_shrunken=list(accept),
    )
    await publish_command(amqp_url, user, command)
    return run_id_for(day, "command", command.message_id)


def run_state(api_url: str, username: str, password: str, day: date, run_id: str) -> dict[str, Any] | None:
    """The run as the lookup API lists it (centre login), or None while it is not there yet."""
    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    request = urllib.request.Request(  # noqa: S310 (the centre's own API)
        f"{api_url.rstrip('/')}/runs?day={day.isoformat()}&purpose=follow+consolidation+run",
        headers={"Authorization": f"Basic {token}"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        runs: list[dict[str, Any]] = json.load(response)["runs"]
    return next((r for r in runs if r["run_id"] == run_id), None)


def wait_for(
    api_url: str, username: str, password: str, day: date, run_id: str, timeout: float, *, quiet: bool = False
) -> dict[str, Any]:
    """Poll until the run finished (its last step committed); progress on stderr."""
    deadline, seen = time.monotonic() + timeout, -1
    while time.monotonic() < deadline:
        try:
            run = run_state(api_url, username, password, day, run_id)
        except (urllib.error.URLError, OSError):
            run = None
        if run is not None:
            if run["step"] != seen and not quiet:
                print(f"  {run_id}: step {run['step']}, {run['state']}", file=sys.stderr, flush=True)
                seen = run["step"]
            if run["state"] == "finished":
                return run
        time.sleep(0.5)
    raise TimeoutError(f"run {run_id} did not finish within {timeout:.0f}s")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m services.consolidator.command", description=__doc__)
    p.add_argument("--date", type=date.fromisoformat, help="the day to consolidate")
    p.add_argument("--link", metavar="CENTRAL_ID", help="instead: confirm that this person holds --nik")
    p.add_argument("--nik", help="with --link: the NIK the centre confirms")
    p.add_argument("--by", required=True, help="who runs it (name or staff id), for the audit trail")
    p.add_argument("--reason", required=True, help="why, for the audit trail")
    p.add_argument("--accept", nargs="*", default=[], metavar="UPT", help="accept these UPTs' held snapshots")
    p.add_argument("--amqp-url", default="amqp://127.0.0.1:5672/")
    p.add_argument("--vhost", default="simpul")
    p.add_argument("--credentials", type=Path, default=Path(".run/credentials.csv"))
    p.add_argument("--api-url", default="http://127.0.0.1:8093")
    p.add_argument("--wait", action="store_true", help="follow the run until it finished")
    p.add_argument("--timeout", type=float, default=600)
    args = p.parse_args(argv)
    if (args.date is None) == (args.link is None) or (args.link is not None and args.nik is None):
        p.error("give either --date, or --link with --nik")
    credentials = creds.read(args.credentials)
    broker = creds.find(credentials, "pusat", "pusat")
    url = creds.amqp_url(args.amqp_url, broker, args.vhost)
    if args.link is not None:
        link = PersonLinkRequested(
            message_id=str(uuid.uuid4()), produced_at=datetime.now(UTC), central_id=args.link, nik=args.nik,
            operator=args.by, reason=args.reason,
        )  # fmt: skip
        asyncio.run(publish_command(url, broker.username, link))
        print(
            f"link of {args.link} to the NIK requested (the change appears on the central feed)",
            file=sys.stderr,
        )
        return 0
    run_id = asyncio.run(
        request_run(
            url, broker.username, args.date,
            requested_by=args.by, reason=args.reason, accept=args.accept,
        )
    )  # fmt: skip
    print(f"consolidation of {args.date} requested: run {run_id}", file=sys.stderr)
    if args.wait:
        login = creds.find(credentials, "monitor", "pusat")
        run = wait_for(args.api_url, login.username, login.password, args.date, run_id, args.timeout)
        print(json.dumps(run, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The centre's dead letters: list, show, replay or discard them, every action audited.

python -m deploy.deadletters [--by NAME] list    [filters] [--state kept|replayed|discarded|all]
python -m deploy.deadletters [--by NAME] show    ID [--raw]
python -m deploy.deadletters [--by NAME] replay  (ID... | filters) --why TEXT
python -m deploy.deadletters [--by NAME] discard (ID... | filters) --why TEXT
python -m deploy.deadletters [--by NAME] prune   --older-than DAYS --why TEXT [--include-kept]
filters: --reason CODE --routing-key GLOB --sender USER --since ISO --until ISO --limit N

Every command first takes what waits in the queue `dead.letters` into the store (schema `deadletters` of the
installation's database): a letter is acknowledged to the broker only once its row is committed, so nothing is
lost between the two, and the queue does not grow. The store keeps each letter with why it died (the reason
code, its detail, the service and queue) and where it came from (exchange, routing key, sender, message id).

`replay` publishes a kept letter again to its original exchange and routing key, in its original sender's
name (the operator's broker user may set another user id; nobody else's may), with a new message id derived
from the old one (`replay-...`, header `x-replay-of`), so that the service handles it as new and a repeated
replay of the same letter is still one message. `discard` drops a letter's body and keeps its record.
`prune` is the retention: letters that died more than DAYS ago go, record and body, once replayed or
discarded (and the kept ones too with `--include-kept`). Each
command, `list` and `show` included, writes who (the `--by` name and the OS user), when, which letters and
why to the append-only `deadletters.actions`. The broker user is the installation's `operator` (centre only).
"""

from __future__ import annotations

import argparse
import asyncio
import fnmatch
import getpass
import hashlib
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any

import aio_pika
import aiormq

from deploy import credentials as creds
from shared import messaging
from shared.logging import mask_niks
from shared.runtime import Database

SCHEMA = "deadletters"
BATCH = 500  # letters taken into the store per transaction


@dataclass(frozen=True)
class Filters:
    reason: str | None = None
    routing_key: str | None = None  # a glob: sdp.*.submission
    sender: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    state: str | None = "kept"  # None: every state
    limit: int = 1_000

    def sql(self) -> tuple[str, list[Any]]:
        clauses, values = [], []

        def add(clause: str, value: Any) -> None:
            values.append(value)
            clauses.append(clause.replace("?", f"${len(values)}"))

        if self.reason:
            add("reason = ?", self.reason)
        if self.routing_key:
            like = fnmatch.translate(self.routing_key)  # a regular expression, anchored
            add("original_routing_key ~ ?", like)
        if self.sender:
            add("original_user_id = ?", self.sender)
        if self.since:
            add("dead_at >= ?", self.since)
        if self.until:
            add("dead_at < ?", self.until)
        if self.state:
            add("state = ?", self.state)
        where = " AND ".join(clauses) or "true"
        values.append(self.limit)
        return f"WHERE {where} ORDER BY id LIMIT ${len(values)}", values

    def as_json(self) -> dict[str, Any]:
        return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in vars(self).items() if v}


def database(dsn: str) -> Database:
    return Database(dsn, SCHEMA, resources.files("deploy") / "deadletter_migrations", max_size=2)


def _row(message: aio_pika.abc.AbstractIncomingMessage) -> tuple[Any, ...]:
    h = dict(message.headers or {})

    def text(key: str) -> str | None:
        value = h.get(key)
        return value.decode() if isinstance(value, bytes) else (str(value) if value is not None else None)

    dead_at = text("x-dead-at")
    when = None
    if dead_at:
        try:
            when = datetime.fromisoformat(dead_at)
        except ValueError:
            when = None
    headers = {k: (v.decode(errors="replace") if isinstance(v, bytes) else v) for k, v in h.items()}
    return (
        message.message_id or hashlib.sha256(message.body).hexdigest(),
        text("x-original-message-id"), text("x-original-exchange") or "", text("x-original-routing-key")
        or message.routing_key or "", text("x-original-user-id"), text("x-original-content-type"),
        text("x-dead-reason") or "UNKNOWN", text("x-dead-detail"), text("x-dead-service"), text("x-dead-queue"),
        when, json.loads(json.dumps(headers, default=str)), message.body, len(message.body),
    )  # fmt: skip


async def collect(store: Database, amqp_url: str) -> int:
    """Take every waiting dead letter into the store; a letter is acknowledged once its row is committed."""
    taken = 0
    connection = await aio_pika.connect(amqp_url, timeout=30)
    try:
        channel = await connection.channel()
        queue = await channel.get_queue(messaging.DEAD_LETTERS.name, ensure=False)
        while True:
            batch: list[aio_pika.abc.AbstractIncomingMessage] = []
            while len(batch) < BATCH and (message := await queue.get(no_ack=False, fail=False)) is not None:
                batch.append(message)
            if not batch:
                return taken
            async with store.pool.acquire() as conn, conn.transaction():
                await conn.executemany(
                    "INSERT INTO letters (message_id, original_message_id, original_exchange, original_routing_key, "
                    "original_user_id, content_type, reason, detail, service, queue, dead_at, headers, body, "
                    "body_bytes) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) "
                    "ON CONFLICT (message_id) DO NOTHING",  # a letter delivered again after a crash: once
                    [_row(m) for m in batch],
                )
            await batch[-1].ack(multiple=True)
            taken += len(batch)
    finally:
        await connection.close()


async def audit(
    store: Database, who: str, action: str, ids: Sequence[int], filters: dict[str, Any], why: str | None
) -> None:
    await store.pool.execute(
        "INSERT INTO actions (operator, os_user, action, letters, filters, why) VALUES ($1, $2, $3, $4, $5, $6)",
        who, getpass.getuser(), action, list(ids), filters, why,
    )  # fmt: skip


async def select(store: Database, ids: Sequence[int], filters: Filters) -> list[dict[str, Any]]:
    if ids:
        rows = await store.pool.fetch(
            "SELECT * FROM letters WHERE id = ANY($1::bigint[]) ORDER BY id", list(ids)
        )
    else:
        where, values = filters.sql()
        rows = await store.pool.fetch(f"SELECT * FROM letters {where}", *values)
    return [dict(r) for r in rows]


def replay_id(letter: dict[str, Any]) -> str:
    """The same letter replayed twice is the same message: the service's inbox takes it once."""
    seed = f"{letter['original_message_id'] or letter['message_id']}|{letter['id']}"
    return "replay-" + hashlib.sha256(seed.encode()).hexdigest()[:32]


async def replay(
    store: Database, amqp_url: str, letters: list[dict[str, Any]], who: str
) -> list[tuple[int, str]]:
    """Publish each kept letter where it came from; mark it replayed once the broker confirmed it."""
    done: list[tuple[int, str]] = []
    connection = await aio_pika.connect(amqp_url, timeout=30)
    try:
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        for letter in letters:
            if letter["state"] != "kept" or letter["body"] is None or not letter["original_exchange"]:
                continue
            exchange = await channel.get_exchange(letter["original_exchange"], ensure=False)
            new_id = replay_id(letter)
            await exchange.publish(
                aio_pika.Message(
                    bytes(letter["body"]), message_id=new_id, user_id=letter["original_user_id"] or None,
                    content_type=letter["content_type"] or "application/json",
                    delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                    headers={"x-replay-of": letter["original_message_id"] or letter["message_id"],
                             "x-replay-by": who},
                ),
                routing_key=letter["original_routing_key"], mandatory=True, timeout=30,
            )  # fmt: skip
            await store.pool.execute(
                "UPDATE letters SET state = 'replayed', replayed_as = $2 WHERE id = $1", letter["id"], new_id
            )
            done.append((letter["id"], new_id))
    finally:
        await connection.close()
    return done


async def prune(store: Database, days: int, include_kept: bool) -> list[int]:
    rows = await store.pool.fetch(
        "DELETE FROM letters WHERE dead_at < now() - make_interval(days => $1) AND (state <> 'kept' OR $2) "
        "RETURNING id",
        days, include_kept,
    )  # fmt: skip
    return sorted(r["id"] for r in rows)


async def discard(store: Database, letters: list[dict[str, Any]]) -> list[int]:
    ids = [letter["id"] for letter in letters if letter["state"] == "kept"]
    await store.pool.execute(
        "UPDATE letters SET state = 'discarded', body = NULL WHERE id = ANY($1::bigint[])", ids
    )
    return ids


def table(letters: list[dict[str, Any]]) -> str:
    lines = [f"{'id':>6}  {'dead at':25}  {'reason':28}  {'routing key':34}  {'sender':22}  state"]
    for r in letters:
        when = r["dead_at"].isoformat(timespec="seconds") if r["dead_at"] else "-"
        lines.append(
            f"{r['id']:>6}  {when:25}  {r['reason'][:28]:28}  {r['original_routing_key'][:34]:34}  "
            f"{(r['original_user_id'] or '-')[:22]:22}  {r['state']}"
        )
    return "\n".join(lines)


def describe(letter: dict[str, Any], raw: bool) -> str:
    meta = {
        k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in letter.items() if k not in ("body",)
    }
    body = letter["body"]
    text = "(discarded)" if body is None else bytes(body).decode("utf-8", errors="replace")
    shown = (
        json.dumps(meta, indent=2, default=str, ensure_ascii=False)
        + "\nbody:\n"
        + (text if raw else mask_niks(text))
    )
    return shown


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m deploy.deadletters",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--amqp-url", default=os.environ.get("AMQP_BASE_URL", "amqp://127.0.0.1:5672/"))
    p.add_argument("--vhost", default=os.environ.get("SIMPUL_VHOST", "simpul"))
    p.add_argument("--credentials", type=Path, default=Path(".run/credentials.csv"), help="its operator user")
    p.add_argument(
        "--database-url",
        default=os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/simpul"),
    )
    p.add_argument("--by", default=getpass.getuser(), help="the operator's own name, for the audit")
    sub = p.add_subparsers(dest="command", required=True)
    pruning = sub.add_parser("prune", help="retention: remove letters older than DAYS")
    pruning.add_argument("--older-than", type=int, required=True, metavar="DAYS")
    pruning.add_argument(
        "--include-kept", action="store_true", help="also letters nobody replayed or discarded"
    )
    pruning.add_argument("--why", required=True, help="the reason, recorded with the action")
    for name in ("list", "show", "replay", "discard"):
        c = sub.add_parser(name)
        if name == "show":
            c.add_argument("ids", nargs=1, type=int, metavar="ID")
            c.add_argument("--raw", action="store_true", help="the body as stored (NIKs not masked)")
            continue
        if name != "list":
            c.add_argument("ids", nargs="*", type=int, metavar="ID")
            c.add_argument("--why", required=True, help="the reason, recorded with the action")
        c.add_argument("--reason", help="the dead-letter reason code, e.g. MESSAGE_NOT_JSON")
        c.add_argument("--routing-key", help="a glob, e.g. 'sdp.*.submission'")
        c.add_argument("--sender", help="the original sender's broker user")
        c.add_argument("--since", type=datetime.fromisoformat, help="ISO 8601 time with its UTC offset")
        c.add_argument("--until", type=datetime.fromisoformat)
        c.add_argument("--limit", type=int, default=1_000)
        if name == "list":
            c.add_argument("--state", choices=("kept", "replayed", "discarded", "all"), default="kept")
    return p


async def run(args: argparse.Namespace, amqp_url: str) -> int:
    store = database(args.database_url)
    await store.open()
    try:
        taken = await collect(store, amqp_url)
        if taken:
            await audit(store, args.by, "collect", [], {"taken": taken}, None)
            print(
                f"took {taken} dead letters from {messaging.DEAD_LETTERS.name} into the store",
                file=sys.stderr,
            )
        if args.command == "show":
            letters = await select(store, args.ids, Filters())
            await audit(store, args.by, "show", args.ids, {}, None)
            if not letters:
                print(f"no dead letter {args.ids[0]}", file=sys.stderr)
                return 1
            print(describe(letters[0], args.raw))
            return 0
        if args.command == "prune":
            if args.older_than < 0:
                print("--older-than: a number of days, 0 or more", file=sys.stderr)
                return 2
            gone = await prune(store, args.older_than, args.include_kept)
            filters_ = {"older_than_days": args.older_than, "include_kept": args.include_kept}
            await audit(store, args.by, "prune", gone, filters_, args.why)
            print(f"{len(gone)} letters removed (dead more than {args.older_than} days ago)", file=sys.stderr)
            return 0
        state = getattr(args, "state", "kept")
        filters = Filters(args.reason, args.routing_key, args.sender, args.since, args.until,
                          None if state == "all" else state, args.limit)  # fmt: skip
        ids = getattr(args, "ids", [])
        if args.command != "list" and not ids and filters == Filters(limit=args.limit):
            print("name the letters (ids) or filter them (--reason, --routing-key, ...)", file=sys.stderr)
            return 2
        letters = await select(store, ids, filters)
        if args.command == "list":
            await audit(store, args.by, "list", [r["id"] for r in letters], filters.as_json(), None)
            print(table(letters))
            print(f"{len(letters)} letters", file=sys.stderr)
        elif args.command == "replay":
            done = await replay(store, amqp_url, letters, args.by)
            await audit(store, args.by, "replay", [i for i, _ in done], filters.as_json(), args.why)
            for letter_id, new_id in done:
                print(f"{letter_id} replayed as {new_id}")
            print(f"{len(done)} of {len(letters)} letters replayed", file=sys.stderr)
        else:
            gone = await discard(store, letters)
            await audit(store, args.by, "discard", gone, filters.as_json(), args.why)
            print(f"{len(gone)} of {len(letters)} letters discarded", file=sys.stderr)
        return 0
    finally:
        await store.close()


def main(argv: list[str] | None = None) -> int:
    cli = parser()
    args = cli.parse_args(argv)
    try:
        operator = creds.find(creds.read(args.credentials), "operator", "pusat")
    except (KeyError, OSError) as e:
        cli.error(f"no operator user in {args.credentials} (provision again): {e}")
    amqp_url = creds.amqp_url(args.amqp_url, operator, args.vhost)
    try:
        return asyncio.run(run(args, amqp_url))
    except (aiormq.exceptions.AMQPError, OSError) as e:
        print(f"deadletters: {type(e).__name__}: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())

"""The central feed's reader: replays or follows the stream `central.records` as JSON lines (centre users only)."""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import signal
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

import aio_pika
import aiormq
import orjson
from aio_pika.abc import AbstractConnection, AbstractIncomingMessage

from deploy import credentials as creds
from shared.logging import mask_niks
from shared.messaging import CENTRAL_RECORDS

Start = str | int | datetime  # "first" | "last" | "next", an offset, or a point in time
QUIET_FLUSH = 0.2  # seconds without a delivery after which the batch so far is acknowledged and saved


@dataclass(frozen=True)
class FeedMessage:
    offset: int
    timestamp: datetime | None  # the publisher's AMQP timestamp (whole seconds), when it set one
    message_id: str | None
    body: bytes


@dataclass(frozen=True)
class FeedSummary:
    messages: int
    first_offset: int | None
    last_offset: int | None
    seconds: float  # from the start of consuming to the last message handled (the idle wait is not counted)
    notices: tuple[str, ...] = ()

    @property
    def rate(self) -> float:
        return self.messages / self.seconds if self.seconds > 0 else 0.0


def say(text: str) -> None:
    """Everything this tool tells its user goes to stderr, masked: the bodies on stdout are the only NIKs."""
    print(mask_niks(text), file=sys.stderr, flush=True)


def parse_start(text: str) -> Start:
    if text in ("first", "last", "next"):
        return text
    if text.isascii() and text.isdigit():
        return int(text)
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"--from: first, last, next, an offset or an ISO 8601 time, not {text!r}") from None
    if when.tzinfo is None:
        raise ValueError(f"--from: give the time with its UTC offset, e.g. {text}+07:00 or {text}Z")
    return when


def resolve_start(from_text: str | None, saved: int | None) -> Start:
    """An explicit --from wins; else resume after the saved offset; else replay from the beginning."""
    if from_text is not None:
        return parse_start(from_text)
    return saved + 1 if saved is not None else "first"


def offset_argument(start: Start) -> str | int | datetime:
    """The value of `x-stream-offset`. The broker takes times in whole seconds, so a time is rounded down: a
    replay may repeat the messages of the second before, never skip those just after."""
    if isinstance(start, datetime):
        return start.astimezone(UTC).replace(microsecond=0)
    return start


def read_offset(path: Path) -> int | None:
    try:
        text = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    if not (text.isascii() and text.isdigit()):
        raise ValueError(f"{path}: not an offset: {text[:40]!r}")
    return int(text)


def write_offset(path: Path, offset: int) -> None:
    """Temp file and rename: an interrupted save leaves the previous offset, never half a number."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(f"{offset}\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def json_line(message: FeedMessage) -> bytes:
    record: dict[str, Any] = {
        "offset": message.offset,
        "timestamp": message.timestamp.isoformat() if message.timestamp else None,
        "message_id": message.message_id,
    }
    try:
        record["body"] = orjson.loads(message.body)
    except orjson.JSONDecodeError:  # kept, not dropped: the offset must still move past it
        record["body_base64"] = base64.b64encode(message.body).decode()
    return orjson.dumps(record) + b"\n"


def summary_line(s: FeedSummary) -> str:
    offsets = f"offsets {s.first_offset}..{s.last_offset}" if s.messages else "no offsets"
    return f"feed: {s.messages} messages, {offsets}, {s.seconds:.1f} s, {s.rate:.0f} records/s"


def _feed_message(m: AbstractIncomingMessage) -> FeedMessage:
    offset = (m.headers or {}).get("x-stream-offset")
    if not isinstance(offset, int):
        raise RuntimeError(f"a delivery of {CENTRAL_RECORDS.name} without x-stream-offset: is it a stream?")
    return FeedMessage(offset, m.timestamp, m.message_id, m.body)


async def _peek_first(connection: AbstractConnection, wait: float) -> FeedMessage | None:
    """The stream's first message, to tell a replay that starts before the stream began."""
    channel = await connection.channel()
    try:
        await channel.set_qos(prefetch_count=1)
        got: asyncio.Future[FeedMessage] = asyncio.get_running_loop().create_future()

        async def take(m: AbstractIncomingMessage) -> None:
            if not got.done():
                got.set_result(_feed_message(m))

        queue = await channel.get_queue(CENTRAL_RECORDS.name, ensure=False)
        await queue.consume(take, arguments={"x-stream-offset": "first"})
        try:
            return await asyncio.wait_for(got, wait)
        except TimeoutError:
            return None  # an empty stream
    finally:
        await channel.close()


def _first_notice(start: Start, offset: int, first: FeedMessage | None) -> str | None:
    if isinstance(start, datetime) and first is not None and offset == first.offset:
        when = first.timestamp.isoformat() if first.timestamp else "an unknown time"
        return (
            f"the stream begins later than {start.isoformat()}: its first message (offset {offset}) is from "
            f"{when}; replaying from the first message"
        )
    if isinstance(start, int) and offset > start:
        return f"offset {start} is no longer in the stream (retention); replaying from offset {offset}"
    return None


async def read_feed(
    url: str,
    *,
    start: Start,
    follow: bool,
    limit: int | None,
    idle: float,
    on_message: Callable[[FeedMessage], Awaitable[None] | None],
    on_batch: Callable[[int], Awaitable[None] | None] | None = None,
    batch_size: int = 1_000,
    prefetch: int = 1_000,
    notice: Callable[[str], None] = say,
) -> FeedSummary:
    """Read `central.records` from `start`, in offset order, until the end (`idle` seconds without a delivery),
    `limit` messages, or for ever with `follow`. `on_batch(last offset)` follows each batch handled and
    acknowledged: every `batch_size` messages and whenever the stream goes quiet."""
    notices: list[str] = []
    connection = await aio_pika.connect(url)
    try:
        first = await _peek_first(connection, idle) if isinstance(start, datetime) else None
        channel = await connection.channel()
        await channel.set_qos(prefetch_count=prefetch)  # a stream consumer must have a prefetch
        inbox: asyncio.Queue[AbstractIncomingMessage | BaseException] = asyncio.Queue()
        channel.close_callbacks.add(lambda _, exc: inbox.put_nowait(exc or ConnectionError("channel closed")))

        async def deliver(m: AbstractIncomingMessage) -> None:
            inbox.put_nowait(m)

        queue = await channel.get_queue(CENTRAL_RECORDS.name, ensure=False)
        began = last_at = time.monotonic()
        await queue.consume(deliver, arguments={"x-stream-offset": offset_argument(start)})
        count, first_offset, last = 0, None, None
        unacked = unsaved = 0

        async def flush() -> None:
            nonlocal unacked, unsaved
            if last is not None and unacked:
                await last[0].ack(multiple=True)  # acknowledging returns the stream's credit
            if on_batch is not None and last is not None and unsaved:
                result = on_batch(last[1].offset)
                if result is not None:
                    await result
            unacked = unsaved = 0

        while limit is None or count < limit:
            wait = QUIET_FLUSH if unsaved else None if follow else max(0.0, last_at + idle - time.monotonic())
            try:
                item = await asyncio.wait_for(inbox.get(), wait)
            except TimeoutError:
                if unsaved:
                    await flush()
                    continue
                break
            if isinstance(item, BaseException):
                raise item
            message = _feed_message(item)
            if isinstance(start, int) and message.offset < start:  # the rest of the chunk before `start`
                await item.ack()
                continue
            if first_offset is None:
                first_offset = message.offset
                if text := _first_notice(start, message.offset, first):
                    notices.append(text)
                    notice(text)
            result = on_message(message)
            if result is not None:
                await result
            count, last, last_at = count + 1, (item, message), time.monotonic()
            unacked, unsaved = unacked + 1, unsaved + 1
            if unsaved >= batch_size:
                await flush()
            elif unacked >= max(1, prefetch // 4):
                await item.ack(multiple=True)
                unacked = 0
        await flush()
        seconds = (last_at if count else time.monotonic()) - began
        return FeedSummary(count, first_offset, last[1].offset if last else None, seconds, tuple(notices))
    finally:
        await connection.close()


@dataclass
class _Tally:
    """What the command line wrote out: saved and summarised even when the read is interrupted."""

    out: BinaryIO
    offset_file: Path | None
    every: int
    quiet: bool
    messages: int = 0
    first: int | None = None
    last: int | None = None
    began: float = field(default_factory=time.monotonic)
    last_at: float = 0.0

    def on_message(self, message: FeedMessage) -> None:
        self.out.write(json_line(message))
        self.messages, self.last, self.last_at = self.messages + 1, message.offset, time.monotonic()
        self.first = message.offset if self.first is None else self.first
        if not self.quiet and self.messages % self.every == 0:
            say(f"feed: {self.messages} messages, offset {self.last}, {self.summary().rate:.0f} records/s")

    def save(self, *_: object) -> None:
        self.out.flush()  # written out before the offset file says so
        if self.offset_file is not None and self.last is not None:
            write_offset(self.offset_file, self.last)

    def summary(self) -> FeedSummary:
        return FeedSummary(self.messages, self.first, self.last, max(0.0, self.last_at - self.began))


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m services.consolidator.feed", description=__doc__)
    p.add_argument(
        "--amqp-url", default="amqp://127.0.0.1:5672/", help="the broker (user and vhost set below)"
    )
    p.add_argument("--vhost", default="simpul")
    p.add_argument("--credentials", type=Path, default=Path(".run/credentials.csv"), help="its pusat user")
    p.add_argument("--user", help="another centre broker user instead of the credentials file's")
    p.add_argument("--password", default=os.environ.get("FEED_PASSWORD"), help="default: $FEED_PASSWORD")
    p.add_argument(
        "--from",
        dest="start",
        metavar="first|last|next|TIME|OFFSET",
        help="first message, last chunk, new messages only, an ISO 8601 time with its UTC offset (whole "
        "seconds) or an offset; default: after the offset file's offset, else first",
    )
    p.add_argument("--offset-file", type=Path, help="keeps the last offset written out, to resume from")
    p.add_argument("--follow", action="store_true", help="keep reading new messages until stopped")
    p.add_argument("--idle", type=float, default=2.0, help="without --follow: seconds of quiet that end it")
    p.add_argument("--limit", type=int, help="stop after this many messages")
    p.add_argument("--out", default="-", help="JSON lines appended to this file, or - for stdout")
    p.add_argument("--progress-every", type=int, default=10_000, metavar="N")
    p.add_argument("--quiet", action="store_true", help="no progress lines (notices and the summary remain)")
    return p


def broker_url(args: argparse.Namespace) -> str:
    if args.user:
        if args.password is None:
            raise ValueError("--user needs --password (or FEED_PASSWORD)")
        credential = creds.Credential("pusat", "pusat", args.user, args.password)
    else:
        credential = creds.find(creds.read(args.credentials), "pusat", "pusat")
    return creds.amqp_url(args.amqp_url, credential, args.vhost)


async def _run(args: argparse.Namespace, url: str, start: Start, out: BinaryIO) -> None:
    task = asyncio.current_task()
    assert task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    tally = _Tally(out, args.offset_file, args.progress_every, args.quiet)
    try:
        await read_feed(
            url,
            start=start,
            follow=args.follow,
            limit=args.limit,
            idle=args.idle,
            on_message=tally.on_message,
            on_batch=tally.save,
        )
    finally:  # on Ctrl-C and SIGTERM too: what was written out is saved
        tally.save()
        say(summary_line(tally.summary()))


def main(argv: list[str] | None = None) -> int:
    cli = parser()
    args = cli.parse_args(argv)
    if (args.limit is not None and args.limit < 1) or args.idle <= 0 or args.progress_every < 1:
        cli.error("--limit, --idle and --progress-every must be positive")
    try:
        start = resolve_start(args.start, read_offset(args.offset_file) if args.offset_file else None)
        url = broker_url(args)
    except (ValueError, KeyError) as e:
        cli.error(str(e).strip("'\""))
    try:
        with open(args.out, "ab") if args.out != "-" else nullcontext(sys.stdout.buffer) as out:
            asyncio.run(_run(args, url, start, out))
    except KeyboardInterrupt:
        return 130
    except asyncio.CancelledError:
        return 143  # SIGTERM
    except (aiormq.exceptions.AMQPError, OSError) as e:
        say(f"feed: {type(e).__name__}: {e}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

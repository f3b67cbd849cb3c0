"""The central feed's reader: replays or follows the stream `central.records` as JSON lines (centre users only)."""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import signal
import struct
import sys
import tempfile
import time
from collections import deque
from collections.abc import Awaitable, Callable
from contextlib import nullcontext, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO, Protocol, TypeVar
from urllib.parse import unquote, urlsplit

import aiormq
import orjson
import pamqp.frame
from aiormq import spec

from deploy import credentials as creds
from shared.logging import mask_niks
from shared.messaging import CENTRAL_RECORDS

from .stream_wire import SCHEMES, Deliveries, StreamError, StreamWire, stream_url
from .stream_wire import FeedMessage as FeedMessage  # where the readers of the feed find it

Start = str | int | datetime  # "first" | "last" | "next", an offset, or a point in time
QUIET_FLUSH = 0.2  # seconds without a delivery after which the batch so far is acknowledged and saved
T = TypeVar("T")


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
    """One line: offset, time, id and the body. A JSON body is parsed only to check it and written through as
    sent, unless it spreads over lines; a body that is not JSON is kept as base64, not dropped: the offset
    must still move past it."""
    head = orjson.dumps(
        {
            "offset": message.offset,
            "timestamp": message.timestamp.isoformat() if message.timestamp else None,
            "message_id": message.message_id,
        }
    )[:-1]
    body = message.body
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        return head + b',"body_base64":"' + base64.b64encode(body) + b'"}\n'
    if b"\n" in body or b"\r" in body:
        body = orjson.dumps(parsed)
    return head + b',"body":' + body + b"}\n"


def summary_line(s: FeedSummary) -> str:
    offsets = f"offsets {s.first_offset}..{s.last_offset}" if s.messages else "no offsets"
    return f"feed: {s.messages} messages, {offsets}, {s.seconds:.1f} s, {s.rate:.0f} records/s"


# --- the wire ---------------------------------------------------------------------------------------------
# A replay is hundreds of thousands of small deliveries. aio-pika and aiormq build objects for every frame
# and a task for every delivery: the reader spent twelve times the CPU per message it spends now (see
# bench/feed_replay.py) and was the limit of a replay. So this reader speaks the few AMQP 0-9-1 methods it
# needs itself: deliveries are parsed in place as the bytes arrive; every other frame (the handshake, the
# closes) goes through pamqp, and the broker's refusals raise aiormq's exceptions, as before.

_FRAME = struct.Struct(">BHI")  # type, channel, payload size; the payload is followed by FRAME_END
_SIZE_FLAGS = struct.Struct(">QH")  # a content header's body size and property flags
_U32, _U64 = struct.Struct(">I"), struct.Struct(">Q")
_FRAME_END, _DELIVER = 0xCE, b"\x00\x3c\x00\x3c"  # Basic.Deliver: class 60, method 60
_HEARTBEAT = b"\x08\x00\x00\x00\x00\x00\x00\xce"
_TABLE_FIXED = {
    b: n
    for n, kinds in ((0, b"V"), (1, b"tbB"), (2, b"su"), (4, b"Iif"), (5, b"D"), (8, b"lLdT"))
    for b in kinds
}  # field-table value sizes; the others (S, A, F, x) begin with their length
_INTEGERS = {ord(k): struct.Struct(f">{f}") for k, f in zip("bBsuIilL", "bBhHiIqq", strict=True)}
_OFFSET_KEY = b"x-stream-offset"


def _stream_offset(buf: bytearray, pos: int, end: int) -> int | None:
    """`x-stream-offset` from the field table in buf[pos:end], without decoding the other values."""
    while pos < end:
        n = buf[pos]
        kind = buf[pos + 1 + n]
        if n == len(_OFFSET_KEY) and kind in _INTEGERS and buf[pos + 1 : pos + 1 + n] == _OFFSET_KEY:
            return int(_INTEGERS[kind].unpack_from(buf, pos + 2 + n)[0])
        pos += 2 + n
        size = _TABLE_FIXED.get(kind)
        pos += 4 + _U32.unpack_from(buf, pos)[0] if size is None else size
    return None


class _Wire(Deliveries):
    """One connection, one channel, one stream consumer over AMQP 0-9-1 (tags: the delivery tags)."""

    def __init__(self) -> None:
        super().__init__()
        self.replies: asyncio.Queue[Any] = asyncio.Queue()  # control frames, and the error that ends it
        self._tag, self._size = 0, 0  # of the delivery being read
        self._pending: tuple[int, datetime | None, str | None] | None = None
        self._parts: list[bytes] = []
        self._second, self._time = -1, datetime.fromtimestamp(0, UTC)

    @classmethod
    async def open(cls, url: str, start: str | int | datetime, prefetch: int) -> _Wire:
        u = urlsplit(url)
        loop = asyncio.get_running_loop()
        tls = u.scheme == "amqps"
        port = u.port or (5671 if tls else 5672)
        _, wire = await loop.create_connection(cls, u.hostname or "localhost", port, ssl=tls or None)
        try:
            async with asyncio.timeout(30):
                await wire._handshake(unquote(u.username or "guest"), unquote(u.password or "guest"),
                                      unquote(u.path[1:]) or "/")  # fmt: skip
                await wire.call(spec.Channel.Open(), spec.Channel.OpenOk, 1)
                await wire.call(spec.Basic.Qos(prefetch_count=prefetch), spec.Basic.QosOk, 1)
                consume = spec.Basic.Consume(queue=CENTRAL_RECORDS.name, arguments={"x-stream-offset": start})
                await wire.call(consume, spec.Basic.ConsumeOk, 1)
        except BaseException:
            wire.abort()
            raise
        return wire

    async def _handshake(self, user: str, password: str, vhost: str) -> None:
        assert self.transport is not None
        self.transport.write(b"AMQP\x00\x00\x09\x01")
        await self.reply(spec.Connection.Start)
        properties: dict[str, Any] = {
            "product": "simpul central feed",
            "connection_name": "central feed reader",
            "capabilities": {"authentication_failure_close": True, "consumer_cancel_notify": True},
        }
        ok = spec.Connection.StartOk(properties, "PLAIN", f"\0{user}\0{password}")  # fmt: skip
        tune = await self.call(ok, spec.Connection.Tune, 0)
        heartbeat = min(tune.heartbeat or 60, 60)
        self.send(spec.Connection.TuneOk(tune.channel_max, tune.frame_max, heartbeat), 0)
        await self.call(spec.Connection.Open(vhost), spec.Connection.OpenOk, 0)
        self._beat(heartbeat)

    def send(self, frame: Any, channel: int) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(pamqp.frame.marshal(frame, channel))

    async def reply(self, kind: type[T]) -> T:
        got = await self.replies.get()
        if isinstance(got, BaseException):
            raise got
        if not isinstance(got, kind):
            raise aiormq.exceptions.InvalidFrameError(f"expected {kind.__name__}, got {got!r}")
        return got

    async def call(self, frame: Any, kind: type[T], channel: int) -> T:
        self.send(frame, channel)
        return await self.reply(kind)

    def ack(self, tag: int) -> None:
        """Acknowledges the delivery `tag` and every one before it: the stream's credit comes back."""
        self.send(spec.Basic.Ack(tag, multiple=True), 1)

    def _fail(self, error: BaseException) -> None:
        if self.error is None:
            self.error = error
            self.replies.put_nowait(error)
            self._wake()

    heartbeat_frame = _HEARTBEAT

    def _lost(self, what: str) -> BaseException:
        return aiormq.exceptions.AMQPConnectionError(what)

    async def close(self) -> None:
        self._stop_beating()
        if self.transport is not None and not self.transport.is_closing() and self.error is None:
            self.send(spec.Connection.Close(200, "done", 0, 0), 0)
            with suppress(TimeoutError, aiormq.exceptions.AMQPError, ConnectionError):
                async with asyncio.timeout(5):
                    await self.reply(spec.Connection.CloseOk)
        self.abort()
        await self.closed

    def data_received(self, data: bytes) -> None:
        self.received = time.monotonic()
        buf = self.buffer
        buf += data
        pos, end = 0, len(buf)
        try:
            while end - pos > 7:
                kind, _, size = _FRAME.unpack_from(buf, pos)
                stop = pos + 7 + size
                if stop >= end:
                    break
                if buf[stop] != _FRAME_END:
                    raise aiormq.exceptions.InvalidFrameError("a frame without its end marker")
                if kind == 3:  # a body frame
                    self._parts.append(bytes(buf[pos + 7 : stop]))
                    self._size -= size
                    if self._size <= 0:
                        self._deliver()
                elif kind == 2:  # a content header
                    self._header(buf, pos + 7)
                elif kind == 1:
                    if buf[pos + 7 : pos + 11] == _DELIVER:  # only the delivery tag is needed
                        self._tag = _U64.unpack_from(buf, pos + 12 + buf[pos + 11])[0]
                    else:
                        self._control(pamqp.frame.unmarshal(bytes(buf[pos : stop + 1]))[2])
                pos = stop + 1  # kind 8, a heartbeat: nothing to do but having received it
        except Exception as e:  # the connection cannot be read on from here
            self._fail(e)
            self.abort()
        del buf[:pos]

    def _header(self, buf: bytearray, pos: int) -> None:
        """The properties the feed gives: the offset from the headers, the message id and the timestamp."""
        self._size, flags = _SIZE_FLAGS.unpack_from(buf, pos + 4)
        pos += 14
        offset = message_id = timestamp = None
        if flags & 0x8000:  # content type
            pos += 1 + buf[pos]
        if flags & 0x4000:  # content encoding
            pos += 1 + buf[pos]
        if flags & 0x2000:  # headers
            end = pos + 4 + _U32.unpack_from(buf, pos)[0]
            offset = _stream_offset(buf, pos + 4, end)
            pos = end
        pos += (flags & 0x1000 > 0) + (flags & 0x0800 > 0)  # delivery mode, priority
        for bit in (0x0400, 0x0200, 0x0100):  # correlation id, reply to, expiration
            if flags & bit:
                pos += 1 + buf[pos]
        if flags & 0x0080:
            message_id = buf[pos + 1 : pos + 1 + buf[pos]].decode()
            pos += 1 + buf[pos]
        if flags & 0x0040:
            second = _U64.unpack_from(buf, pos)[0]
            if second != self._second:  # consecutive messages mostly share their second
                self._second, self._time = second, datetime.fromtimestamp(second, UTC)
            timestamp = self._time
        if offset is None:
            raise RuntimeError(
                f"a delivery of {CENTRAL_RECORDS.name} without x-stream-offset: is it a stream?"
            )
        self._pending, self._parts = (offset, timestamp, message_id), []
        if self._size == 0:
            self._deliver()

    def _deliver(self) -> None:
        assert self._pending is not None
        body = self._parts[0] if len(self._parts) == 1 else b"".join(self._parts)
        self.items.append((self._tag, FeedMessage(*self._pending, body)))
        self._wake()

    def _control(self, frame: Any) -> None:
        if isinstance(frame, spec.Connection.Close):
            self.send(spec.Connection.CloseOk(), 0)
            self._fail(aiormq.connection.exception_by_code(frame))
        elif isinstance(frame, spec.Channel.Close):
            self.send(spec.Channel.CloseOk(), 1)
            self._fail(aiormq.channel.exception_by_code(frame))
        elif isinstance(frame, spec.Basic.Cancel):
            self._fail(aiormq.exceptions.ChannelClosed(None, f"{CENTRAL_RECORDS.name}: consumer cancelled"))
        elif not isinstance(frame, (spec.Connection.Blocked, spec.Connection.Unblocked)):
            self.replies.put_nowait(frame)


class Wire(Protocol):
    """What read_feed needs of a connection: the AMQP 0-9-1 reader above, or stream_wire.StreamWire."""

    items: deque[tuple[int, FeedMessage]]

    async def wait(self, timeout: float | None) -> bool: ...
    def ack(self, tag: int) -> None: ...
    async def close(self) -> None: ...


async def connect(url: str, start: str | int | datetime, prefetch: int) -> Wire:
    """A consumer of `central.records` from `start`: over the stream protocol for a `rabbitmq-stream://`
    URL (many times cheaper for the broker), else over AMQP 0-9-1."""
    if urlsplit(url).scheme in SCHEMES:
        return await StreamWire.open(url, start, prefetch)
    return await _Wire.open(url, start, prefetch)


async def _peek_first(url: str, wait: float) -> FeedMessage | None:
    """The stream's first message, to tell a replay that starts before the stream began."""
    wire = await connect(url, "first", 1)
    try:
        return wire.items[0][1] if await wire.wait(wait) else None  # None: an empty stream
    finally:
        await wire.close()


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
    fallback_url: str | None = None,
) -> FeedSummary:
    """Read `central.records` from `start`, in offset order, until the end (`idle` seconds without a delivery),
    `limit` messages, or for ever with `follow`. `on_batch(last offset)` follows each batch handled and
    acknowledged: every `batch_size` messages and whenever the stream goes quiet. A larger `prefetch` is no
    faster: RabbitMQ 3.10 gathers a whole credit before its first delivery (10,000 took 4 s, past `idle`).
    A stream-protocol `url` whose port refuses the connection (the plugin is off) falls back to `fallback_url`
    with a notice."""
    notices: list[str] = []
    try:
        first = await _peek_first(url, idle) if isinstance(start, datetime) else None
        wire = await connect(url, offset_argument(start), prefetch)
    except ConnectionRefusedError:
        if fallback_url is None:
            raise
        why = (
            f"{urlsplit(url).hostname}:{urlsplit(url).port}: no stream protocol there (is the rabbitmq_stream "
            "plugin enabled?); reading over AMQP 0-9-1 instead, which is slower"
        )
        notices.append(why)
        notice(why)
        url = fallback_url
        first = await _peek_first(url, idle) if isinstance(start, datetime) else None
        wire = await connect(url, offset_argument(start), prefetch)
    began = last_at = time.monotonic()
    try:
        count, first_offset, last_offset = 0, None, None
        tag = unacked = unsaved = 0  # the last delivery taken: acknowledging it acknowledges all before
        ack_every = max(1, prefetch // 4)  # credit goes back well before the broker runs out of it

        async def flush() -> None:
            nonlocal unacked, unsaved
            if unacked:
                wire.ack(tag)
            if on_batch is not None and last_offset is not None and unsaved:
                result = on_batch(last_offset)
                if result is not None:
                    await result
            unacked = unsaved = 0

        items = wire.items
        while limit is None or count < limit:
            wait = QUIET_FLUSH if unsaved else None if follow else max(0.0, last_at + idle - time.monotonic())
            if not await wire.wait(wait):
                if unsaved or unacked:
                    await flush()
                    continue
                break
            while items and (limit is None or count < limit):
                tag, message = items.popleft()
                unacked += 1
                if first_offset is None:
                    if isinstance(start, int) and message.offset < start:  # the rest of the chunk before it
                        continue
                    first_offset = message.offset
                    if text := _first_notice(start, message.offset, first):
                        notices.append(text)
                        notice(text)
                result = on_message(message)
                if result is not None:
                    await result
                count, last_offset, unsaved = count + 1, message.offset, unsaved + 1
                if unsaved >= batch_size:
                    await flush()
                elif unacked >= ack_every:
                    wire.ack(tag)
                    unacked = 0
            last_at = time.monotonic()
        await flush()
        seconds = (last_at if count else time.monotonic()) - began
        return FeedSummary(count, first_offset, last_offset, seconds, tuple(notices))
    finally:
        await wire.close()


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
    p.add_argument(
        "--stream-port",
        type=int,
        default=int(os.environ.get("STREAM_PORT", "5552")),
        help="the broker's stream-protocol port (rabbitmq_stream plugin), much cheaper for the broker to "
        "replay from; 0 = AMQP 0-9-1 only. Falls back to AMQP when the port refuses. Default: $STREAM_PORT "
        "or 5552",
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


async def _run(args: argparse.Namespace, amqp: str, start: Start, out: BinaryIO) -> None:
    task = asyncio.current_task()
    assert task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    tally = _Tally(out, args.offset_file, args.progress_every, args.quiet)
    url = stream_url(amqp, args.stream_port) if args.stream_port else amqp
    try:
        await read_feed(
            url,
            fallback_url=amqp,
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
    if not 0 <= args.stream_port <= 65535:
        cli.error("--stream-port: 0 to 65535")
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
    except (aiormq.exceptions.AMQPError, OSError, StreamError) as e:
        say(f"feed: {type(e).__name__}: {e}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

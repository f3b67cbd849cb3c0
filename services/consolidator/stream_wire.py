"""The central feed read over RabbitMQ's stream protocol (the `rabbitmq_stream` plugin, port 5552).

Over AMQP 0-9-1 the broker turns every stored message back into a delivery of its own, and a replay of the
national day spent about 120 µs of broker CPU per record (bench/feed_replay.py): the broker was the limit.
The stream protocol hands out whole chunks of the log as they lie on disk; the reader splits them itself.
This module speaks the few commands the feed needs (peer properties, SASL PLAIN, tune, open, subscribe,
credit, declare publisher, publish, heartbeat, close). It reads each entry's AMQP 1.0 message only as far as
the feed needs: the message id and creation time from its properties, and its data section, the body.

The consolidator publishes the feed over the same protocol (StreamWire.publish): the messages of one relay
batch travel in one frame and the broker writes them as a few large chunks, where AMQP publishes of the same
messages became chunks of four or five. A chunk is what the broker hands a reader in one piece, so large
chunks are what makes a replay cheap for the broker.

URLs: `rabbitmq-stream://user:password@host:5552/vhost`, or `rabbitmq-stream+tls://...:5551/vhost`.
"""

from __future__ import annotations

import asyncio
import ssl
import struct
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final, cast
from urllib.parse import parse_qs, unquote, urlsplit

from shared.messaging import CENTRAL_RECORDS

SCHEMES: Final = ("rabbitmq-stream", "rabbitmq-stream+tls")
PORTS: Final = {"rabbitmq-stream": 5552, "rabbitmq-stream+tls": 5551}
CREDIT: Final = 4  # chunks the broker may send ahead of what the reader has taken

_SIZE, _U16, _U32, _U64 = struct.Struct(">I"), struct.Struct(">H"), struct.Struct(">I"), struct.Struct(">Q")
_HEAD = struct.Struct(">HH")  # key, version
_CHUNK = struct.Struct(
    ">bbHIqQQiII"
)  # magic, type, entries, records, timestamp, epoch, first offset, crc, ...
_CHUNK_SIZE = 48  # the header above, then the bloom size and 3 reserved bytes
_DELIVER, _HEARTBEAT, _TUNE, _CLOSE, _METADATA_UPDATE, _CREDIT_REPLY = 0x08, 0x17, 0x14, 0x16, 0x10, 0x8009
_CONFIRM, _PUBLISH_ERROR = 0x03, 0x04
_OK = 1
_OFFSET_TYPES: Final = {"first": 1, "last": 2, "next": 3}
_REASONS: Final = {
    2: "the stream does not exist", 6: "the stream is not available", 8: "authentication failed",
    12: "no access to the virtual host", 13: "unknown frame", 14: "frame too large", 15: "internal error",
    16: "access refused: only centre users may read the feed", 17: "precondition failed",
    18: "the publisher does not exist",
}  # fmt: skip
# AMQP 1.0 value sizes by the high nibble of the format code: fixed widths, and the width of a length prefix
_FIXED: Final = {0x4: 0, 0x5: 1, 0x6: 2, 0x7: 4, 0x8: 8, 0x9: 16}
_PREFIX: Final = {0xA: 1, 0xB: 4, 0xC: 1, 0xD: 4, 0xE: 1, 0xF: 4}
_PROPERTIES, _DATA = 0x73, 0x75  # the message sections the feed reads


@dataclass(frozen=True)
class FeedMessage:
    """One message of the central feed, read over either protocol."""

    offset: int
    timestamp: datetime | None  # the publisher's time (whole seconds), when it set one
    message_id: str | None
    body: bytes


class StreamError(Exception):
    """The broker refused a stream-protocol command, or the connection could not go on."""

    def __init__(self, what: str, code: int | None = None) -> None:
        reason = _REASONS.get(code, f"response code {code}") if code is not None else ""
        super().__init__(f"{what}: {reason}" if reason else what)
        self.code = code


def _skip(buf: bytes, pos: int) -> int:
    """The position after the AMQP 1.0 value at `pos` (a described value with its descriptor)."""
    code = buf[pos]
    pos += 1
    if code == 0x00:
        return _skip(buf, _skip(buf, pos))
    width = _FIXED.get(code >> 4)
    if width is not None:
        return pos + width
    if (code >> 4) in (0xA, 0xC, 0xE):
        return pos + 1 + buf[pos]
    return pos + 4 + int(_U32.unpack_from(buf, pos)[0])


def _text(buf: bytes, pos: int) -> str | None:
    code = buf[pos]
    if code in (0xA1, 0xA3):
        return buf[pos + 2 : pos + 2 + buf[pos + 1]].decode()
    if code in (0xB1, 0xB3):
        n = _U32.unpack_from(buf, pos + 1)[0]
        return buf[pos + 5 : pos + 5 + n].decode()
    if code == 0x53:
        return str(buf[pos + 1])
    if code == 0x80:
        return str(_U64.unpack_from(buf, pos + 1)[0])
    return None  # absent (null), or an id type the feed does not use


def _properties(buf: bytes, pos: int) -> tuple[str | None, int | None]:
    """message-id (field 0) and creation-time in ms (field 9) from the properties list at `pos`."""
    code = buf[pos]
    if code == 0x45:
        return None, None
    if code == 0xC0:
        count, pos = buf[pos + 2], pos + 3
    else:
        count, pos = _U32.unpack_from(buf, pos + 5)[0], pos + 9
    message_id = created = None
    for index in range(min(count, 10)):
        if index == 0:
            message_id = _text(buf, pos)
        elif index == 9 and buf[pos] == 0x83:
            created = _U64.unpack_from(buf, pos + 1)[0]
        pos = _skip(buf, pos)
    return message_id, created


def parse_message(buf: bytes) -> tuple[str | None, int | None, bytes]:
    """(message id, creation time in ms, body) of one AMQP 1.0 message as the stream stores it."""
    pos, end = 0, len(buf)
    message_id = created = None
    parts: list[bytes] = []
    while pos < end:
        if buf[pos] != 0x00 or buf[pos + 1] != 0x53:
            raise StreamError("an entry that is not an AMQP 1.0 message")
        section, pos = buf[pos + 2], pos + 3
        if section == _DATA:
            if buf[pos] == 0xA0:
                n, pos = buf[pos + 1], pos + 2
            else:
                n, pos = _U32.unpack_from(buf, pos + 1)[0], pos + 5
            parts.append(buf[pos : pos + n])
            pos += n
            continue
        if section == _PROPERTIES:
            message_id, created = _properties(buf, pos)
        pos = _skip(buf, pos)
    body = parts[0] if len(parts) == 1 else b"".join(parts)
    return message_id, created, body


def _str(text: str, small: int = 0xA1, large: int = 0xB1) -> bytes:
    data = text.encode()
    if len(data) < 256:
        return bytes([small, len(data)]) + data
    return bytes([large]) + _U32.pack(len(data)) + data


def _value(value: object) -> bytes:
    if value is None:
        return b"\x40"
    if isinstance(value, bool):
        return b"\x41" if value else b"\x42"
    if isinstance(value, int):
        return b"\x81" + struct.pack(">q", value)
    return _str(str(value))


def _section(code: int, kind: int, items: bytes, count: int) -> bytes:
    """A described list (kind 0xD0) or map (0xD1) in its 32-bit form."""
    return bytes([0x00, 0x53, code, kind]) + _U32.pack(len(items) + 4) + _U32.pack(count) + items


def encode_message(
    body: bytes,
    *,
    message_id: str,
    created: datetime,
    user_id: str,
    exchange: str,
    routing_key: str,
    headers: Mapping[str, object],
) -> bytes:
    """One AMQP 1.0 message as RabbitMQ stores an AMQP 0-9-1 publish in a stream: the exchange and routing
    key as annotations, message id, user, content type and time as properties, the headers as application
    properties, the body as one data section. Readers over either protocol see the same message."""
    annotations = _str("x-exchange", 0xA3, 0xB3) + _str(exchange) + _str("x-routing-key", 0xA3, 0xB3)
    annotations += _str(routing_key)
    user = user_id.encode()
    properties = (
        _str(message_id) + bytes([0xA0, len(user)]) + user + b"\x40\x40\x40\x40"  # to, subject, reply-to, corr.
        + _str("application/json", 0xA3, 0xB3) + b"\x40\x40"  # content encoding, absolute expiry
        + b"\x83" + struct.pack(">q", int(created.timestamp() * 1000))
    )  # fmt: skip
    application = b"".join(_str(str(k)) + _value(v) for k, v in headers.items())
    return (
        _section(0x72, 0xD1, annotations, 4) + _section(0x73, 0xD0, properties, 10)
        + _section(0x74, 0xD1, application, 2 * len(headers))
        + b"\x00\x53\x75\xb0" + _U32.pack(len(body)) + body
    )  # fmt: skip


def _string(text: str) -> bytes:
    data = text.encode()
    return _U16.pack(len(data)) + data


def _pairs(pairs: dict[str, str]) -> bytes:
    return _U32.pack(len(pairs)) + b"".join(_string(k) + _string(v) for k, v in pairs.items())


def _frame(key: int, body: bytes) -> bytes:
    payload = _HEAD.pack(key, 1) + body
    return _SIZE.pack(len(payload)) + payload


def offset_specification(start: str | int | datetime) -> bytes:
    if isinstance(start, datetime):
        return _U16.pack(5) + struct.pack(">q", int(start.timestamp() * 1000))
    if isinstance(start, int):
        return _U16.pack(4) + _U64.pack(start)
    return _U16.pack(_OFFSET_TYPES[start])


class Deliveries(asyncio.Protocol):
    """What the feed's two readers share (this module's and the AMQP 0-9-1 one in feed.py): one connection
    whose deliveries queue up in `items` as (tag, message) in offset order; the reader takes what has arrived
    in one go, without an await per message."""

    def __init__(self) -> None:
        self.items: deque[tuple[int, FeedMessage]] = deque()
        self.error: BaseException | None = None
        self.transport: asyncio.Transport | None = None
        self.closed = asyncio.get_running_loop().create_future()
        self.buffer = bytearray()
        self.received = time.monotonic()
        self._waiter: asyncio.Future[None] | None = None
        self._heartbeat: asyncio.TimerHandle | None = None

    heartbeat_frame: bytes = b""  # the protocol's heartbeat, as sent

    def _lost(self, what: str) -> BaseException:
        """The protocol's error for a connection that is gone."""
        raise NotImplementedError

    def _fail(self, error: BaseException) -> None:
        """The connection cannot go on: `error` ends the read, and whatever waits on a reply."""
        raise NotImplementedError

    def _beat(self, interval: int) -> None:
        """A heartbeat every half interval; a broker silent for two intervals is gone."""
        if self.transport is None or self.transport.is_closing():
            return
        if time.monotonic() - self.received > 2 * interval:
            self._fail(self._lost("the broker missed its heartbeats"))
            self.abort()
            return
        self.transport.write(self.heartbeat_frame)
        self._heartbeat = asyncio.get_running_loop().call_later(interval / 2, self._beat, interval)

    def _stop_beating(self) -> None:
        if self._heartbeat is not None:
            self._heartbeat.cancel()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_beating()
        self._fail(exc or self._lost("the broker closed the connection"))
        if not self.closed.done():
            self.closed.set_result(None)

    def _before_waiting(self) -> None:
        """Called when the reader is about to wait for more (the stream reader gives credit back here)."""

    async def wait(self, timeout: float | None) -> bool:
        """False when nothing arrived within `timeout` seconds; raises once the connection failed."""
        if not self.items and self.error is None:
            self._before_waiting()
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                async with asyncio.timeout(timeout):
                    await self._waiter
            except TimeoutError:
                return False
            finally:
                self._waiter = None
        if self.error is not None and not self.items:
            raise self.error
        return True

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # a TCP connection's transport, whichever event loop made it (not every loop's derives from Transport)
        self.transport = cast(asyncio.Transport, transport)


class StreamWire(Deliveries):
    """One connection over the stream protocol: a subscription to `central.records`, a publisher, or both. The
    broker sends chunks against credit; credit goes back while fewer than `prefetch` messages wait."""

    def __init__(self) -> None:
        super().__init__()
        self.prefetch = 1_000
        self.chunks = 0  # chunks received: a message's tag is the number of its chunk
        self._outstanding = 0  # credit given and not yet used
        self._subscribed = False
        self._replies: dict[int, asyncio.Future[tuple[int, bytes]]] = {}
        self._correlation = 0
        self._tuned: asyncio.Future[tuple[int, int]] = asyncio.get_running_loop().create_future()
        self._second, self._time = -1, datetime.fromtimestamp(0, UTC)
        self.frame_max = 1_048_576
        self._next_id = 0  # the publishing id of the next message
        self._unconfirmed: dict[int, asyncio.Future[None]] = {}
        self._batch: list[tuple[int, bytes]] = []
        self._flush_scheduled = False

    @classmethod
    async def connect(cls, url: str) -> StreamWire:
        """A connection, logged in and on its vhost, with nothing subscribed or declared yet."""
        u = urlsplit(url)
        if u.scheme not in SCHEMES:
            raise ValueError(f"not a stream-protocol URL: {u.scheme}://")
        loop = asyncio.get_running_loop()
        host, port = u.hostname or "localhost", u.port or PORTS[u.scheme]
        _, wire = await loop.create_connection(cls, host, port, ssl=tls_context(url))
        try:
            async with asyncio.timeout(30):
                user, password = unquote(u.username or "guest"), unquote(u.password or "guest")
                await wire._handshake(user, password, unquote(u.path[1:]) or "/")
        except BaseException:
            wire.abort()
            raise
        return wire

    @classmethod
    async def open(cls, url: str, start: str | int | datetime, prefetch: int) -> StreamWire:
        """A connection reading `central.records` from `start`."""
        wire = await cls.connect(url)
        wire.prefetch = prefetch
        try:
            async with asyncio.timeout(30):
                body = (
                    bytes([0]) + _string(CENTRAL_RECORDS.name) + offset_specification(start)
                    + _U16.pack(CREDIT) + _U32.pack(0)
                )  # fmt: skip
                wire._outstanding, wire._subscribed = CREDIT, True
                await wire._call(0x07, body, f"subscribe to {CENTRAL_RECORDS.name}")
        except BaseException:
            wire.abort()
            raise
        return wire

    async def _handshake(self, user: str, password: str, vhost: str) -> None:
        await self._call(0x11, _pairs({"product": "simpul central feed", "connection_name": "central feed reader"}),
                         "peer properties")  # fmt: skip
        _, mechanisms = await self._call(0x12, b"", "SASL handshake")
        if b"PLAIN" not in mechanisms:
            raise StreamError("the broker offers no SASL PLAIN")
        plain = f"\0{user}\0{password}".encode()
        await self._call(0x13, _string("PLAIN") + _U32.pack(len(plain)) + plain, f"login as {user}")
        frame_max, heartbeat = await self._tuned
        self.frame_max = frame_max or self.frame_max
        heartbeat = min(heartbeat or 60, 60)
        self._send(_frame(_TUNE, _U32.pack(self.frame_max) + _U32.pack(heartbeat)))
        await self._call(0x15, _string(vhost), f"open virtual host {vhost}")
        self._beat(heartbeat)

    def _send(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    async def _call(self, key: int, body: bytes, what: str) -> tuple[int, bytes]:
        """Sends a request and waits for its response; a response code other than OK raises."""
        self._correlation += 1
        correlation = self._correlation
        reply = self._replies[correlation] = asyncio.get_running_loop().create_future()
        self._send(_frame(key, _U32.pack(correlation) + body))
        if self.error is not None:
            raise self.error
        code, rest = await reply
        if code != _OK:
            raise StreamError(what, code)
        return code, rest

    async def declare_publisher(self) -> None:
        """Publisher 0 on `central.records`, without a name: the broker does not deduplicate; readers may
        (a record change keeps its message id when it is published again)."""
        await self._call(0x01, bytes([0]) + _string("") + _string(CENTRAL_RECORDS.name),
                         f"publish to {CENTRAL_RECORDS.name}")  # fmt: skip

    def publish(self, message: bytes) -> asyncio.Future[None]:
        """Queues one encoded message (encode_message); the messages queued in one turn of the event loop
        leave in one frame. The future is done when the broker confirms the message is stored."""
        confirmed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self.error is not None:
            confirmed.set_exception(self.error)
            return confirmed
        self._unconfirmed[self._next_id] = confirmed
        self._batch.append((self._next_id, message))
        self._next_id += 1
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)
        return confirmed

    def _flush(self) -> None:
        self._flush_scheduled = False
        batch, self._batch = self._batch, []
        room = self.frame_max - 64
        parts: list[bytes] = []
        size = 0
        for publishing_id, message in batch:
            entry = _U64.pack(publishing_id) + _U32.pack(len(message)) + message
            if parts and size + len(entry) > room:
                self._send(_frame(0x02, bytes([0]) + _U32.pack(len(parts)) + b"".join(parts)))
                parts, size = [], 0
            parts.append(entry)
            size += len(entry)
        if parts:
            self._send(_frame(0x02, bytes([0]) + _U32.pack(len(parts)) + b"".join(parts)))

    def _confirmed(self, frame: bytes, failed: bool) -> None:
        count, pos = _U32.unpack_from(frame, 5)[0], 9
        for _ in range(count):
            publishing_id = _U64.unpack_from(frame, pos)[0]
            pos += 8
            confirmed = self._unconfirmed.pop(publishing_id, None)
            if failed:
                code = _U16.unpack_from(frame, pos)[0]
                pos += 2
                if confirmed is not None and not confirmed.done():
                    confirmed.set_exception(StreamError(f"publish to {CENTRAL_RECORDS.name}", code))
            elif confirmed is not None and not confirmed.done():
                confirmed.set_result(None)

    def ack(self, tag: int) -> None:
        """The reader took the messages up to `tag`: the broker may send more chunks."""
        self._top_up()

    def _top_up(self) -> None:
        if self._subscribed and self._outstanding < CREDIT and len(self.items) < self.prefetch:
            self._send(_frame(0x09, bytes([0]) + _U16.pack(CREDIT - self._outstanding)))
            self._outstanding = CREDIT

    def _before_waiting(self) -> None:
        self._top_up()

    def _fail(self, error: BaseException) -> None:
        if self.error is None:
            self.error = error
            for reply in self._replies.values():
                if not reply.done():
                    reply.set_exception(error)
            if not self._tuned.done():
                self._tuned.set_exception(error)
                self._tuned.exception()  # raised to the handshake if one waits; not an error of its own
            for confirmed in self._unconfirmed.values():
                if not confirmed.done():
                    confirmed.set_exception(error)
            self._unconfirmed.clear()
            self._wake()

    heartbeat_frame = _frame(_HEARTBEAT, b"")

    def _lost(self, what: str) -> BaseException:
        return StreamError(what)

    async def close(self) -> None:
        self._stop_beating()
        if self.transport is not None and not self.transport.is_closing() and self.error is None:
            try:
                async with asyncio.timeout(5):
                    await self._call(_CLOSE, _U16.pack(1) + _string("done"), "close")
            except (TimeoutError, StreamError, ConnectionError):
                pass
        self.abort()
        await self.closed

    def data_received(self, data: bytes) -> None:
        self.received = time.monotonic()
        buf = self.buffer
        buf += data
        pos, end = 0, len(buf)
        try:
            while end - pos >= 4:
                stop = pos + 4 + _SIZE.unpack_from(buf, pos)[0]
                if stop > end:
                    break
                self._frame(bytes(buf[pos + 4 : stop]))
                pos = stop
        except Exception as e:  # the connection cannot be read on from here
            self._fail(e)
            self.abort()
        del buf[:pos]

    def _frame(self, frame: bytes) -> None:
        key, _ = _HEAD.unpack_from(frame, 0)
        if key == _DELIVER:
            self._chunk(frame, 5)  # after key, version and the subscription id
        elif key in (_CONFIRM, _PUBLISH_ERROR):
            self._confirmed(frame, key == _PUBLISH_ERROR)
        elif key & 0x8000 and key != _CREDIT_REPLY:
            correlation, code = _U32.unpack_from(frame, 4)[0], _U16.unpack_from(frame, 8)[0]
            reply = self._replies.pop(correlation, None)
            if reply is not None and not reply.done():
                reply.set_result((code, frame[10:]))
        elif key == _TUNE:
            if not self._tuned.done():
                self._tuned.set_result((_U32.unpack_from(frame, 4)[0], _U32.unpack_from(frame, 8)[0]))
        elif key == _CLOSE:
            correlation, code = _U32.unpack_from(frame, 4)[0], _U16.unpack_from(frame, 8)[0]
            n = _U16.unpack_from(frame, 10)[0]
            reason = frame[12 : 12 + n].decode(errors="replace")
            self._send(_frame(0x8016, _U32.pack(correlation) + _U16.pack(_OK)))
            self._fail(StreamError(f"the broker closed the connection ({code}: {reason})"))
        elif key == _CREDIT_REPLY:
            self._fail(StreamError("credit", _U16.unpack_from(frame, 4)[0]))
        elif key == _METADATA_UPDATE:
            self._fail(
                StreamError(f"{CENTRAL_RECORDS.name} was deleted or moved", _U16.unpack_from(frame, 4)[0])
            )
        # heartbeats: nothing to do but having received them

    def _chunk(self, frame: bytes, pos: int) -> None:
        """One chunk of the log: its entries become messages with their offsets."""
        _, kind, entries, _, _, _, first, _, _, _ = _CHUNK.unpack_from(frame, pos)
        self.chunks += 1
        self._outstanding -= 1
        if kind == 0:  # 1 and 2 are the broker's offset tracking, not messages
            tag, items = self.chunks, self.items
            pos += _CHUNK_SIZE
            offset = first
            for _ in range(entries):
                size = _U32.unpack_from(frame, pos)[0]
                if size & 0x80000000:
                    raise StreamError("a compressed sub-batch entry: the feed is published without them")
                data = frame[pos + 4 : pos + 4 + size]
                pos += 4 + size
                message_id, created, body = parse_message(data)
                items.append((tag, FeedMessage(offset, self._when(created), message_id, body)))
                offset += 1
            self._wake()
        self._top_up()

    def _when(self, created: int | None) -> datetime | None:
        if created is None:
            return None
        second = created // 1000
        if second != self._second:  # consecutive messages mostly share their second
            self._second, self._time = second, datetime.fromtimestamp(second, UTC)
        return self._time


def tls_context(url: str) -> ssl.SSLContext | None:
    """For a `+tls` URL: the broker's certificate checked against the system's CAs, or against the CA file
    named by `?cafile=` (as in an amqps:// URL: a local CA, deploy/tls.py); None for plain TCP."""
    u = urlsplit(url)
    if not u.scheme.endswith("+tls"):
        return None
    cafile = parse_qs(u.query).get("cafile", [None])[0]
    return ssl.create_default_context(cafile=cafile)


def stream_url(amqp_url: str, port: int | None = None) -> str:
    """The stream-protocol URL of the same broker, user and vhost as an AMQP URL."""
    u = urlsplit(amqp_url)
    scheme = "rabbitmq-stream+tls" if u.scheme == "amqps" else "rabbitmq-stream"
    netloc = u.netloc.rsplit("@", 1)
    host = (u.hostname or "localhost") if ":" not in (u.hostname or "") else f"[{u.hostname}]"
    location = f"{host}:{port or PORTS[scheme]}"
    return u._replace(
        scheme=scheme, netloc=f"{netloc[0]}@{location}" if len(netloc) == 2 else location
    ).geturl()

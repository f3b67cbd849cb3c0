"""The stream protocol without a broker: AMQP 1.0 messages both ways, chunks as the broker frames them,
credit, publishing in frames, confirms and refusals."""

from __future__ import annotations

import asyncio
import struct
from datetime import UTC, datetime
from typing import Any

import pytest

from services.consolidator import stream_wire as sw
from services.consolidator.stream_wire import FeedMessage, StreamError, StreamWire

WHEN = datetime(2026, 12, 2, 3, 4, 5, 678_000, tzinfo=UTC)
SECOND = WHEN.replace(microsecond=0)


def message(body: bytes, message_id: str = "central-C1-v1", **headers: Any) -> bytes:
    return sw.encode_message(
        body, message_id=message_id, created=WHEN, user_id="ns-svc-consolidator", exchange="events",
        routing_key="central.record.changed", headers=headers or {"schema_version": 1},
    )  # fmt: skip


@pytest.mark.parametrize("size", [0, 7, 255, 256, 70_000])
def test_a_message_reads_back_as_encoded(size: int) -> None:
    body = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
    long_id = "m-" + "9" * 300  # past a one-byte length
    headers = {"schema_version": 1, "ok": True, "no": False, "none": None, "name": "Siti " * 80}
    assert sw.parse_message(message(body, long_id, **headers)) == (
        long_id,
        int(WHEN.timestamp() * 1000),
        body,
    )


def amqp_value(code: int, payload: bytes) -> bytes:
    return bytes([code]) + payload


def test_sections_and_values_of_every_width_are_skipped_and_data_sections_joined() -> None:
    header = b"\x00\x53\x70" + b"\xc0\x04\x02\x41\x50\x04"  # header: list8 (durable true, priority 4)
    delivery = b"\x00\x53\x71\xc1\x01\x00"  # delivery annotations: an empty map8
    values = (
        b"\x40" + b"\x56\x01" + b"\x60\x00\x01" + b"\x71\x00\x00\x00\x02" + b"\x81" + bytes(8) + b"\x98" + bytes(16)
        + b"\xb0\x00\x00\x00\x02hi" + b"\xe0\x03\x02\x50\x01\x02" + b"\x00\x53\x01\x45"
    )  # fmt: skip
    application = b"\x00\x53\x74\xd1" + struct.pack(">II", len(values) + 4, 9) + values
    properties = b"\x00\x53\x73\x45"  # an empty list: no id, no time
    data = b"\x00\x53\x75\xa0\x03abc" + b"\x00\x53\x75\xb0\x00\x00\x00\x02de"
    footer = b"\x00\x53\x78\xc1\x01\x00"
    assert sw.parse_message(header + delivery + application + properties + data + footer) == (
        None,
        None,
        b"abcde",
    )


def test_something_that_is_not_an_amqp_message_is_refused() -> None:
    with pytest.raises(StreamError, match=r"not an AMQP 1\.0 message"):
        sw.parse_message(b'{"a": 1}')


def chunk(first: int, messages: list[bytes], kind: int = 0) -> bytes:
    entries = b"".join(struct.pack(">I", len(m)) + m for m in messages)
    head = struct.pack(">bbHIqQQiII", 5, kind, len(messages), len(messages), 0, 1, first, 0, len(entries), 0)
    return head + b"\x00\x00\x00\x00" + entries


def frame(key: int, body: bytes) -> bytes:
    payload = struct.pack(">HH", key, 1) + body
    return struct.pack(">I", len(payload)) + payload


def deliver(first: int, messages: list[bytes], kind: int = 0) -> bytes:
    return frame(0x08, b"\x00" + chunk(first, messages, kind))


class Transport:
    def __init__(self) -> None:
        self.written = bytearray()

    def write(self, data: bytes) -> None:
        self.written += data

    def is_closing(self) -> bool:
        return False

    def abort(self) -> None:
        pass


def wire() -> tuple[StreamWire, Transport]:
    w, t = StreamWire(), Transport()
    w.transport = t  # type: ignore[assignment]
    return w, t


def frames_written(data: bytes) -> list[tuple[int, bytes]]:
    out, pos = [], 0
    while pos < len(data):
        (size,) = struct.unpack_from(">I", data, pos)
        out.append((struct.unpack_from(">H", data, pos + 4)[0], data[pos + 8 : pos + 4 + size]))
        pos += 4 + size
    return out


@pytest.mark.parametrize("piece", [1, 13, 4096, 1_000_000])
async def test_chunks_become_messages_at_their_offsets_however_the_bytes_arrive(piece: int) -> None:
    w, _ = wire()
    one = [message(b'{"n": 1}', "m-1"), message(b'{"n": 2}', "m-2")]
    data = (
        deliver(100, one)
        + frame(0x17, b"")
        + deliver(7, [b"tracking"], kind=2)
        + deliver(102, [message(b"{}", "m-3")])
    )
    for at in range(0, len(data), piece):
        w.data_received(data[at : at + piece])
    assert w.error is None
    assert list(w.items) == [
        (1, FeedMessage(100, SECOND, "m-1", b'{"n": 1}')),
        (1, FeedMessage(101, SECOND, "m-2", b'{"n": 2}')),
        (3, FeedMessage(102, SECOND, "m-3", b"{}")),  # the offset-tracking chunk between is no message
    ]
    assert w.buffer == bytearray()


async def test_a_compressed_sub_batch_stops_the_read_after_what_came_before() -> None:
    w, _ = wire()
    sub_batch = struct.pack(">I", 0x80000000 | 5) + b"\x00" * 5
    head = struct.pack(">bbHIqQQiII", 5, 0, 1, 3, 0, 1, 10, 0, len(sub_batch), 0) + bytes(4)
    w.data_received(deliver(8, [message(b"{}")]) + frame(0x08, b"\x00" + head + sub_batch))
    assert await w.wait(0)
    assert [m.offset for _, m in w.items] == [8]
    w.items.clear()
    with pytest.raises(StreamError, match="sub-batch"):
        await w.wait(0)


async def test_credit_goes_back_while_few_messages_wait_and_stops_when_many_do() -> None:
    w, t = wire()
    w._subscribed, w._outstanding, w.prefetch = True, sw.CREDIT, 3
    w.data_received(deliver(0, [message(b"{}")]))  # one chunk used, one message waiting: top up
    assert frames_written(bytes(t.written)) == [(0x09, b"\x00\x00\x01")]
    t.written.clear()
    w.data_received(deliver(1, [message(b"{}")] * 3))  # four waiting, more than prefetch: no credit
    assert t.written == bytearray()
    w.items.clear()  # the reader took them
    w.ack(4)
    assert frames_written(bytes(t.written)) == [(0x09, b"\x00\x00\x01")]


async def test_messages_published_in_one_turn_leave_in_frames_below_the_frame_size() -> None:
    w, t = wire()
    w.frame_max = 900
    sent = [w.publish(bytes([n]) * 300) for n in range(5)]
    assert t.written == bytearray()  # not before the event loop turns
    await asyncio.sleep(0)
    published = frames_written(bytes(t.written))
    assert [key for key, _ in published] == [
        0x02,
        0x02,
        0x02,
    ]  # 2 + 2 + 1 messages of 312 bytes each, 836 a frame
    ids = []
    for _, body in published:
        count, pos = struct.unpack_from(">I", body, 1)[0], 5
        for _ in range(count):
            publishing_id, size = struct.unpack_from(">QI", body, pos)
            assert body[pos + 12 : pos + 12 + size] == bytes([publishing_id]) * 300
            ids.append(publishing_id)
            pos += 12 + size
    assert ids == [0, 1, 2, 3, 4]
    w.data_received(frame(0x03, b"\x00" + struct.pack(">IQQQ", 3, 0, 1, 3)))
    w.data_received(frame(0x04, b"\x00" + struct.pack(">IQH", 1, 2, 16)))
    await asyncio.sleep(0)
    assert [s.done() for s in sent] == [True, True, True, True, False]
    assert sent[0].result() is None
    assert sent[3].result() is None
    with pytest.raises(StreamError, match="access refused"):
        sent[2].result()
    w.connection_lost(ConnectionResetError("gone"))  # what is not confirmed when the connection goes fails
    with pytest.raises(ConnectionResetError):
        await sent[4]
    with pytest.raises(ConnectionResetError):
        await w.publish(b"after")


async def test_the_broker_closing_the_connection_is_answered_and_raised() -> None:
    w, t = wire()
    w.data_received(frame(0x16, struct.pack(">IH", 9, 3) + struct.pack(">H", 8) + b"shutdown"))
    assert frames_written(bytes(t.written)) == [(0x8016, struct.pack(">IH", 9, 1))]
    with pytest.raises(StreamError, match=r"closed the connection \(3: shutdown\)"):
        await w.wait(None)


@pytest.mark.parametrize(
    ("amqp", "port", "expected"),
    [
        ("amqp://u:p%40ss@127.0.0.1:5672/simpul", None, "rabbitmq-stream://u:p%40ss@127.0.0.1:5552/simpul"),
        ("amqp://u:p@rabbitmq/simpul", 15552, "rabbitmq-stream://u:p@rabbitmq:15552/simpul"),
        ("amqps://u:p@broker.example:5671/v", None, "rabbitmq-stream+tls://u:p@broker.example:5551/v"),
        ("amqp://[::1]:5672/", None, "rabbitmq-stream://[::1]:5552/"),
    ],
)
def test_the_stream_url_keeps_user_host_and_vhost(amqp: str, port: int | None, expected: str) -> None:
    assert sw.stream_url(amqp, port) == expected


@pytest.mark.parametrize(
    ("start", "expected"),
    [
        ("first", b"\x00\x01"),
        ("last", b"\x00\x02"),
        ("next", b"\x00\x03"),
        (70_000, b"\x00\x04" + struct.pack(">Q", 70_000)),
        (WHEN, b"\x00\x05" + struct.pack(">q", int(WHEN.timestamp() * 1000))),
    ],
)
def test_where_a_subscription_starts(start: str | int | datetime, expected: bytes) -> None:
    assert sw.offset_specification(start) == expected

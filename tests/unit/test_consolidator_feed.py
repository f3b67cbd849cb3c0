"""The central feed without a broker: where a replay starts, the offset file, what it prints, and the wire."""

from __future__ import annotations

import asyncio
import io
import json
import os
from collections import deque
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiormq
import pamqp.encode
import pamqp.frame
import pytest
from aiormq import spec
from pamqp.body import ContentBody
from pamqp.header import ContentHeader
from pamqp.heartbeat import Heartbeat

from deploy import credentials as creds
from services.consolidator import feed
from services.consolidator.feed import FeedMessage, FeedSummary

WIB = timezone(timedelta(hours=7))
NIK = "3273015505900001"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("first", "first"),
        ("last", "last"),
        ("next", "next"),
        ("0", 0),
        ("123456", 123456),
        ("2026-12-02T10:00:00+07:00", datetime(2026, 12, 2, 10, tzinfo=WIB)),
        ("2026-12-02T03:00:00Z", datetime(2026, 12, 2, 3, tzinfo=UTC)),
    ],
)
def test_a_start_is_a_name_an_offset_or_a_time(text: str, expected: object) -> None:
    assert feed.parse_start(text) == expected


@pytest.mark.parametrize("text", ["-1", "1.5", "²", "beginning", "", "yesterday"])
def test_anything_else_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="--from"):
        feed.parse_start(text)


def test_a_time_without_its_utc_offset_is_refused_rather_than_guessed() -> None:
    with pytest.raises(ValueError, match="UTC offset"):
        feed.parse_start("2026-12-02T10:00:00")


def test_an_explicit_start_wins_over_the_saved_offset_which_resumes_after_itself() -> None:
    assert feed.resolve_start("first", 41) == "first"
    assert feed.resolve_start("7", 41) == 7
    assert feed.resolve_start(None, 41) == 42
    assert feed.resolve_start(None, 0) == 1
    assert feed.resolve_start(None, None) == "first"


def test_a_time_goes_to_the_broker_in_utc_rounded_down_to_its_second() -> None:
    when = datetime(2026, 12, 2, 10, 0, 5, 900_000, tzinfo=WIB)
    assert feed.offset_argument(when) == datetime(2026, 12, 2, 3, 0, 5, tzinfo=UTC)
    assert feed.offset_argument(12) == 12
    assert feed.offset_argument("next") == "next"


def test_the_offset_file_round_trips_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    path = tmp_path / "state" / "feed.offset"
    assert feed.read_offset(path) is None
    feed.write_offset(path, 41)
    assert feed.read_offset(path) == 41
    feed.write_offset(path, 1_234_567)
    assert feed.read_offset(path) == 1_234_567
    assert os.listdir(path.parent) == ["feed.offset"]


def test_a_failed_save_keeps_the_previous_offset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "feed.offset"
    feed.write_offset(path, 41)

    def crash(*_: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk full"):
        feed.write_offset(path, 99)
    assert feed.read_offset(path) == 41
    assert os.listdir(tmp_path) == ["feed.offset"]


def test_an_offset_file_that_holds_no_offset_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "feed.offset"
    path.write_text("forty-one\n")
    with pytest.raises(ValueError, match="not an offset"):
        feed.read_offset(path)


def message(offset: int, body: bytes) -> FeedMessage:
    return FeedMessage(offset, datetime(2026, 12, 2, 3, tzinfo=UTC), f"m-{offset}", body)


def test_each_message_is_one_json_line_with_its_offset_time_id_and_body() -> None:
    body = json.dumps({"central_id": "C1", "person": {"nik": NIK}}, indent=2).encode()
    line = feed.json_line(message(7, body))
    assert line.endswith(b"\n")
    assert line.count(b"\n") == 1
    assert json.loads(line) == {
        "offset": 7,
        "timestamp": "2026-12-02T03:00:00+00:00",
        "message_id": "m-7",
        "body": {"central_id": "C1", "person": {"nik": NIK}},
    }


def test_a_body_that_is_not_json_is_kept_as_base64() -> None:
    record = json.loads(feed.json_line(message(8, b"\xff\x00not json")))
    assert record["body_base64"] == "/wBub3QganNvbg=="
    assert "body" not in record


def test_the_summary_gives_messages_offsets_seconds_and_rate() -> None:
    line = feed.summary_line(FeedSummary(500, 10, 509, 2.0))
    assert line == "feed: 500 messages, offsets 10..509, 2.0 s, 250 records/s"
    assert (
        feed.summary_line(FeedSummary(0, None, None, 2.0))
        == "feed: 0 messages, no offsets, 2.0 s, 0 records/s"
    )


def test_a_replay_from_before_the_stream_or_past_its_retention_says_where_it_really_starts() -> None:
    first = message(40, b"{}")
    before = datetime(2000, 1, 1, tzinfo=UTC)
    told = feed._first_notice(before, 40, first)
    assert told is not None
    assert "begins later" in told
    assert "offset 40" in told
    assert "2026-12-02T03:00" in told
    assert feed._first_notice(before, 41, first) is None  # the time fell inside the stream
    assert feed._first_notice("first", 40, first) is None
    assert feed._first_notice(12, 40, None) == (
        "offset 12 is no longer in the stream (retention); replaying from offset 40"
    )
    assert feed._first_notice(40, 40, None) is None


def test_what_goes_to_stderr_never_carries_a_full_nik(capsys: pytest.CaptureFixture[str]) -> None:
    feed.say(f"could not write record {NIK}")
    err = capsys.readouterr().err
    assert NIK not in err
    assert "3273********0001" in err


def test_the_command_line_writes_lines_then_saves_the_offset_and_reports_progress(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out, offset_file = io.BytesIO(), tmp_path / "feed.offset"
    tally = feed._Tally(out, offset_file, every=2, quiet=False)
    for offset in (5, 6, 7):
        tally.on_message(message(offset, json.dumps({"nik": NIK}).encode()))
    assert feed.read_offset(offset_file) is None  # only after a batch
    tally.save(7)
    assert feed.read_offset(offset_file) == 7
    assert [json.loads(line)["offset"] for line in out.getvalue().splitlines()] == [5, 6, 7]
    err = capsys.readouterr().err
    assert "feed: 2 messages, offset 6" in err
    assert NIK not in err
    summary = tally.summary()
    assert (summary.messages, summary.first_offset, summary.last_offset) == (3, 5, 7)


def write_credentials(path: Path) -> None:
    creds.write(path, [creds.Credential("pusat", "pusat", "ns-pusat", "p@ss/word")])


def test_the_broker_url_uses_the_centre_user_of_the_credentials_file(tmp_path: Path) -> None:
    write_credentials(tmp_path / "credentials.csv")
    args = feed.parser().parse_args(
        ["--credentials", str(tmp_path / "credentials.csv"), "--vhost", "simpul-x"]
    )
    url = urlsplit(feed.broker_url(args))
    assert (url.username, url.password, url.hostname, url.port, url.path) == (
        "ns-pusat",
        "p%40ss%2Fword",
        "127.0.0.1",
        5672,
        "/simpul-x",
    )
    override = feed.parser().parse_args(["--user", "other", "--password", "secret", "--vhost", "v"])
    assert urlsplit(feed.broker_url(override)).username == "other"


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["--from", "yesterday"], "--from"),
        (["--user", "other"], "--password"),
        (["--limit", "0"], "positive"),
        (["--credentials", "/nonexistent/credentials.csv"], "make provision"),
    ],
)
def test_bad_arguments_stop_before_connecting(
    argv: list[str], says: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FEED_PASSWORD", raising=False)
    monkeypatch.setattr(asyncio, "run", lambda *_: pytest.fail("connected"))
    with pytest.raises(SystemExit) as stopped:
        feed.main(argv)
    assert stopped.value.code == 2
    assert says in capsys.readouterr().err


def test_a_corrupt_offset_file_stops_before_connecting(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "feed.offset").write_text("?")
    write_credentials(tmp_path / "credentials.csv")
    monkeypatch.setattr(asyncio, "run", lambda *_: pytest.fail("connected"))
    argv = [
        "--offset-file",
        str(tmp_path / "feed.offset"),
        "--credentials",
        str(tmp_path / "credentials.csv"),
    ]
    with pytest.raises(SystemExit):
        feed.main(argv)
    assert "not an offset" in capsys.readouterr().err


def test_a_json_body_on_one_line_is_written_through_as_sent() -> None:
    body = b'{"central_id": "C1", "version": 2, "big": 123456789012345678901234567890}'
    line = feed.json_line(message(9, body))
    assert line == (
        b'{"offset":9,"timestamp":"2026-12-02T03:00:00+00:00","message_id":"m-9","body":' + body + b"}\n"
    )
    assert json.loads(line)["body"]["big"] == 123456789012345678901234567890


# --- the wire: deliveries as the broker frames them, parsed without a broker -------------------------------

WHEN = datetime(2026, 12, 2, 3, 4, 5, tzinfo=UTC)


def frames(*parts: Any) -> bytes:
    return b"".join(pamqp.frame.marshal(part, 1) for part in parts)


def delivery(tag: int, offset: int | None, *bodies: bytes, **properties: Any) -> bytes:
    """One delivery, its body split over as many body frames as `bodies`."""
    headers: dict[str, Any] = {} if offset is None else {"x-stream-offset": offset}
    size = sum(len(b) for b in bodies)
    header = ContentHeader(0, size, spec.Basic.Properties(headers=headers, **properties))
    deliver = spec.Basic.Deliver("ctag1.feed", tag, False, "events", "central.record.changed")
    return frames(deliver, header, *(ContentBody(b) for b in bodies))


EVERY_PROPERTY: dict[str, Any] = {
    "content_type": "application/json",
    "content_encoding": "identity",
    "delivery_mode": 2,
    "priority": 3,
    "correlation_id": "corr",
    "reply_to": "nobody",
    "expiration": "60000",
    "message_id": "central-C1-v2",
    "timestamp": WHEN,
    "message_type": "central.record.changed",
    "user_id": "ns-consolidator",
    "app_id": "consolidator",
}
# Headers of every kind a field table may hold, before the offset, which must be found past all of them.
OTHER_HEADERS: dict[str, Any] = {
    "schema_version": 1,
    "name": "Siti",
    "ok": True,
    "nested": {"x-stream-offset-not": 5, "list": [1, "two", {"three": 3}]},
    "ratio": 0.5,
    "big": 2**40,
    "when": WHEN,
    "raw": bytearray(b"\x00\x01"),
    "nothing": None,
    "price": Decimal("1.25"),
}


@pytest.mark.parametrize("offset", [0, 7, 300, 70_000, 2**40])
def test_the_stream_offset_is_found_in_the_headers_past_values_of_every_kind(offset: int) -> None:
    table = bytearray(pamqp.encode.field_table(OTHER_HEADERS | {"x-stream-offset": offset}))
    assert feed._stream_offset(table, 4, len(table)) == offset
    without = bytearray(pamqp.encode.field_table(OTHER_HEADERS))
    assert feed._stream_offset(without, 4, len(without)) is None


@pytest.mark.parametrize("piece", [1, 7, 64, 100_000])
async def test_deliveries_are_read_whole_and_in_order_however_the_bytes_arrive(piece: int) -> None:
    body = json.dumps({"nik": NIK, "pad": "x" * 300}).encode()
    stream = (
        delivery(1, 40, body, **EVERY_PROPERTY)
        + frames(Heartbeat())
        + delivery(2, 41, body[:100], body[100:250], body[250:], message_id="m-41")  # over three frames
        + delivery(3, 42)  # an empty body has no body frame
    )
    wire = feed._Wire()
    for at in range(0, len(stream), piece):
        wire.data_received(stream[at : at + piece])
    assert wire.error is None
    assert list(wire.items) == [
        (1, FeedMessage(40, WHEN, "central-C1-v2", body)),
        (2, FeedMessage(41, None, "m-41", body)),
        (3, FeedMessage(42, None, None, b"")),
    ]
    assert wire.buffer == bytearray()


async def test_a_delivery_without_an_offset_stops_the_read_after_what_came_before() -> None:
    wire = feed._Wire()
    wire.data_received(delivery(1, 40, b"{}") + delivery(2, None, b"{}"))
    assert await wire.wait(0)
    assert [m.offset for _, m in wire.items] == [40]
    wire.items.clear()
    with pytest.raises(RuntimeError, match="without x-stream-offset"):
        await wire.wait(0)


async def test_a_channel_the_broker_closes_raises_its_refusal() -> None:
    wire = feed._Wire()
    wire.data_received(frames(spec.Channel.Close(403, "ACCESS_REFUSED - no", 60, 20)))
    with pytest.raises(aiormq.exceptions.ChannelAccessRefused, match="ACCESS_REFUSED"):
        await wire.wait(None)


class FakeWire:
    """What read_feed sees of the broker: what has arrived, then quiet; the acknowledgements it sends."""

    def __init__(self, offsets: list[int]) -> None:
        self.items = deque((tag, message(offset, b"{}")) for tag, offset in enumerate(offsets, 1))
        self.acks: list[int] = []
        self.closed = False

    async def wait(self, timeout: float | None) -> bool:
        return bool(self.items)

    def ack(self, tag: int) -> None:
        self.acks.append(tag)

    async def close(self) -> None:
        self.closed = True


async def replay(
    monkeypatch: pytest.MonkeyPatch, offsets: list[int], start: feed.Start, **kw: Any
) -> tuple[FakeWire, list[int], list[int], FeedSummary]:
    wire = FakeWire(offsets)

    async def open_wire(url: str, start: object, prefetch: int) -> FakeWire:
        return wire

    monkeypatch.setattr(feed._Wire, "open", open_wire)
    got: list[int] = []
    saved: list[int] = []
    summary = await feed.read_feed(
        "amqp://x/", start=start, follow=False, limit=kw.pop("limit", None), idle=0.01,
        on_message=lambda m: got.append(m.offset), on_batch=saved.append, notice=lambda _: None, **kw,
    )  # fmt: skip
    return wire, got, saved, summary


async def test_a_replay_acknowledges_in_batches_and_saves_after_each(monkeypatch: pytest.MonkeyPatch) -> None:
    wire, got, saved, summary = await replay(
        monkeypatch, list(range(100, 125)), "first", batch_size=10, prefetch=8
    )
    assert got == list(range(100, 125))
    assert saved == [109, 119, 124]  # every batch, and the rest when the stream went quiet
    assert wire.acks == [2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 25]  # credit back every prefetch/4
    assert (summary.messages, summary.first_offset, summary.last_offset) == (25, 100, 124)
    assert wire.closed


async def test_a_replay_from_an_offset_skips_the_start_of_its_chunk_and_stops_at_the_limit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    wire, got, saved, summary = await replay(monkeypatch, list(range(40, 60)), 45, limit=5)
    assert got == [45, 46, 47, 48, 49]
    assert saved == [49]
    assert wire.acks == [10]  # the skipped deliveries are acknowledged with the rest
    assert summary.notices == ()

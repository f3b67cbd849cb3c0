"""Translates broker messages to registry decisions and back."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import TypeVar

import aio_pika
from faststream.rabbit import RabbitBroker, RabbitRouter
from faststream.rabbit.annotations import RabbitMessage

from shared import db, messaging, problems
from shared.contracts import (
    WIB,
    EktpReceipt,
    EnrolmentPacket,
    EnrolmentVerdict,
    Message,
    PrintEventReported,
    RegionalStatusReported,
    SdpSubmission,
    SubmissionProcessed,
    SubmissionReceipt,
    derive_message_id,
)
from shared.ektp import EktpStatus
from shared.messaging import DeadLetter, PermanentError
from shared.runtime import Clock

from .config import Settings
from .domain import codes, ektp, rate, sdp
from .store import CaptureFields, CaptureStore, CaptureWrite, PartKey, PartWrite, SubmissionStore

log = logging.getLogger("simpul.registry")
UPT, DUKCAPIL = "upt-", "dukcapil-"


def sender_unit(user_id: str | None, settings: Settings, kind: str) -> str:
    """The sending unit, from the user id the broker validated; never from the payload."""
    unit = settings.unit_of_user(user_id or "")
    if unit is None or not unit.startswith(kind):
        raise PermanentError(problems.SENDER_NOT_ALLOWED, f"user {user_id!r} may not send this")
    return unit


def expect_key(raw: aio_pika.abc.AbstractIncomingMessage, expected: str) -> None:
    if raw.routing_key != expected:
        raise PermanentError(problems.ROUTING_KEY_MISMATCH, f"routing key {raw.routing_key!r}")


T = TypeVar("T")


async def first_try(save: Callable[[], Awaitable[T]], what: str, *, attempts: int = 6) -> tuple[T, bool]:
    """Save with retries of transient database failures; whether the first try gave the result. A "seen
    before" found by a retry is this delivery's own commit, whose confirmation the failure took away."""
    tries = 0

    async def once() -> T:
        nonlocal tries
        tries += 1
        return await save()

    result = await db.retrying(once, attempts=attempts, what=what)
    return result, tries == 1


class Registry:
    """The registry's handlers, with what they share: stores, settings, broker and clock."""

    def __init__(
        self,
        parts: SubmissionStore,
        captures: CaptureStore,
        settings: Settings,
        broker: RabbitBroker,
        clock: Clock,
    ) -> None:
        self.parts, self.captures, self.settings, self.broker, self.clock = (
            parts,
            captures,
            settings,
            broker,
            clock,
        )
        self.user = messaging.broker_user(settings.amqp_url)
        self.rate = rate.RatePolicy(settings.sdp_burst_records, settings.sdp_records_per_second)
        self.allowances: dict[str, rate.Allowance] = {}  # per sending UPT, in this process

    async def tell(self, message: Message, *, receipt_to: str | None = None) -> None:
        """Publish now, not through the outbox: repeats of stored answers, and news when the database is down."""
        if receipt_to is not None:
            await messaging.publish(
                self.broker, message, exchange=messaging.RECEIPTS, routing_key=receipt_to, user_id=self.user
            )
        else:
            await messaging.publish(
                self.broker,
                message,
                exchange=messaging.EVENTS,
                routing_key=message.ROUTING_KEY,
                user_id=self.user,
            )

    async def answer_again(
        self, earlier: Message | None, first: bool, raw: aio_pika.abc.AbstractIncomingMessage, unit: str
    ) -> None:
        """The sender sent the same message again (it lost the answer, e.g. its connection dropped): nothing
        changes, the same answer goes back. A redelivery by the broker (this process or another died before its
        ack), or a retry here after a commit whose confirmation was lost, gets none: the first answer left
        through the outbox with the first commit."""
        if earlier is not None and first and not raw.redelivered:
            await self.tell(earlier, receipt_to=unit)

    # --- SDP ------------------------------------------------------------------------------------------------

    async def on_sdp_submission(
        self, submission: SdpSubmission, raw: aio_pika.abc.AbstractIncomingMessage
    ) -> None:
        messaging.check_envelope(raw, submission)
        sender = sender_unit(raw.user_id, self.settings, UPT)
        expect_key(raw, SdpSubmission.ROUTING_KEY.format(upt_id=sender))
        now = self.clock()
        admission = rate.decide_admission(
            self.allowances.get(sender), len(submission.records), time.monotonic(), self.rate
        )
        self.allowances[sender] = admission.allowance
        if not admission.admitted:
            log.warning(
                "a UPT sends more than its allowance: part answered SENDER_OVER_RATE",
                extra={"upt_id": sender, "retry_after_s": round(admission.retry_after)},
            )
            await self.tell(
                sdp.over_rate(submission, sender, admission.retry_after, now=now), receipt_to=sender
            )
            return
        assessment = sdp.assess(
            submission,
            sender,
            today=now.astimezone(WIB).date(),
            received_at=now,
            screen=sdp.may_hold_control_characters(raw.body),
        )
        positions = {
            r["inmate_id"]: i
            for i, r in reversed(list(enumerate(submission.records)))
            if isinstance(r, dict) and isinstance(r.get("inmate_id"), str)
        }
        key = (
            None
            if assessment.part_refused
            else PartKey(
                submission.upt_id,
                submission.as_of,
                submission.snapshot,
                submission.part,
                [r.inmate_id for r in assessment.accepted],
            )
        )

        def decide(existing: Sequence[sdp.StoredSnapshot], taken: set[str]) -> PartWrite:
            final = sdp.without_taken(assessment, taken, positions)
            decision = (
                sdp.snapshot_decision(existing, submission.snapshot, submission.part, submission.parts)
                if key
                else sdp.SnapshotDecision(None, None)
            )
            out = sdp.outcome(submission, sender, final, decision, now=now)
            outgoing = [
                db.Outgoing("receipts", sender, out.receipt),
                db.Outgoing("events", SubmissionProcessed.ROUTING_KEY, out.status),
            ]
            if out.accepted is not None:
                outgoing.append(db.Outgoing("events", out.accepted.ROUTING_KEY, out.accepted))
            return PartWrite(
                out.receipt,
                out.status,
                decision if out.store_records else None,
                out.receipt.lateness,
                final.accepted if out.store_records else [],
                outgoing,
            )

        earlier, first = await first_try(
            lambda: self.parts.save_part(submission.message_id, sender, key, decide), "save submission part"
        )
        await self.answer_again(earlier, first, raw, sender)

    # --- e-KTP ----------------------------------------------------------------------------------------------

    def _dukcapil(self, raw: aio_pika.abc.AbstractIncomingMessage, kind: str) -> tuple[str, str]:
        unit = sender_unit(raw.user_id, self.settings, DUKCAPIL)
        kabkota = unit.removeprefix(DUKCAPIL)
        expect_key(raw, f"ektp.{kabkota}.{kind}")
        return unit, kabkota

    def _write(
        self,
        message_id: str,
        unit: str,
        kabkota: str,
        packet_id: str,
        verdict: ektp.Verdict,
        now: datetime,
        fields: CaptureFields | None = None,
        nik: str | None = None,
    ) -> CaptureWrite:
        receipt, status = ektp.answers(message_id, unit, kabkota, packet_id, verdict, now=now, nik=nik)
        return CaptureWrite(
            verdict,
            fields,
            receipt,
            [db.Outgoing("receipts", unit, receipt), db.Outgoing("events", status.ROUTING_KEY, status)],
        )

    async def on_enrolment_packet(
        self, packet: EnrolmentPacket, raw: aio_pika.abc.AbstractIncomingMessage
    ) -> None:
        messaging.check_envelope(raw, packet)
        unit, kabkota = self._dukcapil(raw, "packet")
        now = self.clock()
        region = ektp.region_problems(packet, kabkota, today=now.astimezone(WIB).date())
        templates = ektp.template_problems(packet.biometrics)
        hash_ = ektp.content_hash(packet)
        fields = CaptureFields(
            packet.nik,
            hash_,
            packet.station_id,
            packet.demographics.model_dump_json(),
            json.dumps(ektp.modalities(packet.biometrics)),
            packet.captured_at,
        )

        def decide(capture: ektp.Capture | None) -> CaptureWrite:
            verdict = ektp.intake(
                capture,
                hash_=hash_,
                region=region,
                templates=templates,
                now=now,
                retried=messaging.delivery_count(raw) > 0,
            )
            known = capture.nik if capture else None
            # the NIK the registry keeps for the capture: a refused packet's is not it
            nik = known if verdict.refused or verdict.already_received else packet.nik
            return self._write(packet.message_id, unit, kabkota, packet.packet_id, verdict, now, fields, nik)

        try:
            saved, first = await first_try(
                lambda: self.captures.save_capture(
                    packet.message_id, "packet", kabkota, packet.packet_id, decide
                ),
                "save capture",
                attempts=3,
            )
        except db.TRANSIENT_ERRORS:
            await self._fault(raw, packet.message_id, unit, kabkota, packet.packet_id, now)
            raise
        await self.answer_again(saved.receipt if saved.duplicate else None, first, raw, unit)
        if saved.forward:
            # Not through the outbox: the templates must not rest in the registry's tables. Acked only
            # after this confirm, so a crash here brings the packet back and it is forwarded again.
            await self.tell(ektp.forward(packet, kabkota, hash_, now=now))

    async def _fault(
        self,
        raw: aio_pika.abc.AbstractIncomingMessage,
        message_id: str,
        unit: str,
        kabkota: str,
        packet_id: str,
        now: datetime,
    ) -> None:
        """The centre failed (database down, dedup's queue full): PACKET_RETRY, or after the limit a failure."""
        attempt = messaging.delivery_count(raw) + 1
        final = attempt >= self.settings.packet_retry_limit
        verdict = ektp.given_up(None, now=now) if final else ektp.retrying(now=now)
        receipt, status = ektp.answers(f"{message_id}#{attempt}", unit, kabkota, packet_id, verdict, now=now)
        try:
            await self.tell(receipt, receipt_to=unit)
            await self.tell(status)
        except Exception:
            log.exception("could not announce a packet retry", extra={"packet_id": packet_id})
        if final:
            raise PermanentError(codes.RETRIES_EXHAUSTED, f"after {attempt} attempts", answered=True)

    async def on_capture_report(
        self, report: RegionalStatusReported | PrintEventReported, raw: aio_pika.abc.AbstractIncomingMessage
    ) -> None:
        kind = "status" if isinstance(report, RegionalStatusReported) else "print"
        messaging.check_envelope(raw, report)
        unit, kabkota = self._dukcapil(raw, kind)
        now = self.clock()

        def decide(capture: ektp.Capture | None) -> CaptureWrite:
            verdict = ektp.report(capture, EktpStatus(report.status), now=now)
            nik = capture.nik if capture else None
            return self._write(report.message_id, unit, kabkota, report.packet_id, verdict, now, nik=nik)

        saved, first = await first_try(
            lambda: self.captures.save_capture(report.message_id, kind, kabkota, report.packet_id, decide),
            "save capture report",
        )
        await self.answer_again(saved.receipt if saved.duplicate else None, first, raw, unit)

    async def on_dedup_verdict(
        self, verdict: EnrolmentVerdict, raw: aio_pika.abc.AbstractIncomingMessage
    ) -> None:
        """Dedup decided a capture: the capture moves (if the move is legal) and its office is told."""
        messaging.check_envelope(raw, verdict)
        messaging.require_publisher(raw, self.settings.service_user("dedup"))
        unit, kabkota = f"{DUKCAPIL}{verdict.kabkota}", verdict.kabkota
        now = self.clock()

        def decide(capture: ektp.Capture | None) -> CaptureWrite:
            moved = ektp.report(capture, EktpStatus(verdict.status), now=now)
            return self._write(
                verdict.message_id, unit, kabkota, verdict.packet_id, moved, now, nik=verdict.nik
            )

        await db.retrying(
            lambda: self.captures.save_capture(
                verdict.message_id, "verdict", kabkota, verdict.packet_id, decide
            ),
            what="save dedup verdict",
        )
        # A verdict seen before (redelivered, or sent again by dedup's relay after a crash) was told to the
        # office through the outbox the first time: telling it again would answer the office twice.


def build_router(registry: Registry) -> RabbitRouter:
    router = RabbitRouter()

    @router.subscriber(
        messaging.REGISTRY_SDP.subscribe_to(),
        messaging.INGEST,
        channel=messaging.REGISTRY_SDP.channel(),
        title="registry.sdp",
        ack_policy=messaging.ACK_POLICY,
        description="UPT daily inmate submissions, one message per part.",
    )
    async def on_sdp_submission(submission: SdpSubmission, msg: RabbitMessage) -> None:
        await registry.on_sdp_submission(submission, msg.raw_message)

    @router.subscriber(
        messaging.REGISTRY_EKTP.subscribe_to(),
        messaging.INGEST,
        channel=messaging.REGISTRY_EKTP.channel(),
        title="registry.ektp",
        ack_policy=messaging.ACK_POLICY,
        description="e-KTP enrolment packets from Dukcapil kab/kota.",
    )
    async def on_enrolment_packet(packet: EnrolmentPacket, msg: RabbitMessage) -> None:
        await registry.on_enrolment_packet(packet, msg.raw_message)

    @router.subscriber(
        messaging.REGISTRY_EKTP_STATUS.subscribe_to(),
        messaging.INGEST,
        title="registry.ektp-status",
        ack_policy=messaging.ACK_POLICY,
        description="Regional progress with a capture (ektp.<kabkota>.status).",
    )
    async def on_regional_status(report: RegionalStatusReported, msg: RabbitMessage) -> None:
        await registry.on_capture_report(report, msg.raw_message)

    @router.subscriber(
        messaging.REGISTRY_EKTP_PRINT.subscribe_to(),
        messaging.INGEST,
        title="registry.ektp-print",
        ack_policy=messaging.ACK_POLICY,
        description="Card printing progress (ektp.<kabkota>.print).",
    )
    async def on_print_event(report: PrintEventReported, msg: RabbitMessage) -> None:
        await registry.on_capture_report(report, msg.raw_message)

    @router.subscriber(
        messaging.REGISTRY_EKTP_VERDICTS.subscribe_to(),
        messaging.EVENTS,
        title="registry.ektp-verdicts",
        ack_policy=messaging.ACK_POLICY,
        description="Dedup's verdicts: each capture leaves SENT_FOR_DEDUP and its office is told.",
    )
    async def on_dedup_verdict(verdict: EnrolmentVerdict, msg: RabbitMessage) -> None:
        await registry.on_dedup_verdict(verdict, msg.raw_message)

    # What each sender gets back, for the people who write regional clients (docs/clients.md). The outbox relay
    # publishes these; the declarations only put them in the AsyncAPI document.
    codes = "Every code a receipt may carry, with its reasons, is in docs/error-codes.md."
    router.publisher(
        exchange=messaging.RECEIPTS, routing_key="{upt_id}", schema=SubmissionReceipt,
        title="receipts.{upt_id}:SubmissionReceipt",
        description="To a UPT's queue receipts.<upt_id>, once per SDP part it sent (the same receipt again for "
        f"a resend): accepted, partially accepted or rejected, each refused record with its code. {codes}",
    )  # fmt: skip
    router.publisher(
        exchange=messaging.RECEIPTS, routing_key="dukcapil-{kabkota}", schema=EktpReceipt,
        title="receipts.dukcapil-{kabkota}:EktpReceipt",
        description="To an office's queue receipts.dukcapil-<kabkota>, for every packet, status report and "
        f"print report it sent, and again when dedup decides a capture: its status, or the codes that refused "
        f"it. {codes}",
    )  # fmt: skip

    return router


def unit_of_routing_key(key: str) -> str | None:
    """The unit a routing key on `ingest` names. The broker lets only that unit's user publish with it (topic
    permissions), so it names the sender even when the message carries no user_id."""
    parts = key.split(".")
    if len(parts) != 3 or not parts[1]:
        return None
    if parts[0] == "sdp" and parts[1].startswith(UPT):
        return parts[1]
    if parts[0] == "ektp" and parts[1].isdigit():
        return f"{DUKCAPIL}{parts[1]}"
    return None


def reply_id(raw_message_id: str | None, body: object, raw_body: bytes) -> str:
    """What the answer is in reply to: the message id property, else the id the body names (what the sender
    knows it by), else one derived from the body."""
    if raw_message_id:
        return raw_message_id
    named = body.get("message_id") if isinstance(body, dict) else None
    if isinstance(named, str) and 0 < len(named) <= 128 and named.isprintable():
        return named
    return derive_message_id("unnamed", raw_body)


def build_answer(registry: Registry) -> messaging.Answer:
    """Answers a unit whose message could not even be read, so that it knows to resend."""

    async def answer(letter: DeadLetter) -> None:
        raw = letter.raw
        key = raw.routing_key or ""
        unit = registry.settings.unit_of_user(raw.user_id or "") if raw.user_id else unit_of_routing_key(key)
        if unit is None:
            return
        try:
            body = json.loads(raw.body)
        except (ValueError, RecursionError):
            body = None
        in_reply_to = reply_id(raw.message_id, body, raw.body)
        now = registry.clock()
        if unit.startswith(UPT) and key.startswith("sdp."):
            receipt, status = sdp.refusal(
                in_reply_to,
                unit,
                letter.problem,
                letter.detail,
                now=now,
                body=body if isinstance(body, dict) else None,
            )
            await registry.tell(receipt, receipt_to=unit)
            await registry.tell(status)
        elif unit.startswith(DUKCAPIL) and key.startswith("ektp."):
            named = body.get("packet_id") if isinstance(body, dict) else None
            packet_id = named if isinstance(named, str) and len(named) <= 64 else None
            refused = [sdp.problem_entry(letter.problem, detail=letter.detail)]
            answer_, event = ektp.answers(
                in_reply_to,
                unit,
                unit.removeprefix(DUKCAPIL),
                packet_id,
                ektp.Verdict(None, refused=refused),
                now=now,
            )
            await registry.tell(answer_, receipt_to=unit)
            await registry.tell(event)

    return answer

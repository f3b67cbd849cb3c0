"""Translates broker messages to registry decisions and back."""

from __future__ import annotations

import json

from faststream.rabbit import RabbitBroker, RabbitRouter
from faststream.rabbit.annotations import RabbitMessage

from shared import db, messaging, problems
from shared.contracts import WIB, SdpSubmission, SubmissionProcessed, derive_message_id
from shared.messaging import DeadLetter, PermanentError
from shared.runtime import Clock, utcnow

from . import domain
from .config import Settings
from .store import StoredSubmission, SubmissionStore


def sender_unit(user_id: str | None, settings: Settings) -> str:
    """The sending unit, from the user id the broker validated; never from the payload."""
    unit = settings.unit_of_user(user_id or "")
    if unit is None:
        raise PermanentError(
            problems.SENDER_NOT_ALLOWED, f"user {user_id!r} is not a unit of this installation"
        )
    return unit


def build_router(
    store: SubmissionStore, settings: Settings, broker: RabbitBroker, *, clock: Clock = utcnow
) -> RabbitRouter:
    router = RabbitRouter()

    @router.subscriber(
        messaging.REGISTRY_SDP.subscribe_to(),
        messaging.INGEST,
        title="registry.sdp",
        ack_policy=messaging.ACK_POLICY,
        description="UPT daily inmate submissions, one message per part.",
    )
    async def on_sdp_submission(submission: SdpSubmission, msg: RabbitMessage) -> None:
        raw = msg.raw_message
        messaging.check_envelope(raw, submission)
        sender = sender_unit(raw.user_id, settings)
        if raw.routing_key != SdpSubmission.ROUTING_KEY.format(upt_id=sender):
            raise PermanentError(problems.ROUTING_KEY_MISMATCH, f"routing key {raw.routing_key!r}")
        now = clock()
        assessment = domain.assess(submission, sender, today=now.astimezone(WIB).date())
        out = domain.outcome(submission, sender, assessment, now=now)
        outgoing = [
            db.Outgoing("receipts", sender, out.receipt),
            db.Outgoing("events", SubmissionProcessed.ROUTING_KEY, out.status),
        ]
        if out.accepted is not None:
            outgoing.append(db.Outgoing("events", out.accepted.ROUTING_KEY, out.accepted))
        stored = StoredSubmission(
            message_id=submission.message_id,
            sender=sender,
            status=out.status,
            receipt=out.receipt,
            records=assessment.accepted,
            outgoing=outgoing,
        )
        earlier = await db.retrying(lambda: store.save(stored), what="save submission")
        if earlier is not None:
            # The same part again (a resend or a redelivery): nothing changes, the sender hears the same answer.
            await messaging.publish(
                broker,
                earlier,
                exchange=messaging.RECEIPTS,
                routing_key=sender,
                user_id=messaging.broker_user(settings.amqp_url),
            )

    return router


def build_answer(broker: RabbitBroker, settings: Settings, *, clock: Clock = utcnow) -> messaging.Answer:
    """Answers a unit whose message could not even be read, so that it knows to resend."""

    async def answer(letter: DeadLetter) -> None:
        raw = letter.raw
        unit = settings.unit_of_user(raw.user_id or "")
        if unit is None or not (raw.routing_key or "").startswith("sdp."):
            return
        try:
            body = json.loads(raw.body)
        except ValueError:
            body = None
        in_reply_to = raw.message_id or derive_message_id("unnamed", raw.body)
        receipt, status = domain.refusal(
            in_reply_to,
            unit,
            letter.problem,
            letter.detail,
            now=clock(),
            body=body if isinstance(body, dict) else None,
        )
        user = messaging.broker_user(settings.amqp_url)
        await messaging.publish(broker, receipt, exchange=messaging.RECEIPTS, routing_key=unit, user_id=user)
        await messaging.publish(
            broker, status, exchange=messaging.EVENTS, routing_key=status.ROUTING_KEY, user_id=user
        )

    return answer

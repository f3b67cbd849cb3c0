"""Topology arguments and the classification of failures into dead letters or retries."""

import json

import pydantic
import pytest

from shared import messaging, problems
from shared.contracts import SdpSubmission


def test_every_consumer_queue_is_quorum_with_limit_dlx_and_at_least_once_dead_lettering() -> None:
    for spec in messaging.QUEUES:
        args = spec.arguments()
        if spec.kind == "stream":
            assert args["x-queue-type"] == "stream"
            continue
        assert args["x-queue-type"] == "quorum"
        assert args["x-delivery-limit"] > 0
        assert args["x-overflow"] == "reject-publish"
        if spec.dead_letters:
            assert args["x-dead-letter-exchange"] == "dead"
            assert args["x-dead-letter-strategy"] == "at-least-once"
        else:  # the queues that hold dead letters must not feed them back into `dead`
            assert "x-dead-letter-exchange" not in args
            assert spec.bindings[0][0] == "dead"


def test_receipt_queues_are_per_sender_and_classic_unless_asked() -> None:
    spec = messaging.receipts_queue("upt-3273-1")
    assert spec.name == "receipts.upt-3273-1"
    assert spec.bindings == (("receipts", "upt-3273-1"),)
    assert spec.arguments()["x-queue-type"] == "classic"
    assert messaging.receipts_queue("upt-3273-1", "quorum").arguments()["x-queue-type"] == "quorum"


def schema_error() -> pydantic.ValidationError:
    with pytest.raises(pydantic.ValidationError) as caught:
        SdpSubmission.model_validate({"message_id": "m", "upt_id": "UPT 1!", "records": "3273011503850007"})
    return caught.value


def test_permanent_failures_are_recognised_and_described_without_values() -> None:
    problem, detail = messaging.classify(schema_error(), json.dumps({"a": 1}).encode())  # type: ignore[misc]
    assert problem is problems.MESSAGE_SCHEMA
    assert "upt_id" in detail
    assert "UPT 1!" not in detail
    assert "3273011503850007" not in detail
    assert messaging.classify(schema_error(), b"\xff\xfe")[0] is problems.MESSAGE_NOT_JSON  # type: ignore[index]
    err = messaging.PermanentError(problems.SENDER_MISMATCH, "x")
    assert messaging.classify(err, b"{}") == (problems.SENDER_MISMATCH, "x")


def test_other_failures_are_retried() -> None:
    assert messaging.classify(ConnectionError("db down"), b"{}") is None
    assert messaging.classify(RuntimeError("bug"), b"{}") is None


def test_the_user_name_is_read_from_the_broker_url() -> None:
    assert messaging.broker_user("amqp://svc-registry:p%40ss@h:5672/simpul") == "svc-registry"

"""Deciding micro-batches of captures against a seeded gallery, with the simulator's truth."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import numpy as np

from services.dedup.domain.verdicts import Finding
from services.dedup.enrolment import Engine, verdict_event
from services.dedup.search import Gallery
from shared.contracts import EnrolmentAccepted
from shared.ektp import EktpStatus
from sim import gallery as seeding
from sim.biometrics import Captures, b64
from tests.builders import packets

NOW = datetime(2026, 11, 20, 3, 0, tzinfo=UTC)


def biometrics(c: Captures, i: int) -> dict[str, Any]:
    return {
        "fingers": [{"position": p + 1, "embedding": b64(c.fingers[i, p]), "quality": 80} for p in range(10)],
        "irises": [
            {"eye": eye, "code": b64(c.iris_codes[i, e]), "mask": b64(c.iris_masks[i, e]), "quality": 80}
            for e, eye in enumerate(("right", "left"))
        ],
        "face": {"embedding": b64(c.face[i]), "quality": 80},
    }


def accepted(body: dict[str, Any], **changes: Any) -> EnrolmentAccepted:
    fields = {k: body[k] for k in ("packet_id", "kabkota", "station_id", "nik", "demographics", "biometrics")}
    return EnrolmentAccepted.model_validate(
        {
            "message_id": f"m-{body['packet_id']}",
            "produced_at": NOW,
            "captured_at": body["captured_at"],
            "received_at": NOW,
            **fields,
            **changes,
        }
    )


def seeded_engine(n: int = 400) -> Engine:
    people, rng = seeding.identities_of_batch(8, 0, n)
    niks, _ = seeding.niks_for(8, 0, n, ["3273"])
    gallery = Gallery(128, 64)
    gallery.add(seeding.as_templates(seeding.MODEL.capture(rng, people)), list(range(1, n + 1)), niks)
    return Engine(gallery)


def test_a_batch_is_decided_against_the_gallery_and_against_itself() -> None:
    engine = seeded_engine()
    people, _ = seeding.identities_of_batch(8, 0, 400)
    rng = np.random.default_rng(77)
    again = seeding.MODEL.capture(rng, people.take(np.array([3, 4])))
    newcomer = seeding.MODEL.capture(rng, seeding.MODEL.identities(rng, 1))
    bodies = packets(5, seed=31)
    holder_nik = engine.gallery.niks[9]
    batch = [
        accepted(bodies[0], biometrics=biometrics(again, 0)),  # person 3 under a new NIK
        accepted(bodies[1], biometrics=biometrics(newcomer, 0)),  # somebody new
        accepted(bodies[2], biometrics=biometrics(newcomer, 0)),  # ... again in the same batch, another NIK
        accepted(bodies[3], biometrics=biometrics(again, 1), nik=holder_nik),  # person 4 using person 9's NIK
        accepted(bodies[4], biometrics={"fingers": [], "irises": [], "face": None}),  # nothing to compare
    ]
    size = engine.gallery.size
    decided = engine.decide_batch(batch)
    got = [(d.verdict.status, d.verdict.finding) for d in decided]
    assert got == [
        (EktpStatus.DUPLICATE_RECORD, Finding.ONE_TO_ONE),
        (EktpStatus.PRINT_READY_RECORD, Finding.UNIQUE),
        (EktpStatus.DUPLICATE_RECORD, Finding.ONE_TO_ONE),
        (EktpStatus.DUPLICATE_RECORD, Finding.ONE_TO_ONE),
        (EktpStatus.SEARCH_FAILURE_AT_CENTRAL, Finding.NOTHING_TO_COMPARE),
    ]
    assert decided[0].matches[0].row == 3
    assert decided[1].row == size
    assert engine.gallery.size == size + 1
    assert decided[2].matches[0].row == size  # caught within the batch
    assert decided[3].matches[0].row == 4

    event = verdict_event(decided[0], {}, engine.gallery, now=NOW, message_id="v-1")
    assert event.candidates[0].nik == engine.gallery.niks[3]
    assert event.candidates[0].person_id == 4
    assert event.candidates[0].face_cosine is not None
    assert event.candidates[0].face_cosine > 0.5
    failed = verdict_event(decided[4], {}, engine.gallery, now=NOW, message_id="v-5")
    assert failed.finding.startswith("nothing_to_compare")

    engine.rollback(size)
    assert engine.gallery.size == size
    assert engine.gallery.candidates(engine.gallery.view().take(np.array([0])), 5)[0].max() < size


def test_a_nik_held_by_someone_else_with_a_new_face_is_a_duplicate_nik() -> None:
    engine = seeded_engine()
    rng = np.random.default_rng(78)
    stranger = seeding.MODEL.capture(rng, seeding.MODEL.identities(rng, 1))
    body = packets(1, seed=32)[0]
    d = engine.decide_batch([accepted(body, biometrics=biometrics(stranger, 0), nik=engine.gallery.niks[7])])[
        0
    ]
    assert (d.verdict.status, d.verdict.finding) == (EktpStatus.DUPLICATE_RECORD, Finding.DUPLICATE_NIK)
    assert d.matches[0].row == 7


def test_unreadable_templates_are_left_out_and_the_rest_decides() -> None:
    engine = seeded_engine()
    people, _ = seeding.identities_of_batch(8, 0, 400)
    again = seeding.MODEL.capture(np.random.default_rng(79), people.take(np.array([12])))
    bio = biometrics(again, 0)
    bio["face"]["embedding"] = b64(np.full(128, np.nan, np.float32))
    bio["fingers"][0]["embedding"] = "not base64!"
    d = engine.decide_batch([accepted(packets(1, seed=33)[0], biometrics=bio)])[0]
    assert d.verdict.status is EktpStatus.DUPLICATE_RECORD
    assert d.matches[0].row == 12
    assert d.probe is not None
    assert len(d.probe.unusable) == 2
    assert d.probe.usable == 2 + 9

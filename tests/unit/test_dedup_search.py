"""The cascade search finds what the exact brute force finds, on the simulator's ground truth."""

from __future__ import annotations

import numpy as np

from bench.templates import templates
from services.dedup.domain import biometrics as bio
from services.dedup.search import Gallery
from sim.biometrics import TemplateModel

MODEL = TemplateModel()


def test_cascade_agrees_with_brute_force_on_mates_and_strangers() -> None:
    rng = np.random.default_rng(5)
    people = MODEL.identities(rng, 3000)
    gallery = Gallery(128, 64)
    gallery.add(templates(MODEL.capture(rng, people)))
    assert gallery.size == 3000
    mated = templates(MODEL.capture(rng, people.take(np.arange(40))))  # re-enrolments of rows 0..39
    strangers = templates(MODEL.capture(rng, MODEL.identities(rng, 40)))
    limits = bio.Thresholds.for_gallery(gallery.size, duplicate_fpir=1e-4, adjudicate_fpir=1e-2)

    fast = gallery.search(mated, bio.DEFAULT_MODEL, k=50)
    exact = gallery.exact(mated, bio.DEFAULT_MODEL)
    for i, (f, e) in enumerate(zip(fast, exact, strict=True)):
        assert f[0].row == e[0].row == i
        assert f[0].llr == e[0].llr >= limits.duplicate
        assert f[0].modalities == 2 + 1 + 10

    for f, e in zip(
        gallery.search(strangers, bio.DEFAULT_MODEL, k=50),
        gallery.exact(strangers, bio.DEFAULT_MODEL),
        strict=True,
    ):
        assert f[0].llr <= e[0].llr < limits.adjudicate


def test_a_probe_without_face_or_fingers_is_compared_with_everyone_by_iris() -> None:
    rng = np.random.default_rng(6)
    people = MODEL.identities(rng, 500)
    gallery = Gallery(128, 64, capacity=10)  # grows as people are added
    for chunk in np.array_split(np.arange(500), 4):
        gallery.add(templates(MODEL.capture(rng, people.take(chunk))))
    probe = templates(MODEL.capture(rng, people.take(np.array([321]))))
    eyes_only = bio.Templates(
        probe.face * 0,
        np.zeros(1, bool),
        probe.fingers * 0,
        np.zeros((1, 10), bool),
        probe.iris_codes,
        probe.iris_masks,
    )
    assert gallery.candidates(eyes_only, 20)[0].size == 500
    best = gallery.search(eyes_only, bio.DEFAULT_MODEL)[0][0]
    assert best.row == 321
    assert best.modalities == 2


def test_an_empty_gallery_finds_nobody() -> None:
    rng = np.random.default_rng(7)
    probe = templates(MODEL.capture(rng, MODEL.identities(rng, 2)))
    assert Gallery(128, 64).search(probe, bio.DEFAULT_MODEL) == [[], []]

"""Exact biometric comparison and fusion, against the simulator's ground truth."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bench.templates import templates
from services.dedup.domain import biometrics as bio
from sim.biometrics import TemplateModel, hamming

MODEL = TemplateModel()


def two_captures(n: int, seed: int = 3) -> tuple[bio.Templates, bio.Templates]:
    rng = np.random.default_rng(seed)
    people = MODEL.identities(rng, n)
    return templates(MODEL.capture(rng, people)), templates(MODEL.capture(rng, people))


def test_packed_iris_distance_equals_the_plain_reference() -> None:
    first, second = two_captures(12)
    for eye in range(2):
        got = bio.iris_distances(
            first.iris_codes[0, eye],
            first.iris_masks[0, eye],
            second.iris_codes[:, eye],
            second.iris_masks[:, eye],
        )
        want = [
            hamming(
                first.iris_codes[0, eye],
                first.iris_masks[0, eye],
                second.iris_codes[j, eye],
                second.iris_masks[j, eye],
            )
            for j in range(12)
        ]
        assert got == pytest.approx(want, abs=1e-6)
    assert got[0] < 0.35 < min(got[1:])  # the mate, then strangers


def test_a_mask_that_covers_everything_is_not_compared() -> None:
    first, second = two_captures(3)
    blind = np.zeros_like(second.iris_masks[:, 0])
    got = bio.iris_distances(first.iris_codes[0, 0], first.iris_masks[0, 0], second.iris_codes[:, 0], blind)
    assert np.isnan(got).all()


def test_fused_scores_separate_mates_from_strangers_at_a_million() -> None:
    first, second = two_captures(150)
    limits = bio.Thresholds.for_gallery(1_000_000, duplicate_fpir=1e-4, adjudicate_fpir=1e-2)
    mates, strangers = [], []
    for i in range(150):
        llr = bio.DEFAULT_MODEL.fuse(bio.compare(first.take(np.array([i])), second))
        mates.append(llr[i])
        strangers += np.delete(llr, i).tolist()
    assert min(mates) >= limits.duplicate
    assert max(strangers) < limits.adjudicate


def test_missing_modalities_add_nothing_and_are_counted() -> None:
    first, second = two_captures(5)
    probe = first.take(np.array([0]))
    no_face_no_fingers = bio.Templates(
        probe.face * 0,
        np.zeros(1, bool),
        probe.fingers * 0,
        np.zeros((1, 10), bool),
        probe.iris_codes,
        probe.iris_masks,
    )
    scores = bio.compare(no_face_no_fingers, second)
    assert bio.DEFAULT_MODEL.modalities(scores).tolist() == [2] * 5  # two eyes each
    llr = bio.DEFAULT_MODEL.fuse(scores)
    assert llr[0] > 30
    assert (llr[1:] < 0).all()

    nothing = bio.Templates(
        probe.face * 0,
        np.zeros(1, bool),
        probe.fingers * 0,
        np.zeros((1, 10), bool),
        probe.iris_codes,
        np.zeros_like(probe.iris_masks),
    )
    scores = bio.compare(nothing, second)
    assert bio.DEFAULT_MODEL.modalities(scores).tolist() == [0] * 5
    assert bio.DEFAULT_MODEL.fuse(scores).tolist() == [0.0] * 5


def test_each_comparison_is_capped_and_rises_towards_same() -> None:
    face = bio.DEFAULT_MODEL.face
    values = face.llr(np.array([-0.5, 0.0, 0.3, 0.6, 0.79, 0.99], np.float32))
    assert (np.diff(values) >= 0).all()
    assert values.max() <= face.cap
    assert values.min() >= -face.cap
    iris = bio.DEFAULT_MODEL.iris
    assert (np.diff(iris.llr(np.array([0.1, 0.25, 0.4, 0.6], np.float32))) <= 0).all()


def test_thresholds_follow_the_gallery_size() -> None:
    small = bio.Thresholds.for_gallery(100_000, duplicate_fpir=1e-4, adjudicate_fpir=1e-2)
    large = bio.Thresholds.for_gallery(1_000_000, duplicate_fpir=1e-4, adjudicate_fpir=1e-2)
    assert large.duplicate - small.duplicate == pytest.approx(math.log(10))
    assert small.adjudicate < small.duplicate
    with pytest.raises(ValueError, match="duplicate_fpir"):
        bio.Thresholds.for_gallery(10, duplicate_fpir=1e-2, adjudicate_fpir=1e-4)

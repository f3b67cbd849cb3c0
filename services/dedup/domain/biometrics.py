"""Exact biometric comparison and fusion: the accuracy reference every faster search is measured against.

Scores per modality, for one probe against many gallery entries (numpy, no I/O):
- iris: masked fractional Hamming distance, the best over rotations of up to `IRIS_SHIFTS` angular columns
  (the probe is rotated, the gallery stays packed as 64-bit words);
- face and fingers: cosine of unit-length embeddings (fingers compared position by position).

Fusion is a likelihood ratio: each modality's score is turned into log(p(score | same person) /
p(score | different people)) with the densities of `ScoreModel`, and the logs are summed over the modalities
both captures have (a declared exception simply contributes nothing). For an exact likelihood ratio the
chance that a different person scores LLR >= t is at most e^-t, so a threshold of ln(N / FPIR) keeps the
false-positive identification rate of a search over N people at or below FPIR: `Thresholds.for_gallery`
re-derives both thresholds as the gallery grows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

IRIS_ROWS, IRIS_COLS = 8, 128  # an IrisCode: 8 radii x 128 angles x 2 phase bits = 2048 bits
IRIS_BYTES = IRIS_ROWS * IRIS_COLS * 2 // 8
IRIS_SHIFTS = 4  # rotations of -4..+4 columns are tried
FINGERS = 10
MIN_IRIS_BITS = 400  # fewer usable bits in common than this: the eyes are not compared

F32 = npt.NDArray[np.float32]
U8 = npt.NDArray[np.uint8]
U64 = npt.NDArray[np.uint64]
Bool = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class Templates:
    """Templates of n people (or captures), with what is present; absent entries hold zeros."""

    face: F32  # (n, face_dim), unit length
    face_present: Bool  # (n,)
    fingers: F32  # (n, 10, finger_dim), unit length
    fingers_present: Bool  # (n, 10)
    iris_codes: U8  # (n, 2, 256)
    iris_masks: U8  # (n, 2, 256); an absent eye has an all-zero mask

    def __len__(self) -> int:
        return int(self.face.shape[0])

    def take(self, index: npt.NDArray[np.intp]) -> Templates:
        return Templates(
            self.face[index],
            self.face_present[index],
            self.fingers[index],
            self.fingers_present[index],
            self.iris_codes[index],
            self.iris_masks[index],
        )


@dataclass(frozen=True)
class Scores:
    """Per-modality comparison scores of one probe against m gallery entries (NaN: not comparable)."""

    iris: F32  # (m, 2) Hamming distance per eye
    face: F32  # (m,) cosine
    fingers: F32  # (m, 10) cosine per position


def _as_words(packed: U8) -> U64:
    return np.ascontiguousarray(packed).view(np.uint64)


_ROW_BITS = IRIS_COLS * 2  # one radius: 128 angles x 2 phase bits, packed little-endian
_ROW_MASK = (1 << _ROW_BITS) - 1


def _rotations(code: U8, mask: U8) -> tuple[U64, U64]:
    """The probe eye rotated by every shift, as 64-bit words: (2*IRIS_SHIFTS+1, 32) each.

    Rotating by s angular columns moves every bit of a radius's 256-bit ring by 2s places, done on each ring
    as one integer (as np.roll of the unpacked bits would, for a fraction of the cost)."""
    out = []
    for packed in (code, mask):
        rings = [int.from_bytes(packed[r * 32 : (r + 1) * 32].tobytes(), "little") for r in range(IRIS_ROWS)]
        rotated = bytearray()
        for shift in range(-IRIS_SHIFTS, IRIS_SHIFTS + 1):
            k = (2 * shift) % _ROW_BITS
            for ring in rings:
                turned = ((ring << k) | (ring >> (_ROW_BITS - k))) & _ROW_MASK if k else ring
                rotated += turned.to_bytes(32, "little")
        out.append(np.frombuffer(bytes(rotated), np.uint64).reshape(2 * IRIS_SHIFTS + 1, -1))
    return out[0], out[1]


def iris_distances(probe_code: U8, probe_mask: U8, codes: U8, masks: U8) -> F32:
    """Masked fractional Hamming distance of one eye against m eyes, best over rotations: (m,), NaN where
    fewer than MIN_IRIS_BITS usable bits overlap at every rotation."""
    m = codes.shape[0]
    if m == 0:
        return np.empty(0, np.float32)
    rotated_codes, rotated_masks = _rotations(probe_code, probe_mask)
    gallery_codes, gallery_masks = _as_words(codes), _as_words(masks)  # (m, 32)
    best = np.full(m, np.nan, np.float32)
    for rc, rm in zip(rotated_codes, rotated_masks, strict=True):
        usable = gallery_masks & rm
        n_usable = np.bitwise_count(usable).sum(axis=1, dtype=np.int32)
        n_differ = np.bitwise_count((gallery_codes ^ rc) & usable).sum(axis=1, dtype=np.int32)
        ok = n_usable >= MIN_IRIS_BITS
        hd = np.where(ok, n_differ / np.maximum(n_usable, 1), np.nan).astype(np.float32)
        best = np.fmin(best, hd)
    return best


def compare(probe: Templates, gallery: Templates, *, irises_of: Bool | None = None) -> Scores:
    """Every modality of probe 0 against every gallery entry (irises only for `irises_of`, if given: the
    costliest comparison, skipped where it cannot change a decision)."""
    m = len(gallery)
    face = np.full(m, np.nan, np.float32)
    if probe.face_present[0]:
        raw = gallery.face @ probe.face[0]
        face = np.where(gallery.face_present, raw, np.nan).astype(np.float32)
    fingers = np.einsum("mfd,fd->mf", gallery.fingers, probe.fingers[0]).astype(np.float32)
    fingers = np.where(gallery.fingers_present & probe.fingers_present[0], fingers, np.nan).astype(np.float32)
    iris = np.full((m, 2), np.nan, np.float32)
    which = np.arange(m) if irises_of is None else np.flatnonzero(irises_of)
    if which.size:
        iris[which] = np.stack(
            [
                iris_distances(
                    probe.iris_codes[0, eye],
                    probe.iris_masks[0, eye],
                    gallery.iris_codes[which, eye],
                    gallery.iris_masks[which, eye],
                )
                for eye in range(2)
            ],
            axis=1,
        )
    return Scores(iris=iris, face=face, fingers=fingers)


@dataclass(frozen=True)
class Gaussian:
    mean: float
    sd: float


@dataclass(frozen=True)
class ModalityModel:
    """Score densities of one modality: same person and different people. `higher_is_same`: cosine (True)
    or distance (False)."""

    genuine: Gaussian
    impostor: Gaussian
    higher_is_same: bool
    cap: float  # no single comparison counts for more than this, either way (the tails are not Gaussian)

    def llr(self, score: F32) -> F32:
        """log p(score | same) - log p(score | different), NaN where the score is NaN. The score is clamped
        to the span between the two means, so the ratio rises steadily towards 'same' and a score beyond
        the typical genuine one is not held against the person."""
        g, i = self.genuine, self.impostor
        low, high = sorted((g.mean, i.mean))
        s = np.clip(score, low, high)
        log_g = -0.5 * ((s - g.mean) / g.sd) ** 2 - math.log(g.sd)
        log_i = -0.5 * ((s - i.mean) / i.sd) ** 2 - math.log(i.sd)
        return np.asarray(np.clip(log_g - log_i, -self.cap, self.cap), dtype=np.float32)


@dataclass(frozen=True)
class ScoreModel:
    iris: ModalityModel
    face: ModalityModel
    finger: ModalityModel

    def fuse(self, scores: Scores) -> F32:
        """Fused log-likelihood ratio per gallery entry; modalities missing on either side add nothing."""
        parts = (
            np.nansum(self.iris.llr(scores.iris), axis=1),
            np.nan_to_num(self.face.llr(scores.face), nan=0.0),
            np.nansum(self.finger.llr(scores.fingers), axis=1),
        )
        return np.asarray(parts[0] + parts[1] + parts[2], dtype=np.float32)

    def iris_ceiling(self) -> float:
        """The most two eyes can add to a fused score."""
        return 2 * self.iris.cap

    def modalities(self, scores: Scores) -> npt.NDArray[np.int32]:
        """How many modality comparisons (eyes, face, fingers) each fused score rests on."""
        counted = (
            (~np.isnan(scores.iris)).sum(axis=1)
            + (~np.isnan(scores.face)).astype(np.int64)
            + (~np.isnan(scores.fingers)).sum(axis=1)
        )
        return np.asarray(counted, dtype=np.int32)


# The densities of the templates as captured (measured on the simulator's capture model by
# `python -m bench.calibrate`; replace with densities measured on real captures).
DEFAULT_MODEL = ScoreModel(
    iris=ModalityModel(Gaussian(0.229, 0.022), Gaussian(0.486, 0.026), higher_is_same=False, cap=20.0),
    face=ModalityModel(Gaussian(0.794, 0.039), Gaussian(0.0, 0.116), higher_is_same=True, cap=15.0),
    finger=ModalityModel(Gaussian(0.760, 0.064), Gaussian(0.0, 0.162), higher_is_same=True, cap=10.0),
)


@dataclass(frozen=True)
class Thresholds:
    """Fused-LLR thresholds for one gallery size: at or above `duplicate` a match is decided; between
    `adjudicate` and `duplicate` a person decides."""

    gallery_size: int
    duplicate: float
    adjudicate: float

    @classmethod
    def for_gallery(cls, gallery_size: int, *, duplicate_fpir: float, adjudicate_fpir: float) -> Thresholds:
        """ln(N / FPIR): P(LLR >= t | different people) <= e^-t, over N comparisons at most FPIR."""
        if not 0 < duplicate_fpir <= adjudicate_fpir < 1:
            raise ValueError("need 0 < duplicate_fpir <= adjudicate_fpir < 1")
        n = max(gallery_size, 1)
        return cls(n, math.log(n / duplicate_fpir), math.log(n / adjudicate_fpir))

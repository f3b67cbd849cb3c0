"""Synthetic biometric templates with realistic score statistics, generated per identity and per capture.

Face and fingerprint embeddings are low-rank plus noise (x = norm(A·z + σ·n)): two captures of one person
share z, so their cosine is high; two people's are nearly orthogonal. IrisCodes encode a smoothed complex
Gaussian field as 2 bits per cell on an 8 × 128 (radius × angle) grid; a recapture keeps a correlated field
and is rotated by a few columns, which gives impostor Hamming distances near 0.5 (sd about 0.03) and
genuine ones near 0.23, as Daugman measured on real irises.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from shared.contracts import FACE_DIM, FINGER_DIM, IRIS_BITS

FACE_RANK, FINGER_RANK = 96, 56
FACE_NOISE, FINGER_NOISE = 0.58, 0.58  # per-capture noise (relative): genuine cosine about 0.75
IRIS_ROWS, IRIS_COLS = 8, 128  # 8 × 128 cells × 2 bits = 2048 bits
IRIS_SMOOTHING = 3.5  # Gaussian width along the angle: about 249 degrees of freedom, as in real irises
IRIS_PAIR_CORRELATION = 0.75  # between two captures of one eye
IRIS_MAX_ROTATION = 2  # columns per capture, so up to 4 between two captures
MATCH_SHIFTS = 2 * IRIS_MAX_ROTATION  # a matcher tries every rotation from -4 to +4 columns
EYELID_SHARE, SPECKLE_SHARE = 0.20, 0.02
assert IRIS_ROWS * IRIS_COLS * 2 == IRIS_BITS
F32 = npt.NDArray[np.float32]


@dataclass(frozen=True)
class Identities:
    """Latent traits of a batch of people; every capture of a person derives from these."""

    face: F32  # (n, FACE_RANK)
    fingers: F32  # (n, 10, FINGER_RANK)
    irises: npt.NDArray[np.complex64]  # (n, 2, IRIS_ROWS, IRIS_COLS)

    def __len__(self) -> int:
        return int(self.face.shape[0])

    def take(self, index: npt.NDArray[np.int64]) -> Identities:
        return Identities(self.face[index], self.fingers[index], self.irises[index])


@dataclass(frozen=True)
class Captures:
    """Templates of one capture per person of a batch."""

    face: F32  # (n, FACE_DIM), unit length
    fingers: F32  # (n, 10, FINGER_DIM), unit length
    iris_codes: npt.NDArray[np.uint8]  # (n, 2, IRIS_BITS // 8)
    iris_masks: npt.NDArray[np.uint8]  # (n, 2, IRIS_BITS // 8)


class TemplateModel:
    """The projections shared by the whole population (the 'sensor' and 'feature extractor')."""

    def __init__(self, seed: int = 7) -> None:
        rng = np.random.default_rng(seed)
        self.face_basis = (rng.standard_normal((FACE_RANK, FACE_DIM)) / np.sqrt(FACE_RANK)).astype(np.float32)
        self.finger_basis = (rng.standard_normal((FINGER_RANK, FINGER_DIM)) / np.sqrt(FINGER_RANK)).astype(
            np.float32
        )
        x = np.arange(IRIS_COLS)
        distance = np.minimum(x, IRIS_COLS - x)
        kernel = np.exp(-0.5 * (distance / IRIS_SMOOTHING) ** 2)
        kernel = np.where(kernel < 1e-9, 0.0, kernel)  # no subnormal float32 weights: they are very slow
        kernel = kernel / np.sqrt((kernel**2).sum())
        # Circular smoothing along the angle as one matrix product: smooth[j] = sum_i white[i] k[(j - i) mod C]
        self.iris_smoothing = kernel[(x[None, :] - x[:, None]) % IRIS_COLS].astype(np.float32)

    def _iris_field(self, rng: np.random.Generator, shape: tuple[int, ...]) -> npt.NDArray[np.complex64]:
        field = np.empty((*shape, IRIS_COLS), np.complex64)
        scale = np.float32(1 / np.sqrt(2))
        for part in (field.real, field.imag):
            white = rng.standard_normal((field.size // IRIS_COLS, IRIS_COLS), dtype=np.float32)
            part[...] = (white @ self.iris_smoothing).reshape(field.shape) * scale  # one 2-D product: BLAS
        return field

    def identities(self, rng: np.random.Generator, n: int) -> Identities:
        return Identities(
            face=rng.standard_normal((n, FACE_RANK)).astype(np.float32),
            fingers=rng.standard_normal((n, 10, FINGER_RANK)).astype(np.float32),
            irises=self._iris_field(rng, (n, 2, IRIS_ROWS)),
        )

    def capture(
        self, rng: np.random.Generator, people: Identities, *, face_noise: float = FACE_NOISE
    ) -> Captures:
        """One capture per person; `face_noise` above the default models an old or poor photograph."""
        n = len(people)
        face = people.face @ self.face_basis
        face += (
            face_noise * rng.standard_normal(face.shape).astype(np.float32) * np.sqrt(FACE_RANK / FACE_DIM)
        )
        fingers = people.fingers @ self.finger_basis
        fingers += (
            FINGER_NOISE
            * rng.standard_normal(fingers.shape).astype(np.float32)
            * np.sqrt(FINGER_RANK / FINGER_DIM)
        )
        rho = np.sqrt(IRIS_PAIR_CORRELATION)  # each capture against the latent eye
        field = rho * people.irises + np.sqrt(1 - rho**2) * self._iris_field(rng, (n, 2, IRIS_ROWS))
        shifts = rng.integers(-IRIS_MAX_ROTATION, IRIS_MAX_ROTATION + 1, size=(n, 2))
        codes = np.empty((n, 2, IRIS_BITS // 8), np.uint8)
        masks = np.empty_like(codes)
        columns = np.arange(IRIS_COLS)
        for eye in range(2):
            # np.roll of each person's eye by its own shift, for everyone at once
            source = (columns[None, :] - shifts[:, eye, None]) % IRIS_COLS  # (n, cols)
            rotated = np.take_along_axis(field[:, eye], source[:, None, :], axis=-1)
            bits = np.stack([rotated.real > 0, rotated.imag > 0], axis=-1)  # (n, rows, cols, 2)
            codes[:, eye] = np.packbits(bits.reshape(n, -1), axis=1, bitorder="little")
            masks[:, eye] = np.packbits(self._mask(rng, n).reshape(n, -1), axis=1, bitorder="little")
        return Captures(_unit(face), _unit(fingers), codes, masks)

    @staticmethod
    def _mask(rng: np.random.Generator, n: int) -> npt.NDArray[np.bool_]:
        """Usable bits: an eyelid sector over part of the upper half, and scattered reflections."""
        usable = np.ones((n, IRIS_ROWS, IRIS_COLS, 2), bool)
        width = int(EYELID_SHARE * IRIS_COLS)
        starts = rng.integers(IRIS_COLS // 8, IRIS_COLS // 2 - width // 2, size=n)
        columns = np.arange(IRIS_COLS)[None, :]
        lid = (columns >= starts[:, None]) & (columns < starts[:, None] + width)  # (n, cols)
        usable[:, IRIS_ROWS // 2 :] &= ~lid[:, None, :, None]
        usable &= rng.random(usable.shape) > SPECKLE_SHARE
        return usable


def _unit(x: F32) -> F32:
    return np.asarray(x / np.linalg.norm(x, axis=-1, keepdims=True), dtype=np.float32)


def b64(data: npt.NDArray[np.generic]) -> str:
    return base64.b64encode(np.ascontiguousarray(data).tobytes()).decode()


def cosine(a: F32, b: F32) -> npt.NDArray[np.float32]:
    return np.asarray((a * b).sum(axis=-1), dtype=np.float32)


def hamming(
    code_a: npt.NDArray[np.uint8],
    mask_a: npt.NDArray[np.uint8],
    code_b: npt.NDArray[np.uint8],
    mask_b: npt.NDArray[np.uint8],
    shifts: int = MATCH_SHIFTS,
) -> float:
    """Masked fractional Hamming distance, the best over rotations of up to `shifts` columns."""
    shape = (IRIS_ROWS, IRIS_COLS, 2)
    a = np.unpackbits(code_a, bitorder="little").reshape(shape)
    ma = np.unpackbits(mask_a, bitorder="little").reshape(shape)
    b = np.unpackbits(code_b, bitorder="little").reshape(shape)
    mb = np.unpackbits(mask_b, bitorder="little").reshape(shape)
    best = 1.0
    for shift in range(-shifts, shifts + 1):
        rb, rmb = np.roll(b, shift, axis=1), np.roll(mb, shift, axis=1)
        usable = ma & rmb
        count = int(usable.sum())
        if count:
            best = min(best, float(((a ^ rb) & usable).sum()) / count)
    return best

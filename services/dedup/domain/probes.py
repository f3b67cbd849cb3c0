"""A capture's templates as the search takes them; whatever cannot be read is left out, and said so."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from shared.contracts import FACE_DIM, FINGER_DIM, IRIS_BITS, Biometrics

from . import biometrics as bio

EYES = {"right": 0, "left": 1}  # as the simulator and the gallery hold them


@dataclass(frozen=True)
class Probe:
    templates: bio.Templates  # one person
    usable: int  # comparable modalities: eyes + face + fingers
    unusable: tuple[str, ...]  # what was sent but could not be used, e.g. "fingers.3: NaN"


def _bytes(text: str, size: int) -> bytes | None:
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw if len(raw) == size else None


def _vector(text: str, dim: int) -> npt.NDArray[np.float32] | None:
    raw = _bytes(text, dim * 4)
    if raw is None:
        return None
    v = np.frombuffer(raw, "<f4").astype(np.float32)
    norm = float(np.linalg.norm(v)) if np.isfinite(v).all() else 0.0
    return v / norm if norm > 0 else None


def probe_of(b: Biometrics) -> Probe:
    face = np.zeros((1, FACE_DIM), np.float32)
    fingers = np.zeros((1, bio.FINGERS, FINGER_DIM), np.float32)
    face_present = np.zeros(1, bool)
    fingers_present = np.zeros((1, bio.FINGERS), bool)
    codes = np.zeros((1, 2, IRIS_BITS // 8), np.uint8)
    masks = np.zeros_like(codes)
    unusable: list[str] = []
    if b.face is not None:
        v = _vector(b.face.embedding, FACE_DIM)
        if v is None:
            unusable.append("face: not readable (length, encoding, NaN or zero)")
        else:
            face[0], face_present[0] = v, True
    for f in b.fingers:
        v = _vector(f.embedding, FINGER_DIM)
        if v is None or fingers_present[0, f.position - 1]:
            unusable.append(f"fingers.{f.position}: not readable or sent twice")
        else:
            fingers[0, f.position - 1], fingers_present[0, f.position - 1] = v, True
    eyes_usable = 0
    for i in b.irises:
        code, mask = _bytes(i.code, IRIS_BITS // 8), _bytes(i.mask, IRIS_BITS // 8)
        bits = int.from_bytes(mask, "little").bit_count() if mask is not None else 0
        if code is None or mask is None or bits < bio.MIN_IRIS_BITS:
            unusable.append(f"irises.{i.eye}: not readable or too little usable")
            continue
        eye = EYES[i.eye]
        codes[0, eye] = np.frombuffer(code, np.uint8)
        masks[0, eye] = np.frombuffer(mask, np.uint8)
        eyes_usable += 1
    t = bio.Templates(face, face_present, fingers, fingers_present, codes, masks)
    usable = eyes_usable + int(face_present.sum()) + int(fingers_present.sum())
    return Probe(t, usable, tuple(unusable))

"""Templates at rest: one person's templates as a fixed binary layout, sealed with AES-256-GCM.

The key comes from the environment (`DEDUP_GALLERY_KEY`, 32 bytes in base64) and never from the database.
Each sealed row is nonce || ciphertext+tag, authenticated together with the person's NIK, so a row copied
onto another person does not open. A known value sealed with the key sits beside the gallery: a wrong key
fails at start, loudly, before anything is searched or written.
"""

from __future__ import annotations

import base64
import binascii
import os
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from .domain import biometrics as bio

NONCE = 12
KEY_CHECK_PLAINTEXT = b"simpul-dedup-gallery-v1"


class VaultKeyError(RuntimeError):
    """The gallery key is missing, malformed, or not the key the gallery was sealed with."""


@dataclass(frozen=True)
class Layout:
    """Byte layout of one person's templates: float16 face and fingers, presence flags, iris codes and masks."""

    face_dim: int
    finger_dim: int

    @property
    def dtype(self) -> np.dtype[np.void]:
        return np.dtype(
            [
                ("face", "<f2", (self.face_dim,)),
                ("fingers", "<f2", (bio.FINGERS, self.finger_dim)),
                ("face_present", "u1"),
                ("fingers_present", "u1", (bio.FINGERS,)),
                ("iris_codes", "u1", (2, bio.IRIS_BYTES)),
                ("iris_masks", "u1", (2, bio.IRIS_BYTES)),
            ]
        )

    @property
    def size(self) -> int:
        return int(self.dtype.itemsize)

    def pack(self, t: bio.Templates) -> npt.NDArray[np.void]:
        rows = np.zeros(len(t), self.dtype)
        rows["face"] = t.face
        rows["fingers"] = t.fingers
        rows["face_present"] = t.face_present
        rows["fingers_present"] = t.fingers_present
        rows["iris_codes"] = t.iris_codes
        rows["iris_masks"] = t.iris_masks
        return rows

    def unpack(self, rows: npt.NDArray[np.void]) -> bio.Templates:
        return bio.Templates(
            rows["face"].astype(np.float32),
            rows["face_present"].astype(bool),
            rows["fingers"].astype(np.float32),
            rows["fingers_present"].astype(bool),
            np.ascontiguousarray(rows["iris_codes"]),
            np.ascontiguousarray(rows["iris_masks"]),
        )


class Vault:
    def __init__(self, key: bytes, layout: Layout) -> None:
        if len(key) != 32:
            raise VaultKeyError("the gallery key must be 32 bytes (AES-256)")
        self._aead = AESGCM(key)
        self.layout = layout

    @classmethod
    def from_environment(cls, layout: Layout, variable: str = "DEDUP_GALLERY_KEY") -> Vault:
        value = os.environ.get(variable, "")
        if not value:
            raise VaultKeyError(f"{variable} is not set: the gallery cannot be opened without its key")
        try:
            key = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise VaultKeyError(f"{variable} is not base64") from exc
        return cls(key, layout)

    @staticmethod
    def new_key() -> str:
        return base64.b64encode(AESGCM.generate_key(bit_length=256)).decode()

    def seal(self, plaintext: bytes, associated: bytes) -> bytes:
        nonce = os.urandom(NONCE)
        return nonce + self._aead.encrypt(nonce, plaintext, associated)

    def open(self, sealed: bytes, associated: bytes) -> bytes:
        try:
            return self._aead.decrypt(sealed[:NONCE], sealed[NONCE:], associated)
        except InvalidTag as exc:
            raise VaultKeyError(
                "a gallery row does not open with this key (or was moved to another person)"
            ) from exc

    def key_check(self) -> bytes:
        return self.seal(KEY_CHECK_PLAINTEXT, b"key-check")

    def verify(self, sealed_check: bytes) -> None:
        """Raise VaultKeyError unless this is the key the gallery was sealed with."""
        try:
            ok = self.open(sealed_check, b"key-check") == KEY_CHECK_PLAINTEXT
        except VaultKeyError:
            ok = False
        if not ok:
            raise VaultKeyError(
                "DEDUP_GALLERY_KEY is not the key this gallery was sealed with; refusing to start"
            )

    def seal_people(self, t: bio.Templates, niks: list[str]) -> list[bytes]:
        rows = self.layout.pack(t)
        return [self.seal(rows[i].tobytes(), nik.encode()) for i, nik in enumerate(niks)]

    def open_people(self, sealed: list[bytes], niks: list[str]) -> bio.Templates:
        raw = b"".join(self.open(s, nik.encode()) for s, nik in zip(sealed, niks, strict=True))
        return self.layout.unpack(np.frombuffer(raw, self.layout.dtype))

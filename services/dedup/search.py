"""1:N search over the whole gallery: a fast first stage, then exact scoring of its candidates.

The first stage keeps a 256-bit binary sketch of every person (random-hyperplane signs: 96 bits of the face
embedding and 16 of each finger's) and scans all of them exhaustively with faiss' binary flat index: on
high-entropy templates an exhaustive scan of compact codes beats graph and inverted-list indexes at equal
recall (research/biometrics.md section 3), and it never partitions the gallery by region, sex or age. A
probe with a face but fewer than four fingers is also looked up in a 128-bit face-only index (its missing
fingers would blur the combined sketch). The candidates are re-scored exactly on every modality
(`domain.biometrics`) and fused. A probe with neither a face nor four fingers is compared exactly with
everyone (mostly by its irises): rare, and slow at scale.

`exact` is the brute-force reference: every probe against every person, no first stage.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import faiss
import numpy as np
import numpy.typing as npt

from .domain import biometrics as bio

COMBINED_FACE_BITS, FINGER_BITS = 96, 16  # in the combined sketch: 96 + 10 x 16 = 256 bits
EXACT_CHUNK = 65_536  # rows compared at once by the brute force
MIN_FINGERS = 4  # fewer fingers than this and no face: the sketches cannot be trusted, compare exactly


@dataclass(frozen=True)
class Match:
    """One gallery person scored against one probe."""

    row: int
    llr: float
    modalities: int
    scores: bio.Scores  # this person's row of scores


class Sketcher:
    """Random hyperplanes shared by gallery and probes (fixed by the seed, so sketches survive restarts)."""

    def __init__(self, face_dim: int, finger_dim: int, seed: int = 20251) -> None:
        rng = np.random.default_rng(seed)
        self.face_planes = rng.standard_normal((face_dim, COMBINED_FACE_BITS)).astype(np.float32)
        self.finger_planes = rng.standard_normal((finger_dim, FINGER_BITS)).astype(np.float32)

    def _face_bits(self, t: bio.Templates, bits: int) -> npt.NDArray[np.bool_]:
        signs = (t.face.astype(np.float32) @ self.face_planes[:, :bits]) > 0
        return np.asarray(signs & t.face_present[:, None])

    def combined(self, t: bio.Templates) -> npt.NDArray[np.uint8]:
        fingers = (t.fingers.astype(np.float32) @ self.finger_planes) > 0  # (n, 10, FINGER_BITS)
        fingers &= t.fingers_present[:, :, None]
        bits = np.concatenate([self._face_bits(t, COMBINED_FACE_BITS), fingers.reshape(len(t), -1)], axis=1)
        return np.packbits(bits, axis=1)


class Gallery:
    """Every enrolled person's templates in memory, with the first-stage indexes kept beside them."""

    def __init__(self, face_dim: int, finger_dim: int, *, capacity: int = 1024) -> None:
        self.sketcher = Sketcher(face_dim, finger_dim)
        self.size = 0
        self.person_ids = np.zeros(capacity, np.int64)
        self.niks: list[str] = []
        self.rows_of_nik: dict[str, list[int]] = {}
        self._face_dim, self._finger_dim = face_dim, finger_dim
        self._alloc(capacity)
        self.index = faiss.IndexBinaryFlat(COMBINED_FACE_BITS + FINGER_BITS * bio.FINGERS)

    def _alloc(self, capacity: int) -> None:
        old = getattr(self, "templates", None)
        # Embeddings are kept in half precision (half the memory); candidates are scored in single precision.
        t = bio.Templates(
            np.zeros((capacity, self._face_dim), np.float16),
            np.zeros(capacity, bool),
            np.zeros((capacity, bio.FINGERS, self._finger_dim), np.float16),
            np.zeros((capacity, bio.FINGERS), bool),
            np.zeros((capacity, 2, bio.IRIS_BYTES), np.uint8),
            np.zeros((capacity, 2, bio.IRIS_BYTES), np.uint8),
        )
        if old is not None:
            for new_array, old_array in zip(_arrays(t), _arrays(old), strict=True):
                new_array[: self.size] = old_array[: self.size]
            ids = np.zeros(capacity, np.int64)
            ids[: self.size] = self.person_ids[: self.size]
            self.person_ids = ids
        self.templates = t

    def add(
        self, t: bio.Templates, person_ids: Sequence[int] | None = None, niks: Sequence[str] | None = None
    ) -> range:
        """Append people (with their gallery ids and NIKs when known); their rows."""
        n = len(t)
        if self.size + n > len(self.templates):
            self._alloc(max(2 * len(self.templates), self.size + n))
        rows = range(self.size, self.size + n)
        for target, source in zip(_arrays(self.templates), _arrays(t), strict=True):
            target[self.size : self.size + n] = source
        self.person_ids[self.size : self.size + n] = person_ids if person_ids is not None else -1
        for row, nik in zip(rows, niks if niks is not None else [""] * n, strict=True):
            self.niks.append(nik)
            if nik:
                self.rows_of_nik.setdefault(nik, []).append(row)
        self.index.add(self.sketcher.combined(t))  # sketched from the embeddings as given
        self.size += n
        return rows

    def truncate(self, size: int) -> None:
        """Forget everyone from row `size` on (people added by a batch whose transaction failed)."""
        if size >= self.size:
            return
        selector = faiss.IDSelectorRange(size, self.size)
        self.index.remove_ids(selector)
        for row in range(size, self.size):
            nik = self.niks[row]
            if nik in self.rows_of_nik:
                self.rows_of_nik[nik] = [r for r in self.rows_of_nik[nik] if r < size]
                if not self.rows_of_nik[nik]:
                    del self.rows_of_nik[nik]
        del self.niks[size:]
        self.size = size

    def view(self) -> bio.Templates:
        t, n = self.templates, self.size
        return bio.Templates(
            t.face[:n],
            t.face_present[:n],
            t.fingers[:n],
            t.fingers_present[:n],
            t.iris_codes[:n],
            t.iris_masks[:n],
        )

    def candidates(self, probes: bio.Templates, k: int) -> list[npt.NDArray[np.intp]]:
        """First stage, one batch: the rows worth scoring exactly, per probe (all rows when the sketches
        cannot be trusted)."""
        if self.size == 0:
            return [np.empty(0, np.intp) for _ in range(len(probes))]
        k = min(k, self.size)
        fingers = probes.fingers_present.sum(axis=1)
        sketchable = probes.face_present | (fingers >= MIN_FINGERS)
        by_sketch = np.full((len(probes), k), -1, np.int64)
        if sketchable.any():
            _, found = self.index.search(self.sketcher.combined(probes.take(np.flatnonzero(sketchable))), k)
            by_sketch[sketchable] = found
        # With few fingers the face carries the search: its exact cosine with everyone, not a sketch of it
        # (a weak photograph of a person may sketch far from their enrolled face).
        face_heavy = probes.face_present & (fingers < MIN_FINGERS)
        by_face = np.full((len(probes), k), -1, np.int64)
        if face_heavy.any():
            by_face[face_heavy] = self._best_faces(probes.face[face_heavy].astype(np.float32), k)
        out = []
        for i in range(len(probes)):
            if not sketchable[i]:
                out.append(np.arange(self.size, dtype=np.intp))
                continue
            rows = np.union1d(by_sketch[i], by_face[i])
            out.append(rows[rows >= 0].astype(np.intp))
        return out

    def _best_faces(self, faces: npt.NDArray[np.float32], k: int) -> npt.NDArray[np.int64]:
        """The k rows whose face is closest (cosine) to each of the given faces, over the whole gallery."""
        rows = np.empty((len(faces), 0), np.int64)
        scores = np.empty((len(faces), 0), np.float32)
        for first in range(0, self.size, EXACT_CHUNK):
            last = min(first + EXACT_CHUNK, self.size)
            chunk = faces @ self.templates.face[first:last].astype(np.float32).T
            chunk[:, ~self.templates.face_present[first:last]] = -np.inf
            scores = np.concatenate([scores, chunk], axis=1)
            rows = np.concatenate([rows, np.broadcast_to(np.arange(first, last), chunk.shape)], axis=1)
            if scores.shape[1] > k:
                keep = np.argpartition(-scores, k - 1, axis=1)[:, :k]
                scores = np.take_along_axis(scores, keep, axis=1)
                rows = np.take_along_axis(rows, keep, axis=1)
        return rows

    def search(
        self,
        probes: bio.Templates,
        model: bio.ScoreModel,
        *,
        k: int = 100,
        top: int = 10,
        floor: float | None = None,
    ) -> list[list[Match]]:
        """Cascade search of a batch: each probe's best `top` matches by fused LLR, best first.

        With a `floor` (the lowest threshold that decides anything), irises are compared only for candidates
        whose face and fingers leave them within reach of it; the others keep their lower score."""
        return [
            self._score(probes.take(np.array([i])), rows, model, top, floor)
            for i, rows in enumerate(self.candidates(probes, k))
        ]

    def exact(self, probes: bio.Templates, model: bio.ScoreModel, *, top: int = 10) -> list[list[Match]]:
        """The brute-force reference: every probe against everyone."""
        out = []
        for i in range(len(probes)):
            probe = probes.take(np.array([i]))
            found: list[Match] = []
            for first in range(0, self.size, EXACT_CHUNK):  # bounded memory at any gallery size
                rows = np.arange(first, min(first + EXACT_CHUNK, self.size), dtype=np.intp)
                found += self._score(probe, rows, model, top)
            out.append(sorted(found, key=lambda m: -m.llr)[:top])
        return out

    def score_rows(
        self, probe: bio.Templates, rows: Sequence[int], model: bio.ScoreModel, *, floor: float | None = None
    ) -> list[Match]:
        """Scores of one probe against given rows (e.g. the holders of its NIK), best first."""
        return self._score(probe, np.asarray(rows, dtype=np.intp), model, len(rows), floor)

    def _score(
        self,
        probe: bio.Templates,
        rows: npt.NDArray[np.intp],
        model: bio.ScoreModel,
        top: int,
        floor: float | None = None,
    ) -> list[Match]:
        if rows.size == 0:
            return []
        c = self.view().take(rows)
        candidates = bio.Templates(
            c.face.astype(np.float32),
            c.face_present,
            c.fingers.astype(np.float32),
            c.fingers_present,
            c.iris_codes,
            c.iris_masks,
        )
        irises_of = None
        if floor is not None:
            partial = model.fuse(bio.compare(probe, candidates, irises_of=np.zeros(len(rows), bool)))
            irises_of = partial + model.iris_ceiling() >= floor
        scores = bio.compare(probe, candidates, irises_of=irises_of)
        llr = model.fuse(scores)
        counted = model.modalities(scores)
        best = np.argsort(-llr, kind="stable")[:top]
        return [
            Match(
                int(rows[j]),
                float(llr[j]),
                int(counted[j]),
                bio.Scores(scores.iris[j : j + 1], scores.face[j : j + 1], scores.fingers[j : j + 1]),
            )
            for j in best
        ]


def _arrays(t: bio.Templates) -> tuple[npt.NDArray[np.generic], ...]:
    return (t.face, t.face_present, t.fingers, t.fingers_present, t.iris_codes, t.iris_masks)

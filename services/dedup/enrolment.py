"""Deciding a micro-batch of captures against the gallery (and against each other).

The batch shares one first-stage scan. Captures are then decided in order; one found unique joins the
in-memory gallery at once, so a second capture of the same person later in the batch is caught. If the
batch's transaction then fails, `rollback` takes those people out again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

import numpy as np
import numpy.typing as npt

from shared import nik as niks
from shared.contracts import EnrolmentAccepted, EnrolmentVerdict, VerdictCandidate
from shared.ektp import EktpStatus

from .domain import biometrics as bio
from .domain.probes import Probe, probe_of
from .domain.verdicts import Candidate, Finding, Verdict, decide, search_failed
from .search import Gallery, Match


@dataclass(frozen=True)
class SearchSettings:
    duplicate_fpir: float = 1e-4
    adjudicate_fpir: float = 1e-2
    first_stage_k: int = 100
    model: bio.ScoreModel = bio.DEFAULT_MODEL


@dataclass(frozen=True)
class Decided:
    packet: EnrolmentAccepted
    probe: Probe | None  # None when the search failed before the templates were read
    verdict: Verdict
    matches: tuple[Match, ...]
    row: int | None  # the gallery row the capture took, when unique
    thresholds: bio.Thresholds
    failure: str = ""  # why the search failed (SEARCH_FAILED)


def nik_contradicts(nik: str, *, sex: niks.Sex, birth_date: date, today: date) -> bool:
    """A well-formed NIK whose encoded sex or birth date differ from what the capture declares."""
    result = niks.check(nik, today=today)
    return bool(result.valid and niks.contradictions(result, sex=sex, birth_date=birth_date))


class Engine:
    def __init__(self, gallery: Gallery, settings: SearchSettings | None = None) -> None:
        self.gallery = gallery
        self.settings = settings or SearchSettings()

    def thresholds(self) -> bio.Thresholds:
        s = self.settings
        return bio.Thresholds.for_gallery(
            self.gallery.size, duplicate_fpir=s.duplicate_fpir, adjudicate_fpir=s.adjudicate_fpir
        )

    def decide_batch(self, packets: list[EnrolmentAccepted]) -> list[Decided]:
        probes = [probe_of(p.biometrics) for p in packets]
        if not packets:
            return []
        batch = bio.Templates(
            *(
                np.concatenate([getattr(p.templates, name) for p in probes])
                for name in ("face", "face_present", "fingers", "fingers_present", "iris_codes", "iris_masks")
            )
        )
        first_stage = self.gallery.candidates(batch, self.settings.first_stage_k)
        start = self.gallery.size
        out: list[Decided] = []
        for packet, probe, rows in zip(packets, probes, first_stage, strict=True):
            out.append(self._decide_one(packet, probe, rows, start))
        return out

    def _decide_one(
        self, packet: EnrolmentAccepted, probe: Probe, rows: npt.NDArray[np.intp], start: int
    ) -> Decided:
        limits = self.thresholds()
        model = self.settings.model
        added = np.arange(start, self.gallery.size, dtype=np.intp)  # unique earlier in this batch
        candidates = np.union1d(rows, added).astype(np.intp)
        matches = (
            tuple(
                self.gallery.score_rows(probe.templates, candidates.tolist(), model, floor=limits.adjudicate)[
                    :10
                ]
            )
            if probe.usable
            else ()
        )
        holders = self.gallery.rows_of_nik.get(packet.nik, [])
        holder_matches = (
            self.gallery.score_rows(probe.templates, holders, model) if holders and probe.usable else []
        )
        verdict = decide(
            nik=packet.nik,
            usable_modalities=probe.usable,
            nik_contradicts=nik_contradicts(
                packet.nik,
                sex=packet.demographics.sex,
                birth_date=packet.demographics.birth_date,
                today=packet.received_at.date(),
            ),
            matches=[self._candidate(m) for m in matches],
            nik_holder=self._candidate(holder_matches[0]) if holder_matches else None,
            thresholds=limits,
        )
        row = None
        if verdict.status is EktpStatus.PRINT_READY_RECORD:
            row = self.gallery.add(probe.templates, [-1], [packet.nik]).start
        evidence = {m.row: m for m in (*matches, *holder_matches)}
        chosen = tuple({c.ref: evidence[c.ref] for c in verdict.candidates}.values())
        return Decided(packet, probe, verdict, chosen, row, limits)

    def _candidate(self, m: Match) -> Candidate:
        return Candidate(self.gallery.niks[m.row], m.llr, m.modalities, ref=m.row)

    def failed(self, packet: EnrolmentAccepted, reason: str) -> Decided:
        """The verdict for a capture whose search kept failing."""
        return Decided(packet, None, search_failed(), (), None, self.thresholds(), reason)

    def rollback(self, size: int) -> None:
        self.gallery.truncate(size)


def verdict_event(
    d: Decided, person_ids: dict[int, int], gallery: Gallery, *, now: datetime, message_id: str
) -> EnrolmentVerdict:
    def opt(x: float) -> float | None:
        return None if np.isnan(x) else round(float(x), 4)

    candidates = [
        VerdictCandidate(
            nik=gallery.niks[m.row],
            person_id=int(person_ids.get(m.row, gallery.person_ids[m.row])),
            llr=round(m.llr, 3),
            modalities=m.modalities,
            iris_hd=[opt(x) for x in m.scores.iris[0]],
            face_cosine=opt(m.scores.face[0]),
            finger_cosines=[opt(x) for x in m.scores.fingers[0]],
        )
        for m in d.matches
    ]
    finding = d.verdict.finding.value
    if d.verdict.finding is Finding.NOTHING_TO_COMPARE and d.probe is not None and d.probe.unusable:
        finding = f"{finding}: {'; '.join(d.probe.unusable)[:400]}"
    if d.failure:
        finding = f"{finding}: {d.failure[:400]}"
    return EnrolmentVerdict(
        message_id=message_id,
        produced_at=now,
        packet_id=d.packet.packet_id,
        kabkota=d.packet.kabkota,
        nik=d.packet.nik,
        status=d.verdict.status,
        finding=finding,
        candidates=candidates,
        person_id=person_ids.get(d.row) if d.row is not None else None,
        gallery_size=d.thresholds.gallery_size,
        duplicate_threshold=round(d.thresholds.duplicate, 3),
        adjudicate_threshold=round(d.thresholds.adjudicate, 3),
        decided_at=now,
    )

"""Simulated capture stations: e-KTP enrolment packets with templates, ground truth and planted faults."""

from __future__ import annotations

import base64
import hashlib
import random
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np

from services.dedup.domain import biometrics as bio
from shared import nik as niks
from shared.contracts import IRIS_BITS
from shared.units import Dukcapil

from . import names
from .biometrics import Captures, Identities, TemplateModel, b64
from .gallery import GallerySpec, as_templates
from .population import make_nik

SENT, REGIONAL, CENTRAL = "SENT_FOR_DEDUP", "ENROLL_FAILURE_AT_REGIONAL", "ENROLL_FAILURE_AT_CENTRAL"
PRINT_READY, DUPLICATE, ADJUDICATE, VALIDATION = (
    "PRINT_READY_RECORD",
    "DUPLICATE_RECORD",
    "ADJUDICATE_RECORD",
    "REQUEST_VALIDATION",
)
# What each planted case is, and the verdict dedup must reach: (status, finding).
TRUTHS: dict[str, tuple[str, str]] = {
    "new": (PRINT_READY, "unique"),  # somebody never enrolled
    "reenrolment": (DUPLICATE, "one_to_one"),  # a gallery person again, under a new NIK
    "third_nik": (DUPLICATE, "one_to_many"),  # someone already holding two NIKs, a third time
    "near_identical": (ADJUDICATE, "grey_zone"),  # a gallery person, weak evidence in the grey zone
    "twin": (PRINT_READY, "unique"),  # another person with a near-identical face
    "nik_reuse": (DUPLICATE, "duplicate_nik"),  # another person under a gallery person's NIK
    "nik_contradiction": (VALIDATION, "nik_contradicts_packet"),  # NIK's sex/birth date differ
}
PLANT_BATCHES = 6  # seeding batches the gallery cases are drawn from
MATED = frozenset({"reenrolment", "third_nik", "near_identical"})  # the same biometrics are in the gallery


@dataclass(frozen=True)
class PacketOptions:
    """What a simulated day of recordings looks like; shares are of all packets."""

    as_of: date
    total: int = 30_000
    seed: int = 2025
    declared_exception_share: float = 0.01  # missing fingers or an eye, declared: still valid
    region_fault_share: float = 0.005  # -> ENROLL_FAILURE_AT_REGIONAL
    template_fault_share: float = 0.01  # -> ENROLL_FAILURE_AT_CENTRAL
    # Ground truth for dedup. Those that need someone already enrolled are planted only with a `gallery`.
    gallery: GallerySpec | None = None
    reenrolment_share: float = 0.01
    third_nik_share: float = 0.001
    near_identical_share: float = 0.003
    twin_share: float = 0.002
    nik_reuse_share: float = 0.002
    nik_contradiction_share: float = 0.003


@dataclass
class PlannedPacket:
    body: dict[str, Any]
    kabkota: str
    expected_status: str = SENT
    expected_codes: set[str] = field(default_factory=set)
    truth: str = "new"  # a key of TRUTHS; what dedup must find (if the registry sends it on)
    gallery_rows: tuple[int, ...] = ()  # the gallery people the capture is of (or shares a NIK/face with)

    @property
    def mated(self) -> bool:
        return self.truth in MATED

    @property
    def packet_id(self) -> str:
        return str(self.body["packet_id"])


def _bad_bytes(n: int) -> str:
    return base64.b64encode(b"\x00" * n).decode()


def _nan_vector(dim: int) -> str:
    return base64.b64encode(struct.pack(f"<{dim}f", *([float("nan")] * dim))).decode()


# Each template fault, the code the registry must give, and how to plant it in a packet's biometrics.
TEMPLATE_FAULTS: tuple[tuple[str, Callable[[dict[str, Any]], None]], ...] = (
    ("TEMPLATE_UNREADABLE", lambda b: b["fingers"][0].update(embedding=_bad_bytes(100))),  # wrong length
    ("TEMPLATE_UNREADABLE", lambda b: b["fingers"][1].update(embedding=_nan_vector(64))),
    ("TEMPLATE_UNREADABLE", lambda b: b["face"].update(embedding=_bad_bytes(512))),  # zero vector
    (
        "TEMPLATE_UNREADABLE",
        lambda b: b["irises"][0].update(mask=_bad_bytes(IRIS_BITS // 8)),
    ),  # mask covers all
    ("TEMPLATE_UNREADABLE", lambda b: b["irises"][1].update(code="not base64!")),
    ("TEMPLATE_LOW_QUALITY", lambda b: b["fingers"][2].update(quality=12)),
    ("TEMPLATE_MISSING", lambda b: b["fingers"].pop(3)),  # no exception declared
    ("TEMPLATE_MISSING", lambda b: b.pop("face")),
    ("TEMPLATE_DUPLICATED", lambda b: b["fingers"].__setitem__(4, dict(b["fingers"][5]))),
    ("EXCEPTION_CONTRADICTED", lambda b: b["exceptions"]["missing_fingers"].append(7)),
)
REGION_FAULTS: tuple[tuple[str, Callable[[dict[str, Any], str], None]], ...] = (
    ("REGION_NOT_SENDER", lambda p, other: p.update(kabkota=other)),
    (
        "ADDRESS_REGION_INCONSISTENT",
        lambda p, other: p["demographics"]["address"].update(district_code=other + "01"),
    ),
    ("NIK_SERIAL_ZERO", lambda p, other: p.update(nik=p["nik"][:12] + "0000")),
    ("NIK_DATE_INVALID", lambda p, other: p.update(nik=p["nik"][:6] + "32" + p["nik"][8:])),
)


class CaptureStations:
    """Every kab/kota's capture stations, producing a day's packets deterministically from a seed."""

    def __init__(
        self, offices: tuple[Dukcapil, ...], options: PacketOptions, model: TemplateModel | None = None
    ):
        self.offices = offices
        self.options = options
        self.model = model or TemplateModel()
        self.rng = random.Random(options.seed)
        self.np_rng = np.random.default_rng(options.seed)
        self.used_niks: set[str] = set()

    def person(self, office: Dukcapil) -> dict[str, Any]:
        rng, as_of = self.rng, self.options.as_of
        female = rng.random() < 0.5
        given = rng.choice(names.FEMALE if female else names.MALE)
        full_name = given if rng.random() < 0.15 else f"{given} {rng.choice(names.SECOND)}"
        birth = as_of - timedelta(days=rng.randint(17 * 365, 80 * 365))
        # Most are registered where they live; movers keep the NIK of their first regency for life.
        nik_region = office.kabkota_code if rng.random() < 0.9 else rng.choice(self.offices).kabkota_code
        district = f"{office.kabkota_code}{rng.randint(1, 20):02d}"
        return {
            "nik": make_nik(rng, nik_region, birth, female, self.used_niks),
            "demographics": {
                "full_name": full_name,
                "birth_place": office.name.split(" ", 2)[-1],
                "birth_date": birth.isoformat(),
                "sex": "P" if female else "L",
                "mother_name": rng.choice(names.MOTHERS),
                "address": {
                    "province_code": office.province_code,
                    "regency_code": office.kabkota_code,
                    "district_code": district,
                    "village_code": f"{district}{rng.choice((1, 2))}{rng.randint(1, 30):03d}",
                    "street": f"Jl. {rng.choice(names.SECOND)} No. {rng.randint(1, 200)}",
                },
            },
        }

    def biometrics(self, captures: Captures, i: int) -> dict[str, Any]:
        rng = self.rng
        return {
            "fingers": [
                {"position": p + 1, "embedding": b64(captures.fingers[i, p]), "quality": rng.randint(55, 99)}
                for p in range(10)
            ],
            "irises": [
                {
                    "eye": eye,
                    "code": b64(captures.iris_codes[i, e]),
                    "mask": b64(captures.iris_masks[i, e]),
                    "quality": rng.randint(60, 99),
                }
                for e, eye in enumerate(("right", "left"))
            ],
            "face": {"embedding": b64(captures.face[i]), "quality": rng.randint(55, 99)},
            "signature_sha256": hashlib.sha256(f"sig-{self.rng.random()}".encode()).hexdigest(),
            "exceptions": {"missing_fingers": [], "missing_irises": [], "reason": None},
        }

    def day(self) -> list[PlannedPacket]:
        """All packets of the day, spread over the offices, with faults planted at the requested shares."""
        o = self.options
        people = self.model.identities(self.np_rng, o.total)
        captures = self.model.capture(self.np_rng, people)
        packets = []
        for i in range(o.total):
            office = self.offices[i % len(self.offices)]
            captured = datetime.combine(o.as_of, datetime.min.time(), tzinfo=UTC) + timedelta(
                minutes=self.rng.randint(0, 600)
            )
            body = {
                # the same day simulated again with other options must not reuse another capture's id
                "packet_id": f"{office.kabkota_code}-{o.as_of:%Y%m%d}-{o.seed}-{o.total}-{i:06d}",
                "kabkota": office.kabkota_code,
                "station_id": f"{office.kabkota_code}-ST{self.rng.randint(1, 12):02d}",
                **self.person(office),
                "biometrics": self.biometrics(captures, i),
                "captured_at": captured.isoformat(),
            }
            packets.append(PlannedPacket(body, office.kabkota_code))
        self.plant(packets)
        return packets

    def plant(self, packets: list[PlannedPacket]) -> None:
        o, rng = self.options, self.rng
        order = list(range(len(packets)))
        rng.shuffle(order)
        cursor = 0

        def take(share: float) -> list[PlannedPacket]:
            nonlocal cursor
            n = round(share * len(packets))
            chosen = [packets[i] for i in order[cursor : cursor + n]]
            cursor += n
            return chosen

        for p in take(o.declared_exception_share):
            if rng.random() < 0.5:
                self._declare_missing(p, [6, 7], [], "amputasi")
            else:
                self._declare_missing(p, [], ["left"], "kelainan mata")
        for p in take(o.region_fault_share):
            code, misplace = rng.choice(REGION_FAULTS)
            other = next(x.kabkota_code for x in rng.sample(self.offices, 2) if x.kabkota_code != p.kabkota)
            misplace(p.body, other)
            p.expected_status, p.expected_codes = REGIONAL, {code}
        for p in take(o.template_fault_share):
            code, fault = rng.choice(TEMPLATE_FAULTS)
            fault(p.body["biometrics"])
            p.expected_status, p.expected_codes = CENTRAL, {code}
        for p in take(o.nik_contradiction_share):
            self._contradict(p)
        if o.gallery is not None:
            self._plant_gallery_truth(o.gallery, take)

    def _contradict(self, p: PlannedPacket) -> None:
        """The NIK says the other sex, or another birth day, than the packet."""
        nik = p.body["nik"]
        day = int(nik[6:8])
        if self.rng.random() < 0.5:
            day = day + 40 if day < 40 else day - 40
        else:
            day = day % 28 + 1 if day < 40 else (day - 40) % 28 + 41
        p.body["nik"] = f"{nik[:6]}{day:02d}{nik[8:12]}{self.rng.randint(5000, 9999):04d}"
        p.truth = "nik_contradiction"

    def _plant_gallery_truth(self, spec: GallerySpec, take: Callable[[float], list[PlannedPacket]]) -> None:
        """Cases that need people already in the gallery. They are drawn from a few seeding batches (chosen at
        random) so that regenerating them stays cheap at any gallery size."""
        o, rng = self.options, self.rng
        batches = rng.sample(spec.batches(), min(PLANT_BATCHES, len(spec.batches())))
        pairs = [pair for pair in spec.legacy_pairs() if any(f <= pair[0] < f + n for _, f, n in batches)]
        paired = {r for pair in pairs for r in pair}
        rows_of = [r for _, f, n in batches for r in range(f, f + n) if r not in paired]
        rng.shuffle(rows_of)
        singles = iter(rows_of)  # the same gallery person is never planted twice in one day

        reenrol = take(o.reenrolment_share)
        third = take(o.third_nik_share)[: len(pairs)]
        chosen_pairs = rng.sample(pairs, len(third))
        near = take(o.near_identical_share)
        twins = take(o.twin_share)
        reuse = take(o.nik_reuse_share)
        mates = [next(singles) for _ in reenrol] + [a for a, _ in chosen_pairs]
        twin_rows = [next(singles) for _ in twins]
        latent = spec.identities(mates + twin_rows)  # one pass over the batches for both
        n = len(mates)
        if mates:
            captures = self.model.capture(self.np_rng, latent.take(np.arange(n)))
            for i, p in enumerate(reenrol + third):
                self._replace_biometrics(p, captures, i)
        for p, row in zip(reenrol, mates, strict=False):
            p.truth, p.gallery_rows = "reenrolment", (row,)
        for p, pair in zip(third, chosen_pairs, strict=True):
            p.truth, p.gallery_rows = "third_nik", pair
        if twins:
            faces = latent.face[n:]
            others = self.model.identities(self.np_rng, len(twins))
            rho = np.float32(0.97)  # the faces of identical twins; fingers and irises are their own
            face = rho * faces + np.float32(np.sqrt(1 - rho**2)) * others.face
            captures = self.model.capture(self.np_rng, Identities(face, others.fingers, others.irises))
            for i, (p, row) in enumerate(zip(twins, twin_rows, strict=True)):
                self._replace_biometrics(p, captures, i)
                p.truth, p.gallery_rows = "twin", (row,)
        if near:
            self._near_identical(spec, near, batches[0])
        rows = [next(singles) for _ in reuse]
        for p, row, nik in zip(reuse, rows, spec.niks(rows), strict=True):
            held = niks.check(nik, today=self.options.as_of)
            assert held.birth_date is not None
            assert held.sex is not None
            p.body["nik"] = nik
            p.body["demographics"].update(sex=held.sex.value, birth_date=held.birth_date.isoformat())
            p.truth, p.gallery_rows = "nik_reuse", (row,)

    def _replace_biometrics(self, p: PlannedPacket, captures: Captures, i: int) -> None:
        p.body["biometrics"] = self.biometrics(captures, i)

    @staticmethod
    def _declare_missing(p: PlannedPacket, fingers: list[int], irises: list[str], reason: str | None) -> None:
        bio_ = p.body["biometrics"]
        bio_["fingers"] = [f for f in bio_["fingers"] if f["position"] not in fingers]
        bio_["irises"] = [i for i in bio_["irises"] if i["eye"] not in irises]
        bio_["exceptions"].update(missing_fingers=list(fingers), missing_irises=list(irises), reason=reason)

    def _near_identical(
        self, spec: GallerySpec, packets: list[PlannedPacket], batch: tuple[int, int, int]
    ) -> None:
        """Gallery people captured again with only an old photograph and one finger (the rest declared
        missing), kept only when the pair's fused score lies inside the grey zone for this gallery: borderline
        cases the search must find and route to a person, never decide alone."""
        limits = bio.Thresholds.for_gallery(spec.count, duplicate_fpir=1e-4, adjudicate_fpir=1e-2)
        low, high = limits.adjudicate + 0.5, limits.duplicate - 0.5
        b, first, size = batch
        people, rng = spec.people(b, size)
        enrolled = as_templates(self.model.capture(rng, people))
        legacy = spec.legacy_count(size)
        candidates = [r for r in self.rng.sample(range(size - legacy), size - legacy) if r >= legacy]
        tries = 48
        for p in packets:
            while candidates:
                r = candidates.pop()
                again = self.model.capture(self.np_rng, people.take(np.full(tries, r)), face_noise=0.8)
                probe = as_templates(again)
                probe.fingers_present[:, 1:] = False
                probe.fingers[:, 1:] = 0
                probe.iris_masks[:] = 0
                fused = bio.DEFAULT_MODEL.fuse(bio.compare(enrolled.take(np.array([r])), probe))
                inside = np.flatnonzero((fused >= low) & (fused < high))
                if inside.size:
                    self._replace_biometrics(p, again, int(inside[0]))
                    self._declare_missing(p, list(range(2, 11)), ["right", "left"], "kusta; kelainan mata")
                    p.truth, p.gallery_rows = "near_identical", (first + r,)
                    break

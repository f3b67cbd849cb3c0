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

from shared.contracts import IRIS_BITS
from shared.units import Dukcapil

from . import names
from .biometrics import Captures, TemplateModel, b64
from .population import make_nik

SENT, REGIONAL, CENTRAL = "SENT_FOR_DEDUP", "ENROLL_FAILURE_AT_REGIONAL", "ENROLL_FAILURE_AT_CENTRAL"


@dataclass(frozen=True)
class PacketOptions:
    """What a simulated day of recordings looks like; shares are of all packets."""

    as_of: date
    total: int = 30_000
    seed: int = 2025
    declared_exception_share: float = 0.01  # missing fingers or an eye, declared: still valid
    region_fault_share: float = 0.005  # -> ENROLL_FAILURE_AT_REGIONAL
    template_fault_share: float = 0.01  # -> ENROLL_FAILURE_AT_CENTRAL


@dataclass
class PlannedPacket:
    body: dict[str, Any]
    kabkota: str
    expected_status: str = SENT
    expected_codes: set[str] = field(default_factory=set)

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
            bio = p.body["biometrics"]
            if rng.random() < 0.5:
                bio["fingers"] = [f for f in bio["fingers"] if f["position"] not in (6, 7)]
                bio["exceptions"].update(missing_fingers=[6, 7], reason="amputasi")
            else:
                bio["irises"] = [i for i in bio["irises"] if i["eye"] != "left"]
                bio["exceptions"].update(missing_irises=["left"], reason="kelainan mata")
        for p in take(o.region_fault_share):
            code, misplace = rng.choice(REGION_FAULTS)
            other = next(x.kabkota_code for x in rng.sample(self.offices, 2) if x.kabkota_code != p.kabkota)
            misplace(p.body, other)
            p.expected_status, p.expected_codes = REGIONAL, {code}
        for p in take(o.template_fault_share):
            code, fault = rng.choice(TEMPLATE_FAULTS)
            fault(p.body["biometrics"])
            p.expected_status, p.expected_codes = CENTRAL, {code}

"""The units of an installation (UPTs and their Kanwil), read from the deployment's units files."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Kanwil:
    kanwil_id: str
    name: str
    province_codes: tuple[str, ...]


@dataclass(frozen=True)
class Upt:
    upt_id: str
    name: str
    kind: str
    kabkota_code: str
    kabkota_name: str
    province_code: str
    kanwil_id: str
    weight: float


@dataclass(frozen=True)
class Dukcapil:
    """A regency/city civil-registry office (Disdukcapil), which records e-KTP."""

    unit_id: str  # dukcapil-<kabkota>
    kabkota_code: str
    name: str
    province_code: str


@dataclass(frozen=True)
class Units:
    kanwil: tuple[Kanwil, ...]
    upts: tuple[Upt, ...]
    dukcapil: tuple[Dukcapil, ...] = ()

    def upt(self, upt_id: str) -> Upt | None:
        return next((u for u in self.upts if u.upt_id == upt_id), None)

    def subset(self, unit_ids: set[str]) -> Units:
        """Only the named UPTs and Dukcapil offices (and the Kanwil of those UPTs)."""
        upts = tuple(u for u in self.upts if u.upt_id in unit_ids)
        used = {u.kanwil_id for u in upts}
        return Units(
            tuple(k for k in self.kanwil if k.kanwil_id in used),
            upts,
            tuple(d for d in self.dukcapil if d.unit_id in unit_ids),
        )


UPT_COLUMNS = (
    "upt_id",
    "name",
    "kind",
    "kabkota_code",
    "kabkota_name",
    "province_code",
    "kanwil_id",
    "weight",
)
KANWIL_COLUMNS = ("kanwil_id", "name", "province_codes")
DUKCAPIL_COLUMNS = ("unit_id", "kabkota_code", "name", "province_code")


def load_units(directory: Path) -> Units:
    with (directory / "kanwil.csv").open(encoding="utf-8") as f:
        kanwil = tuple(
            Kanwil(r["kanwil_id"], r["name"], tuple(r["province_codes"].split())) for r in csv.DictReader(f)
        )
    with (directory / "upt.csv").open(encoding="utf-8") as f:
        upts = tuple(
            Upt(**{**{c: r[c] for c in UPT_COLUMNS}, "weight": float(r["weight"])})  # type: ignore[arg-type]
            for r in csv.DictReader(f)
        )
    dukcapil: tuple[Dukcapil, ...] = ()
    if (directory / "dukcapil.csv").exists():
        with (directory / "dukcapil.csv").open(encoding="utf-8") as f:
            dukcapil = tuple(Dukcapil(**{c: r[c] for c in DUKCAPIL_COLUMNS}) for r in csv.DictReader(f))
    return Units(kanwil, upts, dukcapil)


def write_units(units: Units, directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    with (directory / "kanwil.csv").open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(KANWIL_COLUMNS)
        w.writerows((k.kanwil_id, k.name, " ".join(k.province_codes)) for k in units.kanwil)
    with (directory / "upt.csv").open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(UPT_COLUMNS)
        w.writerows(
            (u.upt_id, u.name, u.kind, u.kabkota_code, u.kabkota_name, u.province_code, u.kanwil_id, u.weight)
            for u in units.upts
        )
    with (directory / "dukcapil.csv").open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(DUKCAPIL_COLUMNS)
        w.writerows((d.unit_id, d.kabkota_code, d.name, d.province_code) for d in units.dukcapil)

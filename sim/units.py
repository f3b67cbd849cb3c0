"""Generates the unit lists: 526 UPTs named after real kab/kota under 33 Kanwil, and 514 Dukcapil offices."""

from __future__ import annotations

import argparse
import csv
from importlib import resources
from pathlib import Path

from shared.settings import PROJECT_ROOT
from shared.units import Dukcapil, Kanwil, Units, Upt, write_units

# Ditjenpas has 33 Kanwil for 38 provinces: the newest provinces are served by the Kanwil they split from.
KANWIL_OF_PROVINCE = {"65": "64", "93": "91", "94": "91", "95": "91", "96": "92"}
# Second units in the largest cities, so that the national list has 526 UPTs (as in SPPT-TI 2024).
EXTRA_UNITS = (
    ("3175", "Lapas Narkotika Kelas IIA"),
    ("3171", "Rutan Kelas I"),
    ("3273", "Lapas Perempuan Kelas IIA"),
    ("3578", "Lapas Narkotika Kelas IIA"),
    ("1271", "Lapas Perempuan Kelas IIA"),
    ("3374", "LPKA Kelas I"),
    ("7371", "Lapas Narkotika Kelas IIA"),
    ("1671", "LPKA Kelas I"),
    ("3671", "LPKA Kelas I"),
    ("3573", "Lapas Perempuan Kelas IIA"),
    ("5171", "Lapas Narkotika Kelas IIA"),
    ("2171", "Rutan Kelas IIA"),
)


def _place(name: str) -> str:
    for prefix in ("Kota Administrasi ", "Kabupaten Administrasi ", "Kabupaten ", "Kota "):
        if name.startswith(prefix):
            return name[len(prefix) :]
    return name


def _rows(name: str) -> list[dict[str, str]]:
    text = resources.files("shared.data").joinpath(name).read_text(encoding="utf-8")
    return list(csv.DictReader(text.splitlines()))


def generate() -> Units:
    provinces = {r["kode"]: r["nama"] for r in _rows("wilayah_provinsi.csv")}
    kanwil = tuple(
        Kanwil(
            f"kanwil-{code}",
            f"Kanwil Ditjenpas {name}",
            tuple(sorted([code, *(p for p, k in KANWIL_OF_PROVINCE.items() if k == code)])),
        )
        for code, name in sorted(provinces.items())
        if code not in KANWIL_OF_PROVINCE
    )
    upts: list[Upt] = []
    extras = dict(EXTRA_UNITS)
    for r in _rows("wilayah_kabkota.csv"):
        code, province = r["kode"], r["provinsi_kode"]
        is_city = r["nama"].startswith("Kota")
        kind = "Rutan Kelas IIA" if is_city else "Lapas Kelas IIB"
        common = {
            "kabkota_code": code,
            "kabkota_name": r["nama"],
            "province_code": province,
            "kanwil_id": f"kanwil-{KANWIL_OF_PROVINCE.get(province, province)}",
        }
        # Cities hold more people; Java's units are the most crowded.
        weight = (1.6 if is_city else 1.0) * (1.5 if province in {"31", "32", "33", "35", "36"} else 1.0)
        upts.append(Upt(f"upt-{code}-1", f"{kind} {_place(r['nama'])}", kind, weight=weight, **common))
        if code in extras:
            kind2 = extras[code]
            upts.append(Upt(f"upt-{code}-2", f"{kind2} {_place(r['nama'])}", kind2, weight=2.0, **common))
    dukcapil = tuple(
        Dukcapil(f"dukcapil-{r['kode']}", r["kode"], f"Disdukcapil {r['nama']}", r["provinsi_kode"])
        for r in _rows("wilayah_kabkota.csv")
    )
    return Units(kanwil, tuple(upts), dukcapil)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=PROJECT_ROOT / "deploy" / "units")
    args = parser.parse_args()
    units = generate()
    write_units(units, args.out)
    print(
        f"{len(units.upts)} UPTs under {len(units.kanwil)} Kanwil and {len(units.dukcapil)} Dukcapil offices "
        f"written to {args.out}"
    )


if __name__ == "__main__":
    main()

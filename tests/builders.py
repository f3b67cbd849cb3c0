"""Valid messages to start from; tests change one thing and look at what happens."""

from __future__ import annotations

import dataclasses
import itertools
from datetime import UTC, date, datetime
from typing import Any

from sim.publisher import submission_body

AS_OF = date(2026, 11, 20)
_serial = itertools.count(1)


def inmate(**overrides: Any) -> dict[str, Any]:
    n = next(_serial)
    record: dict[str, Any] = {
        "inmate_id": f"WBP-{n:06d}",
        "register": "B I",
        "register_number": f"BI.{n}/2024",
        "nik": f"327301150385{n % 9_999 + 1:04d}",
        "full_name": f"Budi Santoso {n}",
        "sex": "L",
        "birth_place": "Bandung",
        "birth_date": "1985-03-15",
        "entry_date": "2024-05-02",
        "sentence_days": 1_460,
        "custody_status": "in_custody",
        "updated_at": "2026-11-20T01:00:00+00:00",
    }
    return record | overrides


_snapshots = itertools.count(1)


def submission(
    records: list[dict[str, Any]],
    *,
    upt_id: str = "upt-3273-1",
    part: int = 1,
    parts: int = 1,
    snapshot: int | None = None,
    as_of: date = AS_OF,
) -> dict[str, Any]:
    """A part of a new snapshot each time (so a new message id), unless a snapshot number is given."""
    return submission_body(upt_id, as_of, snapshot or next(_snapshots), part, parts, records)


NOW = datetime(2026, 11, 20, 3, 0, tzinfo=UTC)  # 10:00 WIB


def packets(n: int = 1, *, kabkota: str = "3273", seed: int = 5, **shares: Any) -> list[dict[str, Any]]:
    """Valid e-KTP packet bodies (with envelope) from a simulated capture station of one kab/kota."""
    from shared.settings import PROJECT_ROOT
    from shared.units import load_units
    from sim.ektp import CaptureStations, PacketOptions
    from sim.publisher import packet_message

    offices = tuple(
        d for d in load_units(PROJECT_ROOT / "deploy" / "units").dukcapil if d.kabkota_code == kabkota
    )
    options = (
        PacketOptions(
            as_of=AS_OF,
            total=n,
            seed=seed,
            declared_exception_share=0.0,
            region_fault_share=0.0,
            template_fault_share=0.0,
            nik_contradiction_share=0.0,
        )
        if not shares
        else dataclasses.replace(
            PacketOptions(as_of=AS_OF, total=n, seed=seed, nik_contradiction_share=0.0), **shares
        )
    )
    return [packet_message(p.body) for p in CaptureStations(offices, options).day()]

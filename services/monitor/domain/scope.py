"""Who may see what: the four roles of the monitor and the scope of each login."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any


class Role(enum.StrEnum):
    PUSAT = "pusat"  # the centre: sees everything
    KANWIL = "kanwil"  # a Ditjenpas regional office: watches its own UPTs
    UPT = "upt"  # a UPT: sees its own status
    DUKCAPIL = "dukcapil"  # a kab/kota civil registry: watches its own e-KTP pipeline


@dataclass(frozen=True)
class Scope:
    role: Role
    unit_id: str  # "pusat", a kanwil id, an upt id or a dukcapil id

    def sees(self, unit_id: str, kanwil_id: str | None) -> bool:
        """Whether this login may see a unit (a UPT with its Kanwil, or a Dukcapil office with none)."""
        if self.role is Role.PUSAT:
            return True
        if self.role is Role.KANWIL:
            return kanwil_id == self.unit_id
        return unit_id == self.unit_id


def scope_of_login(unit_id: str) -> Scope:
    """Monitor logins are provisioned per scope: `pusat`, `kanwil-<prov>`, an `upt-...` or a `dukcapil-...` id."""
    if unit_id == "pusat":
        return Scope(Role.PUSAT, unit_id)
    for prefix, role in (("kanwil-", Role.KANWIL), ("dukcapil-", Role.DUKCAPIL)):
        if unit_id.startswith(prefix):
            return Scope(role, unit_id)
    return Scope(Role.UPT, unit_id)


def scope_label(scope: Scope, rows: list[dict[str, Any]], offices: list[dict[str, Any]]) -> str:
    """What the page header says the login watches."""
    if scope.role is Role.PUSAT:
        return "Pusat · seluruh UPT dan Disdukcapil"
    if scope.role is Role.KANWIL:
        return next((r["kanwil_name"] for r in rows), scope.unit_id)
    if scope.role is Role.DUKCAPIL:
        return next((o["name"] for o in offices), scope.unit_id)
    return next((r["name"] for r in rows), scope.unit_id)

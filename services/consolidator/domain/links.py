"""The centre confirms that a person known without a NIK holds one: the two records become one."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from . import codes
from .runs import Refusal


@dataclass(frozen=True)
class LinkTarget:
    """The person named by the command, as the centre knows it."""

    person_id: int
    nik: str | None
    merged_into: int | None


@dataclass(frozen=True)
class Link:
    """already: nothing to do; set_nik: the person takes the NIK nobody holds; merge: `person` goes into `into`,
    the NIK's holder."""

    kind: Literal["already", "set_nik", "merge"]
    person: int
    into: int | None = None


def decide_link(
    target: LinkTarget | None, holder: int | None, nik: str, *, from_centre: bool
) -> Link | Refusal:
    if not from_centre:
        return Refusal(codes.LINK_NOT_CENTRE, "the command was not published by the centre's user")
    if target is None:
        return Refusal(codes.PERSON_UNKNOWN, "no such central id")
    if target.merged_into is not None:
        return Refusal(codes.PERSON_MERGED, f"merged into C{target.merged_into}")
    if target.nik == nik or holder == target.person_id:
        return Link("already", target.person_id)
    if target.nik is not None:
        return Refusal(codes.PERSON_HAS_NIK, "the person holds another NIK")
    if holder is None:
        return Link("set_nik", target.person_id)
    return Link("merge", target.person_id, into=holder)

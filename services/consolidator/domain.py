"""Consolidation rules: what a central inmate record holds after a checked part arrives."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from shared.contracts import InmateFlagSet


def flag_rows(
    flag_sets: Iterable[InmateFlagSet], seq: int
) -> list[tuple[str, str, list[dict[str, str]], int]]:
    """(upt_id, inmate_id, flags, seq) per record; the store keeps the set with the highest seq.

    Flag sets may arrive before the record they describe (the other UPT's part is consolidated first), so
    they live beside the records rather than inside them.
    """
    return [(s.upt_id, s.inmate_id, [f.model_dump(mode="json") for f in s.flags], seq) for s in flag_sets]


def touched_units(upt_id: str, flag_sets: Sequence[InmateFlagSet]) -> list[str]:
    """Every UPT whose central totals this part can change."""
    return sorted({upt_id, *(s.upt_id for s in flag_sets)})

"""Inmates against the population record: a claimed NIK is checked, an inmate without one is linked.

The population record is every NIK dedup found unique (PRINT_READY_RECORD), with the demographics its capture
declared (`PopulationStore`). The rules are the pure `domain.linkage`; this module only fetches the holders and
the blocked candidates of a part's records and turns the scores into `PopulationCheck`s.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Protocol

from shared.contracts import InmateRecord, PopulationCandidate, PopulationCheck

from .domain import linkage


class PopulationStore(Protocol):
    async def holders(self, niks: Sequence[str]) -> dict[str, linkage.Person]: ...

    async def blocked(self, keys: Sequence[str]) -> list[tuple[linkage.Person, frozenset[str]]]: ...


def person_of(r: InmateRecord) -> linkage.Person:
    return linkage.Person(
        r.nik, r.full_name, r.sex.value, r.birth_date, r.birth_place, r.mother_name, tuple(r.aliases)
    )


async def check_records(records: Sequence[InmateRecord], store: PopulationStore) -> list[PopulationCheck]:
    """One check per record: the NIK's codes, or the scored candidates of an inmate without a NIK."""
    people = [person_of(r) for r in records]
    claimed = sorted({p.nik for p in people if p.nik})
    holders = await store.holders(claimed) if claimed else {}
    keys = {i: linkage.blocking_keys(p) for i, p in enumerate(people) if not p.nik}
    found = await store.blocked(sorted(set().union(*keys.values()))) if keys else []
    by_key: dict[str, list[linkage.Person]] = defaultdict(list)
    for person, blocks in found:
        for key in blocks:
            by_key[key].append(person)
    out = []
    for i, (record, person) in enumerate(zip(records, people, strict=True)):
        if person.nik:
            codes = linkage.check_claimed_nik(person, holders.get(person.nik))
            out.append(PopulationCheck(inmate_id=record.inmate_id, codes=codes))
            continue
        pool = {c.nik: c for key in keys[i] for c in by_key.get(key, [])}
        ranked = linkage.rank(person, pool.values(), floor=linkage.REVIEW_FLOOR)
        link = linkage.probable_link(ranked)
        out.append(
            PopulationCheck(
                inmate_id=record.inmate_id,
                candidates=[
                    PopulationCandidate(
                        nik=s.candidate.nik or "",
                        weight=round(s.weight, 2),
                        probability=round(s.probability, 4),
                        levels={k: str(v) for k, v in vars(s.comparison).items()},
                    )
                    for s in ranked
                ],
                probable_nik=link.candidate.nik if link else None,
            )
        )
    return out

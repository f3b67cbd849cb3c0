"""Fill dedup's gallery with synthetic identities, straight into PostgreSQL (COPY), for demos and benchmarks.

python -m sim.gallery --count 1000000 [--database-url URL] [--seed 2025] [--batch 20000]
                     [--legacy-duplicates 0.001]

DEDUP_GALLERY_KEY must hold the key the dedup service runs with (a new gallery takes it; an existing one must
have been sealed with it). Identity i of a seed can be regenerated exactly (`GallerySpec`), so a benchmark can
capture the same people again and know who they are. A share of the people (`--legacy-duplicates`) is in the
gallery twice under two NIKs, as the first e-KTP years left some: a third NIK for one of them is a
one-to-many duplicate.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from services.dedup import gallery as dedup_gallery
from services.dedup.domain.biometrics import Templates
from services.dedup.store import PostgresGalleryStore
from services.dedup.vault import Vault, VaultKeyError
from shared.nik import load_regions
from shared.runtime import Database

from .biometrics import Captures, Identities, TemplateModel

MODEL = TemplateModel()


def as_templates(c: Captures) -> Templates:
    n = c.face.shape[0]
    return Templates(c.face, np.ones(n, bool), c.fingers, np.ones((n, 10), bool), c.iris_codes, c.iris_masks)


def identities_of_batch(seed: int, batch: int, size: int) -> tuple[Identities, np.random.Generator]:
    """The people of one seeding batch, and the generator that then captured them."""
    rng = np.random.default_rng([seed, batch])
    return MODEL.identities(rng, size), rng


@dataclass(frozen=True)
class GallerySpec:
    """A seeded gallery, as `seed` wrote it: who is in which row, under which NIK."""

    count: int
    seed: int = 2025
    batch: int = 20_000
    legacy_share: float = 0.001

    def batches(self) -> list[tuple[int, int, int]]:
        """(batch number, first row, size) of every seeding batch."""
        return [
            (b, first, min(self.batch, self.count - first))
            for b, first in enumerate(range(0, self.count, self.batch))
        ]

    def legacy_count(self, size: int) -> int:
        return min(size // 2, round(self.legacy_share * size))

    def people(self, b: int, size: int) -> tuple[Identities, np.random.Generator]:
        """The people of batch b (its last k rows are second enrolments of its first k), and the generator
        that then captured them."""
        people, rng = identities_of_batch(self.seed, b, size)
        k = self.legacy_count(size)
        if k:
            for part in (people.face, people.fingers, people.irises):
                part[size - k :] = part[:k]
        return people, rng

    def legacy_pairs(self) -> list[tuple[int, int]]:
        """Rows holding the same person under two NIKs."""
        return [
            (first + t, first + size - k + t)
            for _, first, size in self.batches()
            for k in [self.legacy_count(size)]
            for t in range(k)
        ]

    def identities(self, rows: Sequence[int]) -> Identities:
        """The latent identities of the given rows, regenerated (only the batches they fall in)."""
        wanted = np.asarray(rows, dtype=np.int64)
        order: list[int] = []
        parts: list[Identities] = []
        for b, first, size in self.batches():
            inside = np.flatnonzero((wanted >= first) & (wanted < first + size))
            if inside.size:
                people, _ = self.people(b, size)
                parts.append(people.take(wanted[inside] - first))
                order += inside.tolist()
        where = np.argsort(np.asarray(order, dtype=np.int64))
        return Identities(
            *(
                np.concatenate([getattr(p, name) for p in parts])[where]
                for name in ("face", "fingers", "irises")
            )
        )

    @cached_property
    def regencies(self) -> list[str]:
        return sorted(load_regions().regencies)

    def niks(self, rows: Sequence[int]) -> list[str]:
        out: dict[int, str] = {}
        wanted = set(rows)
        for _, first, size in self.batches():
            mine = [r for r in wanted if first <= r < first + size]
            if mine:
                niks, _ = niks_for(self.seed, first, size, self.regencies)
                out |= {r: niks[r - first] for r in mine}
        return [out[r] for r in rows]


def niks_for(seed: int, first: int, count: int, regencies: list[str]) -> tuple[list[str], list[str]]:
    """Well-formed NIKs (region, birth date with +40 for women, serial), unique by construction: the serial
    and district encode the identity's number. Returns (niks, regency of each)."""
    rng = np.random.default_rng([seed, first, 1])
    index = np.arange(first, first + count)
    regency = rng.integers(0, len(regencies), count)
    female = rng.random(count) < 0.5
    day = rng.integers(1, 29, count) + np.where(female, 40, 0)
    month = rng.integers(1, 13, count)
    year = rng.integers(0, 100, count)
    serial = index % 9999 + 1
    district = (index // 9999) % 99 + 1
    regs = [regencies[r] for r in regency]
    niks = [
        f"{regs[i]}{district[i]:02d}{day[i]:02d}{month[i]:02d}{year[i]:02d}{serial[i]:04d}"
        for i in range(count)
    ]
    return niks, regs


async def seed(database_url: str, spec: GallerySpec) -> None:
    count = spec.count
    vault = Vault.from_environment(dedup_gallery.LAYOUT)
    database = Database.of_service(database_url, "dedup")
    await database.open()
    try:
        store = PostgresGalleryStore(database)
        await dedup_gallery.check_key(store, vault)
        before = await store.count()
        regencies = sorted(load_regions().regencies)
        started = time.monotonic()
        done = 0
        for b, first, size in spec.batches():
            people, rng = spec.people(b, size)
            templates = as_templates(MODEL.capture(rng, people))
            niks, regs = niks_for(spec.seed, first, size, regencies)
            packet_ids = [f"seed-{spec.seed}-{first + i}" for i in range(size)]
            rows = dedup_gallery.sealed_rows(vault, templates, niks, regs, packet_ids, "seed")
            await store.copy_in(rows)
            done += size
            elapsed = time.monotonic() - started
            print(
                f"  seeded {done:,}/{count:,} identities ({done / elapsed:,.0f}/s, "
                f"about {(count - done) / max(done / elapsed, 1):,.0f} s left)",
                flush=True,
            )
        total = await store.count()
        print(f"gallery: {total:,} people ({total - before:,} added in {time.monotonic() - started:.1f} s)")
    finally:
        await database.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument(
        "--database-url",
        default=os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/simpul"),
    )
    parser.add_argument("--seed", type=int, default=2025)
    parser.add_argument("--batch", type=int, default=20_000)
    parser.add_argument(
        "--legacy-duplicates",
        type=float,
        default=0.001,
        help="share of people enrolled twice under two NIKs (default 0.001)",
    )
    args = parser.parse_args()
    spec = GallerySpec(args.count, args.seed, args.batch, args.legacy_duplicates)
    try:
        asyncio.run(seed(args.database_url, spec))
    except VaultKeyError as exc:
        sys.exit(f"sim.gallery: {exc}")


if __name__ == "__main__":
    main()

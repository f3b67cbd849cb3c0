"""Fill dedup's gallery with synthetic identities, straight into PostgreSQL (COPY), for demos and benchmarks.

python -m sim.gallery --count 1000000 [--database-url URL] [--seed 2025] [--batch 20000]

DEDUP_GALLERY_KEY must hold the key the dedup service runs with (a new gallery takes it; an existing one must
have been sealed with it). Identity i of a seed can be regenerated exactly (`identities_of_batch`), so a
benchmark can capture the same people again and know who they are.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time

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


async def seed(database_url: str, count: int, *, seed_value: int, batch: int) -> None:
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
        for b, first in enumerate(range(0, count, batch)):
            size = min(batch, count - first)
            people, rng = identities_of_batch(seed_value, b, size)
            templates = as_templates(MODEL.capture(rng, people))
            niks, regs = niks_for(seed_value, first, size, regencies)
            packet_ids = [f"seed-{seed_value}-{first + i}" for i in range(size)]
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
    args = parser.parse_args()
    try:
        asyncio.run(seed(args.database_url, args.count, seed_value=args.seed, batch=args.batch))
    except VaultKeyError as exc:
        sys.exit(f"sim.gallery: {exc}")


if __name__ == "__main__":
    main()

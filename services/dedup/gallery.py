"""Opening the gallery at start: the key is checked, then every sealed row is opened into memory."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from shared.contracts import FACE_DIM, FINGER_DIM

from .domain.biometrics import Templates
from .search import Gallery
from .store import GalleryStore
from .vault import Layout, Vault, VaultKeyError

log = logging.getLogger("simpul.dedup.gallery")
LAYOUT = Layout(FACE_DIM, FINGER_DIM)
Progress = Callable[[int, int], None]


async def check_key(store: GalleryStore, vault: Vault) -> None:
    """The gallery's key must be this one; a new gallery takes this key."""
    sealed = await store.key_check()
    if sealed is None:
        if await store.count() > 0:
            raise VaultKeyError("the gallery holds templates but no key check: refusing to guess its key")
        await store.set_key_check(vault.key_check())
        sealed = await store.key_check()
        assert sealed is not None
    vault.verify(sealed)


def log_progress(done: int, total: int) -> None:
    log.info("gallery loading", extra={"loaded": done, "total": total})


async def load(store: GalleryStore, vault: Vault, *, progress: Progress = log_progress) -> Gallery:
    """Every person in the gallery, opened and indexed in memory."""
    await check_key(store, vault)
    total = await store.count()
    gallery = Gallery(FACE_DIM, FINGER_DIM, capacity=max(1024, total + total // 10))
    started, last = time.monotonic(), 0.0
    async for rows in store.rows():
        niks = [r.nik for r in rows]
        gallery.add(vault.open_people([r.sealed for r in rows], niks), [r.person_id for r in rows], niks)
        if time.monotonic() - last > 2 or gallery.size == total:
            progress(gallery.size, total)
            last = time.monotonic()
    log.info(
        "gallery loaded",
        extra={"people": gallery.size, "seconds": round(time.monotonic() - started, 1)},
    )
    return gallery


def sealed_rows(
    vault: Vault,
    people: Templates,
    niks: list[str],
    kabkota: list[str],
    packet_ids: list[str],
    origin: str,
) -> list[tuple[str, str, str, str, bytes]]:
    """Rows for `GalleryStore.copy_in`."""
    sealed = vault.seal_people(people, niks)
    return list(zip(niks, kabkota, packet_ids, [origin] * len(niks), sealed, strict=True))

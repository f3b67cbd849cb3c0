"""The gallery on the real PostgreSQL: seeded with COPY, sealed at rest, reopened only with its key."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import numpy as np
import pytest

from services.dedup import gallery
from services.dedup.domain import biometrics as bio
from services.dedup.store import PostgresGalleryStore
from services.dedup.vault import Vault, VaultKeyError
from shared import db
from shared.runtime import Database
from sim import gallery as seeding
from tests.conftest import Installation

pytestmark = pytest.mark.integration


@pytest.fixture
async def dedup_database(installation: Installation) -> AsyncIterator[str]:
    url = db.with_database(installation.database_url, f"simpul_gallery_{uuid.uuid4().hex[:8]}")
    await db.ensure_database(url)
    yield url
    await db.drop_database(url)


async def test_seeded_people_load_sealed_and_are_found_again(
    dedup_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = Vault.new_key()
    monkeypatch.setenv("DEDUP_GALLERY_KEY", key)
    await seeding.seed(dedup_database, seeding.GallerySpec(1_200, 4, 500, legacy_share=0))

    database = Database.of_service(dedup_database, "dedup")
    await database.open()
    try:
        raw = await database.pool.fetchval("SELECT templates FROM gallery ORDER BY person_id LIMIT 1")
        loaded = await gallery.load(PostgresGalleryStore(database), Vault.from_environment(gallery.LAYOUT))
        assert loaded.size == 1_200
        assert len(set(loaded.niks)) == 1_200
        assert loaded.person_ids[:3].tolist() == [1, 2, 3]
        # at rest the templates are unreadable: not the iris bytes of the person they belong to
        assert loaded.templates.iris_codes[0, 0].tobytes()[:32] not in bytes(raw)

        # people of seeding batch 1 captured again are found, by their gallery row
        people, rng = seeding.identities_of_batch(4, 1, 500)
        rng = np.random.default_rng(99)
        again = seeding.as_templates(seeding.MODEL.capture(rng, people.take(np.array([0, 7]))))
        found = loaded.search(again, bio.DEFAULT_MODEL)
        assert [m[0].row for m in found] == [500, 507]
        assert (
            found[0][0].llr
            > bio.Thresholds.for_gallery(1_200, duplicate_fpir=1e-4, adjudicate_fpir=1e-2).duplicate
        )

        monkeypatch.setenv("DEDUP_GALLERY_KEY", Vault.new_key())
        with pytest.raises(VaultKeyError, match="not the key"):
            await gallery.load(PostgresGalleryStore(database), Vault.from_environment(gallery.LAYOUT))
    finally:
        await database.close()

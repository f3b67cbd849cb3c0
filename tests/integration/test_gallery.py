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


async def test_the_population_record_finds_holders_and_blocked_candidates_in_postgresql(
    dedup_database: str,
) -> None:
    from datetime import date

    from services.dedup.domain import linkage
    from services.dedup.population import check_records
    from services.dedup.store import PostgresPopulationStore
    from shared.contracts import InmateRecord
    from tests.builders import inmate

    database = Database.of_service(dedup_database, "dedup")
    await database.open()
    try:
        store = PostgresPopulationStore(database)
        joko = linkage.Person("3404011503850007", "Joko Susilo", "L", date(1985, 3, 15), "Sleman", None)
        siti = linkage.Person("3404015503850002", "Siti Aminah", "P", date(1985, 3, 15), "Sleman", None)
        await store.add([joko, siti, joko])  # the same NIK twice: kept once
        assert (await store.holders([joko.nik or "", "3404010101900003"])).keys() == {joko.nik}
        found = await store.blocked(sorted(linkage.blocking_keys(joko)))
        assert joko.nik in {p.nik for p, _ in found}

        records = [
            InmateRecord.model_validate(inmate(nik=None, full_name="Djoko Soesilo", birth_date="1985-03-15")),
            InmateRecord.model_validate(
                inmate(nik=siti.nik, full_name="Siti Aminah", birth_date="1985-03-15")
            ),
        ]
        checks = await check_records(records, store)
        assert checks[0].probable_nik == joko.nik
        assert checks[0].candidates[0].weight >= linkage.LINK_THRESHOLD
        assert checks[1].codes == [linkage.NIK_SEX_DIFFERS]  # the builder's inmate is a man
    finally:
        await database.close()

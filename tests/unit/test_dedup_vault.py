"""Templates sealed at rest: round trip, wrong key, moved rows."""

from __future__ import annotations

import base64

import numpy as np
import pytest

from bench.templates import templates
from services.dedup.domain.biometrics import Templates
from services.dedup.vault import Layout, Vault, VaultKeyError
from sim.biometrics import TemplateModel

LAYOUT = Layout(128, 64)


def people(n: int) -> Templates:
    rng = np.random.default_rng(9)
    model = TemplateModel()
    return templates(model.capture(rng, model.identities(rng, n)))


def test_sealed_templates_open_to_the_same_templates() -> None:
    t = people(3)
    vault = Vault(base64.b64decode(Vault.new_key()), LAYOUT)
    niks = ["3273011503850002", "3273015506900003", "3201010101800004"]
    sealed = vault.seal_people(t, niks)
    assert all(len(s) == LAYOUT.size + 12 + 16 for s in sealed)
    assert all(t.iris_codes[0].tobytes() not in s for s in sealed)
    back = vault.open_people(sealed, niks)
    assert np.array_equal(back.iris_codes, t.iris_codes)
    assert np.allclose(back.face, t.face, atol=1e-3)
    assert back.fingers_present.all()


def test_a_wrong_key_fails_loudly() -> None:
    right = Vault(base64.b64decode(Vault.new_key()), LAYOUT)
    wrong = Vault(base64.b64decode(Vault.new_key()), LAYOUT)
    check = right.key_check()
    right.verify(check)
    with pytest.raises(VaultKeyError, match="not the key"):
        wrong.verify(check)


def test_a_row_moved_to_another_person_does_not_open() -> None:
    t = people(1)
    vault = Vault(base64.b64decode(Vault.new_key()), LAYOUT)
    sealed = vault.seal_people(t, ["3273011503850002"])
    with pytest.raises(VaultKeyError, match="does not open"):
        vault.open_people(sealed, ["3273011503850009"])


def test_the_key_must_be_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DEDUP_GALLERY_KEY", raising=False)
    with pytest.raises(VaultKeyError, match="not set"):
        Vault.from_environment(LAYOUT)
    monkeypatch.setenv("DEDUP_GALLERY_KEY", "not base64!")
    with pytest.raises(VaultKeyError, match="not base64"):
        Vault.from_environment(LAYOUT)
    monkeypatch.setenv("DEDUP_GALLERY_KEY", base64.b64encode(b"short").decode())
    with pytest.raises(VaultKeyError, match="32 bytes"):
        Vault.from_environment(LAYOUT)

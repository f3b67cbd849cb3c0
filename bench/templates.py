"""Simulated captures as the dedup service holds templates."""

from __future__ import annotations

import numpy as np

from services.dedup.domain.biometrics import Templates
from sim.biometrics import Captures


def templates(c: Captures) -> Templates:
    n = c.face.shape[0]
    return Templates(
        face=c.face,
        face_present=np.ones(n, bool),
        fingers=c.fingers,
        fingers_present=np.ones((n, 10), bool),
        iris_codes=c.iris_codes,
        iris_masks=c.iris_masks,
    )

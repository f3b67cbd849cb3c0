"""Score densities of the simulated captures, per modality: what `DEFAULT_MODEL` in dedup is set from.

python -m bench.calibrate [--people 2000] [--seed 11]

Two captures of each of N people: the genuine scores pair a person's two captures; the impostor scores pair
each first capture with the second capture of the next person (and, for irises, of the next 20).
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from bench.templates import templates
from services.dedup.domain import biometrics as bio
from sim.biometrics import TemplateModel


def measure(people: int, seed: int) -> dict[str, dict[str, float]]:
    rng = np.random.default_rng(seed)
    model = TemplateModel()
    who = model.identities(rng, people)
    first, second = templates(model.capture(rng, who)), templates(model.capture(rng, who))
    genuine: dict[str, list[float]] = {"iris": [], "face": [], "finger": []}
    impostor: dict[str, list[float]] = {"iris": [], "face": [], "finger": []}
    for i in range(people):
        probe = first.take(np.array([i]))
        others = np.array([(i + k) % people for k in range(1, 21)])
        mate = bio.compare(probe, second.take(np.array([i])))
        rest = bio.compare(probe, second.take(others))
        genuine["iris"] += mate.iris.ravel().tolist()
        genuine["face"] += mate.face.tolist()
        genuine["finger"] += mate.fingers.ravel().tolist()
        impostor["iris"] += rest.iris.ravel().tolist()
        impostor["face"] += rest.face[:1].tolist()
        impostor["finger"] += rest.fingers[:1].ravel().tolist()

    def stats(values: list[float]) -> dict[str, float]:
        a = np.asarray(values, dtype=np.float64)
        a = a[~np.isnan(a)]
        return {
            "mean": round(float(a.mean()), 4),
            "sd": round(float(a.std()), 4),
            "n": int(a.size),
            "min": round(float(a.min()), 4),
            "max": round(float(a.max()), 4),
        }

    return {
        f"{kind}_{m}": stats(v)
        for kind, d in (("genuine", genuine), ("impostor", impostor))
        for m, v in d.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--people", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()
    print(json.dumps(measure(args.people, args.seed)))


if __name__ == "__main__":
    main()

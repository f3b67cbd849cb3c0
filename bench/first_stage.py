"""Which first-stage index: the candidates dedup re-scores exactly, by measurement.

python -m bench.first_stage [--size 300000] [--probes 2000] [--no-record]

The 256-bit sketches dedup's first stage scans (face and fingers, `services.dedup.search.Sketcher`) of a
simulated gallery, and new captures of 2,000 of its people. Each candidate index returns its best 100 per
probe; recall is the share of probes whose own person is among them (a person missed here is a missed
duplicate whatever the exact stage does), with the time per probe in batches of 128.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import faiss
import numpy as np
import numpy.typing as npt

from bench import harness
from bench.templates import templates
from services.dedup.search import Sketcher
from shared.contracts import FACE_DIM, FINGER_DIM
from sim.biometrics import TemplateModel

K, BATCH = 100, 128


def measure(index: Any, probes: npt.NDArray[np.uint8]) -> tuple[float, float]:
    started = time.perf_counter()
    found = np.concatenate([index.search(probes[i : i + BATCH], K)[1] for i in range(0, len(probes), BATCH)])
    seconds = time.perf_counter() - started
    recall = float((found == np.arange(len(probes))[:, None]).any(axis=1).mean())
    return round(100 * recall, 2), round(1e3 * seconds / len(probes), 3)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size", type=int, default=300_000)
    parser.add_argument("--probes", type=int, default=2_000)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()
    model, rng = TemplateModel(), np.random.default_rng(args.seed)
    sketcher = Sketcher(FACE_DIM, FINGER_DIM)
    codes, probes = [], np.empty((0, 32), np.uint8)
    for first in range(0, args.size, 20_000):
        people = model.identities(rng, min(20_000, args.size - first))
        codes.append(sketcher.combined(templates(model.capture(rng, people))))
        if first == 0:
            probes = sketcher.combined(templates(model.capture(rng, people.take(np.arange(args.probes)))))
        harness.say(f"  sketched {first + len(people):,}/{args.size:,}")
    gallery = np.concatenate(codes)
    bits = gallery.shape[1] * 8
    figures: dict[str, Any] = {"gallery": args.size, "probes": args.probes, "k": K}
    for heap in (True, False):
        flat = faiss.IndexBinaryFlat(bits)
        flat.use_heap = heap  # type: ignore[attr-defined]
        flat.add(gallery)
        recall, ms = measure(flat, probes)
        name = f"flat_{'heap' if heap else 'counting'}"
        figures |= {f"{name}_recall_pct": recall, f"{name}_ms_per_probe": ms}
        harness.say(f"  {name}: recall {recall} %, {ms} ms/probe")
    for nlist in (1024,):
        ivf = faiss.IndexBinaryIVF(faiss.IndexBinaryFlat(bits), bits, nlist)
        ivf.train(gallery[: min(len(gallery), 100 * nlist)])
        ivf.add(gallery)
        for nprobe in (16, 64, 256):
            ivf.nprobe = nprobe
            recall, ms = measure(ivf, probes)
            figures |= {
                f"ivf{nlist}_nprobe{nprobe}_recall_pct": recall,
                f"ivf{nlist}_nprobe{nprobe}_ms_per_probe": ms,
            }
            harness.say(f"  ivf {nlist}/{nprobe}: recall {recall} %, {ms} ms/probe")
    hnsw = faiss.IndexBinaryHNSW(bits, 32)
    started = time.perf_counter()
    hnsw.add(gallery)
    figures["hnsw32_build_s"] = round(time.perf_counter() - started, 1)
    for ef in (128, 512):
        hnsw.hnsw.efSearch = ef
        recall, ms = measure(hnsw, probes)
        figures |= {f"hnsw32_ef{ef}_recall_pct": recall, f"hnsw32_ef{ef}_ms_per_probe": ms}
        harness.say(f"  hnsw ef {ef}: recall {recall} %, {ms} ms/probe")
    if not args.no_record:
        harness.record(
            "dedup first stage: exhaustive binary scan against approximate indexes",
            figures,
            [
                "Recall = probes whose own person is among the 100 candidates. The sketches of two captures of "
                "one person differ in about a quarter of their bits, so partitions (IVF cells, graph "
                "neighbourhoods) built on them lose mates; the exhaustive scan cannot."
            ],
            harness.machine("n/a (in memory)"),
        )
    harness.finish(figures)


if __name__ == "__main__":
    main()

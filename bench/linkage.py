"""Demographic linkage of inmates to the population record, in memory, against the simulator's truth.

python -m bench.linkage [--population 200000] [--inmates 5000] [--seed 2025] [--no-record] [--estimate]

The simulator (sim.linkage) builds a population record and inmates derived from it at known rates. The
population goes into an in-memory blocking index (key -> people, as the service's GIN index over the
`blocks` column would answer `blocks && $keys`). Every inmate without a NIK is linked: its blocking keys
give the candidates, each is scored, and the candidates at or above REVIEW_FLOOR are ranked; the top one is
a link when it weighs at least LINK_THRESHOLD. Every inmate with a NIK is checked against the holder of
that NIK. Figures:
- blocking recall: the share of inmates truly in the population whose record is among their candidates;
- pairs compared per inmate;
- precision (correct links / links made) and recall (correct links / inmates truly in the population) of
  the top candidate at LINK_THRESHOLD; the recall of the true record anywhere in the returned candidates;
- the false link rate among true non-matches (and among the hard negatives: a namesake's name, sex and
  birth year);
- accuracy per NIK check code against the expected codes (with false positives and negatives);
- inmates per second (linking and checking, after the index is built).
A sweep over thresholds is printed with the progress. `--estimate` also prints the m and u probabilities
per comparison level as measured on the truth (m: inmates in the population against their own record;
u: random inmate/record pairs), which is where the model's values come from.
"""

from __future__ import annotations

import argparse
import random
import time
from collections import Counter, defaultdict
from typing import Any

from bench import harness
from services.dedup.domain import linkage as lk
from sim.linkage import Kind, Options, World, generate

SWEEP = (12.0, 14.0, 16.0, 18.0, 20.0, 22.0, 24.0, 26.0, 28.0)
INDEX_PROGRESS = 50_000
LINK_PROGRESS = 1_000


def build_index(population: list[lk.Person]) -> dict[str, list[int]]:
    """Blocking key -> the rows of the people carrying it."""
    index: dict[str, list[int]] = defaultdict(list)
    for row, person in enumerate(population):
        for key in lk.blocking_keys(person):
            index[key].append(row)
        if (row + 1) % INDEX_PROGRESS == 0:
            harness.say(f"  indexed {row + 1:,}/{len(population):,}")
    return dict(index)


def candidates(index: dict[str, list[int]], person: lk.Person) -> set[int]:
    rows: set[int] = set()
    for key in lk.blocking_keys(person):
        rows.update(index.get(key, ()))
    return rows


def pct(part: int, whole: int, digits: int = 2) -> float:
    return round(100 * part / whole, digits) if whole else 0.0


def evaluate(world: World, *, sweep: bool = True) -> dict[str, Any]:
    """Link and check every inmate of `world`; the figures described in the module docstring."""
    population = world.population
    started = time.perf_counter()
    index = build_index(population)
    build_s = time.perf_counter() - started
    by_nik = {p.nik: p for p in population}

    unlinked = [i for i in world.inmates if i.person.nik is None]
    in_pop = [i for i in unlinked if i.truth_nik is not None]
    blocked = listed = links = correct = false_links = hard = hard_links = pairs = 0
    rankings: list[tuple[list[lk.Scored], str | None]] = []  # for the threshold sweep
    started = time.perf_counter()
    for n, inmate in enumerate(unlinked, 1):
        rows = candidates(index, inmate.person)
        pairs += len(rows)
        people = [population[r] for r in rows]
        truth = inmate.truth_nik
        if truth is not None and any(p.nik == truth for p in people):
            blocked += 1
        ranked = lk.rank(inmate.person, people, floor=lk.REVIEW_FLOOR)
        if truth is not None and any(s.candidate.nik == truth for s in ranked):
            listed += 1
        rankings.append((ranked, truth))
        link = lk.probable_link(ranked)
        hard += inmate.hard_negative
        if link is not None:
            links += 1
            if truth is not None and link.candidate.nik == truth:
                correct += 1
            if truth is None:
                false_links += 1
                hard_links += inmate.hard_negative
        if n % LINK_PROGRESS == 0:
            harness.say(f"  linked {n:,}/{len(unlinked):,}")
    link_s = time.perf_counter() - started

    with_nik = [i for i in world.inmates if i.person.nik is not None]
    confusion: dict[str, Counter[str]] = {code: Counter() for code in lk.NIK_CODES}
    exact_sets = 0
    started = time.perf_counter()
    for inmate in with_nik:
        nik = inmate.person.nik
        assert nik is not None
        got = set(lk.check_claimed_nik(inmate.person, by_nik.get(nik)))
        want = set(inmate.expected_codes)
        exact_sets += got == want
        for code in lk.NIK_CODES:
            outcome = ("tp" if code in got else "fn") if code in want else ("fp" if code in got else "tn")
            confusion[code][outcome] += 1
    check_s = time.perf_counter() - started

    strangers = len(unlinked) - len(in_pop)
    figures: dict[str, Any] = {
        "population": len(population),
        "inmates": len(world.inmates),
        "inmates_without_nik": len(unlinked),
        "of_which_in_population": len(in_pop),
        "index_build_s": round(build_s, 1),
        "index_keys": len(index),
        "blocking_recall_pct": pct(blocked, len(in_pop)),
        "pairs_per_inmate": round(pairs / max(1, len(unlinked)), 1),
        "link_threshold_bits": lk.LINK_THRESHOLD,
        "review_floor_bits": lk.REVIEW_FLOOR,
        "links_made": links,
        "link_precision_pct": pct(correct, links),
        "link_recall_pct": pct(correct, len(in_pop)),
        "candidate_list_recall_pct": pct(listed, len(in_pop)),
        "false_link_rate_non_matches_pct": pct(false_links, strangers),
        "false_link_rate_hard_negatives_pct": pct(hard_links, hard),
        "inmates_with_nik_checked": len(with_nik),
        "nik_check_code_sets_exact_pct": pct(exact_sets, len(with_nik)),
    }
    for code, c in confusion.items():
        figures[f"nik_check_{code}_accuracy_pct"] = pct(c["tp"] + c["tn"], len(with_nik))
        figures[f"nik_check_{code}_errors"] = f"fp {c['fp']}, fn {c['fn']} ({c['tp'] + c['fn']} expected)"
    figures["inmates_per_s"] = round(len(world.inmates) / (link_s + check_s), 1)
    figures["linked_per_s"] = round(len(unlinked) / link_s, 1) if link_s else 0.0
    if sweep:
        for t in SWEEP:
            at_t = [(lk.probable_link(ranked, t), truth) for ranked, truth in rankings]
            made = [(link.candidate.nik == truth, truth is not None) for link, truth in at_t if link]
            good = sum(ok for ok, _ in made)
            wrong_strangers = sum(1 for _, real in made if not real)
            harness.say(
                f"  threshold {t:>5.1f} bits: precision {pct(good, len(made)):6.2f} %, recall "
                f"{pct(good, len(in_pop)):6.2f} %, false links among non-matches "
                f"{pct(wrong_strangers, strangers):5.2f} %"
            )
    return figures


def estimate(world: World, pairs: int, seed: int) -> None:
    """Print m (true pairs) and u (random pairs) per field and level, as measured on the truth."""
    population = world.population
    by_nik = {p.nik: p for p in population}
    true_pairs = [(i.person, by_nik[i.truth_nik]) for i in world.inmates if i.truth_nik is not None]
    rng = random.Random(seed)
    people = [i.person for i in world.inmates]
    random_pairs = [(rng.choice(people), rng.choice(population)) for _ in range(pairs)]
    fields = ("name", "birth_date", "sex", "birth_place", "mother_name")
    for label, sample in (("m", true_pairs), ("u", random_pairs)):
        counts: dict[str, Counter[str]] = {f: Counter() for f in fields}
        for n, (a, b) in enumerate(sample, 1):
            c = lk.compare(a, b)
            for f in fields:
                counts[f][str(getattr(c, f))] += 1
            if n % 200_000 == 0:
                harness.say(f"  {label}: {n:,}/{len(sample):,} pairs")
        for f in fields:
            present = sum(v for k, v in counts[f].items() if k != "missing")
            shares = ", ".join(
                f"{k} {v / present:.5f}" for k, v in sorted(counts[f].items()) if k != "missing" and present
            )
            harness.say(f"  {label} {f} (of {present:,} pairs with both present): {shares}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--population", type=int, default=200_000)
    parser.add_argument("--inmates", type=int, default=5_000)
    parser.add_argument("--seed", type=int, default=2025)
    parser.add_argument("--no-record", action="store_true")
    parser.add_argument("--estimate", action="store_true", help="also print the measured m and u")
    parser.add_argument("--estimate-pairs", type=int, default=1_000_000)
    args = parser.parse_args()

    harness.say(f"simulating a population of {args.population:,} and {args.inmates:,} inmates")
    started = time.perf_counter()
    world = generate(Options(population=args.population, inmates=args.inmates, seed=args.seed))
    kinds = Counter(i.kind for i in world.inmates)
    harness.say(
        f"  simulated in {time.perf_counter() - started:.1f} s: "
        + ", ".join(f"{k} {kinds[k]:,}" for k in Kind)
        + f" ({sum(i.hard_negative for i in world.inmates):,} hard negatives)"
    )
    if args.estimate:
        harness.say(f"estimating m and u ({args.estimate_pairs:,} random pairs)")
        estimate(world, args.estimate_pairs, args.seed)
    harness.say("linking and checking")
    figures = evaluate(world)
    harness.say(f"  {figures}")
    if not args.no_record:
        harness.record(
            "demographic linkage of inmates to the population record (in memory) against the simulator's truth",
            figures,
            [
                "Targets: precision >= 98 % and recall >= 95 % of the top candidate at LINK_THRESHOLD. "
                "Inmates without a NIK are linked (blocking, Fellegi–Sunter scores, ranking); inmates with one "
                "are checked against its holder. The noise rates are the simulator's assumptions "
                "(sim/linkage.py), not measurements of SDP data."
            ],
            harness.machine("not used"),
        )
    harness.finish(figures)


if __name__ == "__main__":
    main()

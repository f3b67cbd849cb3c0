"""The planted national SDP day the SDP benches start from: the inmates (sim/population.py) of all 526 UPTs
or the first N, with the centre's truth planted in them (sim/centre.py)."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from datetime import date

from bench import harness
from shared.settings import PROJECT_ROOT
from shared.units import Units, load_units
from sim import centre, population


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--total", type=int, default=275_600)
    parser.add_argument("--upts", type=int, default=0, help="only the first N UPTs (0 = all 526)")
    parser.add_argument("--part-size", type=int, default=500)
    parser.add_argument("--seed", type=int, default=2025)


@dataclass(frozen=True)
class PlantedDay:
    units: Units  # every UPT of the day, the silent one included
    by_upt: centre.Records
    options: centre.CentreOptions
    truth: centre.DayTruth


def plant(args: argparse.Namespace, day: date) -> PlantedDay:
    units = load_units(PROJECT_ROOT / "deploy" / "units")
    chosen = units.upts[: args.upts] if args.upts else units.upts
    units = units.subset({u.upt_id for u in chosen})
    harness.say(f"generating {args.total:,} inmates for {len(units.upts)} UPTs and planting day {day}")
    by_upt = population.generate(
        units, population.Options(as_of=day, total=args.total, seed=args.seed, part_size=args.part_size)
    )
    options = centre.CentreOptions(units=units, day=day, seed=args.seed)
    return PlantedDay(units, by_upt, options, centre.plant_day(by_upt, options))


def category(mismatch: str) -> str:
    """What a line of sim.centre.compare is about: a UPT figure's name, or an item kind and which way it differs."""
    head, _, rest = mismatch.partition(": ")
    return rest.split(" ", 1)[0] if " " not in head else f"{head.split(' ', 1)[0]} {rest}"

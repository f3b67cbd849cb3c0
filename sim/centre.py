"""The centre's days with planted truth: movements, overstayers, a silent and a held UPT, and the run reports."""

from __future__ import annotations

import copy
import random
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from typing import Any

from services.consolidator.domain.detention import DetentionFinding, decide_detention, rule_for
from services.consolidator.domain.report import RunReport
from services.consolidator.rules import load_rules
from shared.units import Units

from . import population
from .population import PlannedRecord

RULES = load_rules()
STATES = {"released": "released", "died": "died", "escaped": "escaped", "transferred_out": "departed"}
# What identifies a listed item beyond its UPT and inmate: the detail the truth can predict.
DETAIL = {"overstaying": "days_over", "notice_3": "days_left", "notice_10": "days_left",
          "transfer": "to_upt", "release": "reason", "in_transit": "since"}  # fmt: skip
Records = dict[str, list[PlannedRecord]]
Move = tuple[str, str, str, str]  # kind, upt_id, inmate_id, detail


@dataclass(frozen=True)
class CentreOptions:
    """The planted days; shares are of all the day's records."""

    units: Units
    day: date  # D: the centre's first day; D+1 follows
    seed: int = 2025
    transfer_share: float = 0.003
    release_share: float = 0.005
    admission_share: float = 0.005
    overstay_share: float = 0.002
    # D+1, besides the extension letters that fall due (about 0.5 %): departures (half reappear at another
    # UPT, half vanish), newcomers and changed register numbers.
    departure_share: float = 0.002
    newcomer_share: float = 0.002
    renumber_share: float = 0.001
    held_keeps: float = 0.5  # D+1: what the held UPT's snapshot keeps
    window_days: int = 7
    max_loss: float = 0.2


@dataclass(frozen=True)
class ExpectedRun:
    day: date
    lines: dict[str, dict[str, Any]]  # per UPT: applied and the counted columns
    items: dict[str, set[tuple[str, ...]]]  # per kind: (upt_id, inmate_id[, DETAIL])


@dataclass
class _Episode:
    key: str  # the person: NIK, else the record's source id
    state: str
    first_seen: date
    ended_on: date | None
    record: Mapping[str, Any]


def finding(record: Mapping[str, Any], day: date) -> DetentionFinding | None:
    """The detention finding of a record on a day, by the reference rules (sum of extension days)."""
    if not record.get("detention_start"):
        return None
    days = sum(int(e["days"]) for e in record.get("extensions") or [])
    return decide_detention(
        RULES, record["register"], date.fromisoformat(record["detention_start"]), days, day
    )


@dataclass
class Central:
    """The centre's state as the run's rules predict it, kept in Python apart from the SQL under test."""

    upts: tuple[str, ...]
    window_days: int = 7
    max_loss: float = 0.2
    episodes: dict[tuple[str, str], _Episode] = field(default_factory=dict)
    applied: set[str] = field(default_factory=set)

    def copy(self) -> Central:
        return replace(
            self, episodes={k: replace(e) for k, e in self.episodes.items()}, applied=set(self.applied)
        )

    def active(self) -> Counter[str]:
        return Counter(u for (u, _), e in self.episodes.items() if e.state == "active")

    def run(self, day: date, snapshots: Mapping[str, Sequence[Mapping[str, Any]]]) -> ExpectedRun:
        """One run of `day` over the UPTs' applied snapshots (absent: not sent); the report it must give."""
        before = self.active()
        lines: dict[str, dict[str, Any]] = {
            u: {"applied": "not_sent", "previous": before[u]} for u in self.upts
        }
        items: dict[str, set[tuple[str, ...]]] = defaultdict(set)
        apply = {}
        for upt in self.upts:
            if upt in snapshots and before[upt] and len(snapshots[upt]) < before[upt] * (1 - self.max_loss):
                lines[upt] |= {"applied": "held", "inmates": len(snapshots[upt])}
                items["held"].add((upt, "-"))
            elif upt in snapshots:
                lines[upt]["applied"], apply[upt] = "applied", snapshots[upt]
        moves = self._movements(day, self._apply(day, apply))
        holders: dict[str, set[str]] = defaultdict(set)
        for (u, i), e in self.episodes.items():
            if e.state == "departed" and e.ended_on is not None and e.ended_on <= day:
                items["in_transit"].add((u, i, e.ended_on.isoformat()))
            if e.state != "active":
                continue
            items["without_ektp"].add((u, i))  # the population record is empty in this simulation
            if (f := finding(e.record, day)) is not None:
                items[f.kind].add((u, i, str(f.days_over if f.kind == "overstaying" else f.days_left)))
            if e.record.get("custody_status") != "transferred_out":
                holders[e.key].add(u)
        for (u, i), e in self.episodes.items():
            custody = e.record.get("custody_status")
            if e.state == "active" and custody != "transferred_out" and holders[e.key] - {u}:
                items["dual_custody"].add((u, i))
        for kind, u, i, detail in moves:
            if kind in ("transfer_out", "release"):
                items["transfer" if kind == "transfer_out" else "release"].add((u, i, detail))
        moved = Counter((kind, u) for kind, u, _, _ in moves)
        listed = Counter((kind, key[0]) for kind, keys in items.items() for key in keys)
        after = self.active()
        for u, line in lines.items():
            line.setdefault("inmates", after[u])
            line |= {name: moved[(kind, u)] for name, kind in (("admissions", "admission"), ("releases", "release"),
                     ("transfers_in", "transfer_in"), ("transfers_out", "transfer_out"))}  # fmt: skip
            line |= {
                name: listed[(name, u)]
                for name in ("in_transit", "dual_custody", "overstaying", "without_ektp")
            }
            line["notices"] = listed[("notice_3", u)] + listed[("notice_10", u)]
        return ExpectedRun(day, lines, dict(items))

    def _apply(self, day: date, snapshots: Mapping[str, Sequence[Mapping[str, Any]]]) -> set[Move]:
        moves: set[Move] = set()
        seen: set[tuple[str, str]] = set()
        for upt, records in snapshots.items():
            for r in records:
                k = (upt, str(r["inmate_id"]))
                seen.add(k)
                status = r.get("custody_status", "in_custody")
                state, old = STATES.get(status, "active"), self.episodes.get(k)
                # A UPT's first applied snapshot registers who is there: only entries dated on the day admit.
                admits = upt in self.applied or date.fromisoformat(r["entry_date"]) >= day
                if old is None and admits and state == "active" and status != "transferred_in":
                    moves.add(("admission", upt, k[1], ""))
                if state == "released" and (old is None or old.state != "released"):
                    moves.add(("release", upt, k[1], "reported_released"))
                key = r.get("nik") or (old.key if old else f"{upt}/{k[1]}")
                if old is None:
                    self.episodes[k] = _Episode(key, state, day, None if state == "active" else day, r)
                else:
                    ended = None if state == "active" else old.ended_on or day
                    self.episodes[k] = replace(old, key=key, state=state, ended_on=ended, record=r)
        for k, e in self.episodes.items():
            if k[0] in snapshots and e.state == "active" and k not in seen:
                e.state, e.ended_on = "departed", day
        self.applied |= set(snapshots)
        return moves

    def _movements(self, day: date, moves: set[Move]) -> set[Move]:
        """Departures met by the same person's arrival elsewhere within the window are transfers (and that
        arrival is no admission); the others stay in transit until the window ends, then are releases."""
        arrivals: dict[str, list[tuple[date, str, str]]] = defaultdict(list)
        for (u, i), e in self.episodes.items():
            if e.state == "active":
                arrivals[e.key].append((e.first_seen, u, i))
        departed = sorted(
            ((k, e) for k, e in self.episodes.items() if e.state == "departed"), key=lambda x: x[0]
        )
        for (u, i), e in departed:
            assert e.ended_on is not None
            near = [
                a for a in arrivals[e.key] if a[1] != u and abs((a[0] - e.ended_on).days) <= self.window_days
            ]
            if near:
                _, to_upt, to_inmate = min(near)
                e.state = "transferred"
                moves |= {("transfer_out", u, i, to_upt), ("transfer_in", to_upt, to_inmate, u)}
                moves.discard(("admission", to_upt, to_inmate, ""))
            elif (day - e.ended_on).days > self.window_days:
                e.state = "released"
                reason = (
                    "reported_released"
                    if e.record.get("custody_status") == "released"
                    else "not_seen_elsewhere"
                )
                moves.add(("release", u, i, reason))
        return moves


def overstay(record: dict[str, Any], day: date, days_over: int, *, beyond_law: bool = False) -> None:
    """Rewrite a tahanan so that the last authorised day is `days_over` days before `day` (negative: days
    left): the letters stop short. `beyond_law`: a further letter grants more than the law allows (not counted)."""
    register = record["register"]
    rule = rule_for(RULES, register, day)
    assert rule is not None, register
    allowed = rule.extension_days + (rule.exceptional_days if beyond_law else 0)
    until = day - timedelta(days=days_over)
    start = until - timedelta(days=rule.initial_days + allowed - 1)
    first = population.extension_letter(register, start, record["inmate_id"])
    first |= {"days": rule.extension_days,
              "until": (start + timedelta(days=rule.initial_days + rule.extension_days - 1)).isoformat()}  # fmt: skip
    letters = [first]
    if beyond_law:
        letters.append(first | {"days": rule.exceptional_days + 30, "letter_number": first["letter_number"] + "/P29",
                                "until": (until + timedelta(days=30)).isoformat()})  # fmt: skip
    same = rule_for(RULES, register, start)
    if same is None or (same.initial_days, same.extension_days) != (rule.initial_days, rule.extension_days):
        raise ValueError(f"{register}: the law changed between {start} and {day}")
    record |= {"detention_start": start.isoformat(), "entry_date": start.isoformat(),
               "detention_expiry": letters[-1]["until"], "extensions": letters}  # fmt: skip


@dataclass(frozen=True)
class DayTruth:
    day: date
    silent_upt: str
    transfers: tuple[tuple[str, str, str, str], ...]  # (from UPT, inmate, to UPT, inmate there)
    releases: tuple[tuple[str, str], ...]
    admissions: tuple[tuple[str, str], ...]
    overstayers: tuple[tuple[str, str, int], ...]  # (UPT, inmate, days over)
    records: int  # of the day before planting
    expected: ExpectedRun
    central: Central  # the state after D's run (copied by next_day)


@dataclass(frozen=True)
class NextDayTruth:
    day: date
    held_upt: str
    transfers: tuple[tuple[str, str, str, str], ...]
    vanished: tuple[tuple[str, str], ...]
    admissions: tuple[tuple[str, str], ...]
    field_changes: tuple[tuple[str, str, str], ...]  # (UPT, inmate, extension|register_number)
    dropped: tuple[tuple[str, str], ...]  # D's transferred_out and released records, no longer sent
    changed: int  # records departed, admitted or changed
    expected: ExpectedRun
    central: Central
    silent_upt: str  # D's silent UPT, silent on every later day too
    overstayers: tuple[tuple[str, str, int], ...]  # D's overstayers, still held without a further letter


def _clean(p: PlannedRecord, entry: date) -> bool:
    """Accepted, with a NIK, no other planted fault, in custody, and still fine if it entered on `entry`."""
    r = p.raw
    release = r.get("expected_release")
    return bool(p.accepted and r.get("nik") and p.shares_nik_with is None and r["custody_status"] == "in_custody"
                and (release is None or date.fromisoformat(release) > entry))  # fmt: skip


class _Pool:
    """Records to plant on, in random order, each taken once."""

    def __init__(self, pool: list[tuple[str, PlannedRecord]]) -> None:
        self.pool, self.used = pool, set[int]()

    def take(self, n: int, want: Callable[[PlannedRecord], bool] = bool) -> list[tuple[str, PlannedRecord]]:
        out = [(u, p) for u, p in self.pool if id(p) not in self.used and want(p)][:n]
        self.used |= {id(p) for _, p in out}
        return out


def _moved_copy(p: PlannedRecord, upt: str, inmate_id: str, day: date, status: str) -> PlannedRecord:
    raw = copy.deepcopy(p.raw) | {
        "inmate_id": inmate_id,
        "entry_date": day.isoformat(),
        "custody_status": status,
    }
    return PlannedRecord(raw)


def snapshots(by_upt: Records, silent: str) -> dict[str, list[dict[str, Any]]]:
    """The accepted records as the centre gets them, per UPT that sent."""
    return {u: [p.raw for p in records if p.accepted] for u, records in by_upt.items() if u != silent}


def plant_day(by_upt: Records, options: CentreOptions) -> DayTruth:
    """Plant D's transfers, releases, admissions, overstayers and a silent UPT (in place); the expected run."""
    rng, day, o = random.Random(options.seed), options.day, options
    total = sum(len(v) for v in by_upt.values())
    upts = sorted(by_upt)
    silent = rng.choice(upts)
    by_upt[silent] = []
    pool = [(u, p) for u in upts for p in by_upt[u] if _clean(p, day)]
    rng.shuffle(pool)
    take = _Pool(pool).take
    overstayers = []
    detained = take(round(o.overstay_share * total), lambda p: p.raw["register"] in population.TAHANAN)
    for n, (u, p) in enumerate(detained):
        overstayers.append((u, p.inmate_id, rng.randint(1, 30)))
        overstay(p.raw, day, overstayers[-1][2], beyond_law=n % 2 == 1)
    transfers = []
    for n, (u, p) in enumerate(take(round(o.transfer_share * total)), start=1):
        to = rng.choice([v for v in upts if v not in (u, silent)])
        by_upt[to].append(_moved_copy(p, to, f"{to}-T{n:06d}", day, "transferred_in"))
        p.raw["custody_status"] = "transferred_out"
        transfers.append((u, p.inmate_id, to, f"{to}-T{n:06d}"))
    releases = take(round(o.release_share * total))
    for _, p in releases:
        p.raw["custody_status"] = "released"
    admissions = take(round(o.admission_share * total))
    for _, p in admissions:
        p.raw["entry_date"] = day.isoformat()
    central = Central(tuple(upts), o.window_days, o.max_loss)
    expected = central.run(day, snapshots(by_upt, silent))
    released, admitted = (tuple((u, p.inmate_id) for u, p in chosen) for chosen in (releases, admissions))
    return DayTruth(
        day, silent, tuple(transfers), released, admitted, tuple(overstayers), total, expected, central
    )


def next_day(
    by_upt: Records, truth: DayTruth | NextDayTruth, options: CentreOptions
) -> tuple[Records, NextDayTruth]:
    """The same UPTs' snapshots of the day after `truth`'s, about 1 % changed, with one UPT's snapshot halved;
    the expected run. Days chain: D+1 from D's, D+2 from D+1's (each with its own draws and new inmate ids)."""
    day, o = truth.day + timedelta(days=1), options
    k = (day - o.day).days  # 1 for D+1, whose draws and ids stay as they have always been
    rng = random.Random(o.seed + 1 + 1000 * (k - 1))
    moved, newcomer = ("M", "N") if k == 1 else (f"M{k}-", f"N{k}-")
    total = sum(len(v) for v in by_upt.values())
    nxt: Records = {u: [] for u in by_upt}
    dropped = []
    for u, records in by_upt.items():
        for p in records:
            if p.raw["custody_status"] in ("transferred_out", "released"):
                dropped.append((u, p.inmate_id))
            else:
                nxt[u].append(PlannedRecord(copy.deepcopy(p.raw), set(p.expected_codes), p.shares_nik_with))
    overstayers = {t[:2] for t in truth.overstayers}
    planted = {(t[2], t[3]) for t in truth.transfers} | set(truth.admissions) | overstayers
    upts = [u for u in sorted(nxt) if u != truth.silent_upt]
    held = rng.choice([u for u in upts if sum(p.accepted for p in nxt[u]) >= 20])
    movable = [u for u in upts if u != held]
    pool = [(u, p) for u in movable for p in nxt[u] if _clean(p, day) and (u, p.inmate_id) not in planted]
    rng.shuffle(pool)
    take = _Pool(pool).take
    departures = take(round(o.departure_share * total))
    transfers, vanished = [], []
    for n, (u, p) in enumerate(departures, start=1):
        if n % 2:
            to = rng.choice([v for v in movable if v != u])
            nxt[to].append(_moved_copy(p, to, f"{to}-{moved}{n:06d}", day, "in_custody"))
            transfers.append((u, p.inmate_id, to, f"{to}-{moved}{n:06d}"))
        else:
            vanished.append((u, p.inmate_id))
    gone = {(u, p.inmate_id) for u, p in departures}
    nxt = {u: [p for p in records if (u, p.inmate_id) not in gone] for u, records in nxt.items()}
    counts = Counter(rng.choice(movable) for _ in range(round(o.newcomer_share * total)))
    taken = {str(p.raw["nik"]) for records in nxt.values() for p in records if p.raw.get("nik")}
    newcomers = population.newcomers(
        o.units, dict(counts), as_of=day, seed=o.seed + 2 + 1000 * (k - 1), taken=taken, prefix=newcomer
    )
    for u, records in newcomers.items():
        nxt[u] += records
    changes = []
    for u in upts:
        for p in nxt[u]:
            r = p.raw
            if not p.accepted or r["register"] not in population.TAHANAN or not r.get("detention_start"):
                continue
            start, letters = date.fromisoformat(r["detention_start"]), r.get("extensions") or []
            end = date.fromisoformat(r["detention_expiry"])  # the generator keeps it at the period's end
            if end < day and (u, p.inmate_id) not in overstayers:  # the period ran out: the next letter
                letter = population.extension_letter(r["register"], start, p.inmate_id)
                if letters:  # the ordinary extension is spent: 30 exceptional days (KUHAP Pasal 29)
                    letter |= {"days": 30, "until": (end + timedelta(days=30)).isoformat(),
                               "letter_number": f"{letter['letter_number']}/P29"}  # fmt: skip
                r |= {"extensions": [*letters, letter], "detention_expiry": letter["until"]}
                changes.append((u, p.inmate_id, "extension"))
    lettered = {i for _, i, _ in changes}  # inmate ids carry their UPT's id
    for u, p in take(round(o.renumber_share * total), lambda p: p.inmate_id not in lettered):
        p.raw["register_number"] = f"{p.raw['register_number']}/R"
        changes.append((u, p.inmate_id, "register_number"))
    keep = sorted(rng.sample(range(len(nxt[held])), int(len(nxt[held]) * o.held_keeps)))
    nxt[held] = [nxt[held][i] for i in keep]
    central = truth.central.copy()
    expected = central.run(day, snapshots(nxt, truth.silent_upt))
    admitted = tuple((u, p.inmate_id) for u, records in newcomers.items() for p in records)
    changed = len(departures) + len(admitted) + len(changes)
    return nxt, NextDayTruth(day, held, tuple(transfers), tuple(vanished), admitted, tuple(changes),
                             tuple(dropped), changed, expected, central, truth.silent_upt,
                             truth.overstayers)  # fmt: skip


def compare(report: RunReport, truth: DayTruth | NextDayTruth) -> list[str]:
    """Where the run's report differs from the truth: one line per UPT figure and per listed item."""
    want = truth.expected
    out: list[str] = []
    if report.day != want.day:
        out.append(f"run of {report.day}, expected {want.day}")
    lines = {line.upt_id: line for line in report.lines}
    for upt, expected in sorted(want.lines.items()):
        line = lines.get(upt)
        if line is None:
            out.append(f"{upt}: no line")
            continue
        out += [f"{upt}: {name} expected {value}, found {getattr(line, name)}"
                for name, value in expected.items() if getattr(line, name) != value]  # fmt: skip
    out += [f"{upt}: a line, none expected" for upt in sorted(set(lines) - set(want.lines))]
    found: dict[str, set[tuple[str, ...]]] = defaultdict(set)
    for item in report.items:
        name = DETAIL.get(item.kind)
        key = (item.upt_id, item.inmate_id)
        found[item.kind].add(key if name is None else (*key, str(item.detail.get(name))))
    for kind in sorted(set(want.items) | set(found)):
        expected_items, got = want.items.get(kind, set()), found[kind]
        out += [f"{kind} {' '.join(k)}: expected, not listed" for k in sorted(expected_items - got)]
        out += [f"{kind} {' '.join(k)}: listed, not expected" for k in sorted(got - expected_items)]
    return out

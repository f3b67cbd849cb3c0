"""The consolidation run on the real PostgreSQL: snapshots applied, transfers, releases, holds, overstaying."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from services.consolidator import consolidation
from services.consolidator.consolidation import PostgresConsolidationStore
from services.consolidator.domain.runs import RunPolicy, settled_state
from services.consolidator.report.render import csv_files
from services.consolidator.rules import load_rules
from services.consolidator.store import postgres_unit_of_work
from services.consolidator.usecases import Consolidator
from shared import db
from shared.contracts import (
    ConsolidationRunRequested,
    InmateRecord,
    Lateness,
    ReceiptStatus,
    SdpRecordsChecked,
    SnapshotState,
    SubmissionProcessed,
)
from shared.runtime import Database
from shared.settings import PROJECT_ROOT
from shared.units import load_units
from tests.builders import inmate
from tests.conftest import TEST_UNITS, Installation

pytestmark = pytest.mark.integration
A, B, C = "upt-3273-1", "upt-3273-2", "upt-1101-1"
DAY = date(2026, 11, 2)
CENTRE = "pusat"
_ids = itertools.count(1)


@dataclass
class Centre:
    consolidator: Consolidator
    database: Database
    now: list[datetime]

    async def send(
        self, upt: str, day: date, records: Sequence[dict[str, Any]], *, snapshot: int = 1
    ) -> None:
        """One complete single-part snapshot, as the registry answers it and dedup checks it."""
        n = next(_ids)
        parsed = [InmateRecord.model_validate(r) for r in records]
        await self.consolidator.record_part_status(
            SubmissionProcessed(
                message_id=f"status-{n}", produced_at=self.now[0], submission_id=f"sub-{n}", upt_id=upt,
                as_of=day, snapshot=snapshot, part=1, parts=1, status=ReceiptStatus.ACCEPTED,
                received=len(records), accepted=len(records), rejected=0, warnings=0, lateness=Lateness.ON_TIME,
                snapshot_state=SnapshotState(parts=1, parts_received=1, complete=True),
            )
        )  # fmt: skip
        if parsed:
            await self.consolidator.stage_checked_part(
                SdpRecordsChecked(
                    message_id=f"checked-{n}", produced_at=self.now[0], submission_id=f"sub-{n}", upt_id=upt,
                    as_of=day, snapshot=snapshot, part=1, parts=1, records=parsed, flag_seq=n,
                )
            )  # fmt: skip

    async def run(self, day: date, *, accept: Sequence[str] = (), n: int | None = None) -> str:
        self.now[0] = datetime.combine(day, datetime.min.time(), tzinfo=UTC) + timedelta(hours=9)
        command = ConsolidationRunRequested(
            message_id=f"run-{day}-{n if n is not None else next(_ids)}", produced_at=self.now[0], day=day,
            requested_by="operator", reason="test", accept_shrunken=list(accept),
        )  # fmt: skip
        run_id = await self.consolidator.request_run(command, publisher=CENTRE, centre=CENTRE)
        assert run_id is not None
        assert await self.consolidator.execute(run_id)
        return run_id

    async def line(self, run_id: str, upt: str) -> dict[str, Any]:
        row = await self.database.pool.fetchrow(
            "SELECT * FROM run_upts WHERE run_id = $1 AND upt_id = $2", run_id, upt
        )
        assert row is not None
        return dict(row)

    async def items(self, run_id: str, kind: str) -> list[tuple[str, str]]:
        rows = await self.database.pool.fetch(
            "SELECT upt_id, inmate_id FROM run_items WHERE run_id = $1 AND kind = $2 ORDER BY 1, 2",
            run_id,
            kind,
        )
        return [(r["upt_id"], r["inmate_id"]) for r in rows]


@pytest.fixture
async def centre(installation: Installation) -> AsyncIterator[Centre]:
    url = db.with_database(installation.database_url, f"simpul_scratch_{uuid.uuid4().hex[:8]}")
    await db.ensure_database(url)
    database = Database.of_service(url, "consolidator")
    await database.open()
    store = PostgresConsolidationStore(database)
    units = load_units(PROJECT_ROOT / "deploy" / "units").subset(set(TEST_UNITS))
    await store.load_reference(units, load_rules())
    now = [datetime(2026, 11, 2, 2, 0, tzinfo=UTC)]
    policy = RunPolicy(max_loss=0.2, transfer_window_days=7, keep_days=3650, schedule=None)
    try:
        yield Centre(
            Consolidator(postgres_unit_of_work(database), store, policy, lambda: now[0]), database, now
        )
    finally:
        await database.close()
        await db.drop_database(url)


async def orphaned_episodes(centre: Centre) -> int:
    """Episodes naming a person that does not exist (the run alone writes episodes: no foreign key checks it)."""
    return int(
        await centre.database.pool.fetchval(
            "SELECT count(*) FROM episodes e WHERE NOT EXISTS (SELECT 1 FROM persons p WHERE p.person_id = e.person_id)"
        )
    )


def people(prefix: str, n: int, **overrides: Any) -> list[dict[str, Any]]:
    return [inmate(inmate_id=f"{prefix}-{i}", **overrides) for i in range(n)]


async def test_a_day_then_transfers_departures_releases_and_a_held_snapshot(centre: Centre) -> None:
    at_a = people("A", 10)
    at_a[0] |= {"nik": None}
    # A detainee of the investigator whose 60 days (20 + 40 extension) ended yesterday.
    start = DAY - timedelta(days=60)
    extension = {"granted_by": "Kejari", "days": 40, "until": str(DAY - timedelta(days=1))}
    at_a[1] |= {"register": "A I", "sentence_days": None, "detention_start": str(start),
                "detention_expiry": str(start + timedelta(days=19)), "entry_date": str(start),
                "extensions": [extension]}  # fmt: skip
    at_b = people("B", 5)
    at_b[4] |= {"entry_date": str(DAY)}  # admitted on the day itself
    await centre.send(A, DAY, at_a)
    await centre.send(B, DAY, at_b)
    first = await centre.run(DAY)
    a, b, c = [await centre.line(first, u) for u in (A, B, C)]
    # A UPT's first snapshot registers who is there: only the inmate entered on the day is an admission.
    assert (a["applied"], a["inmates"], a["admissions"], a["previous"]) == ("applied", 10, 0, 0)
    assert (b["applied"], b["admissions"]) == ("applied", 1)
    assert (c["applied"], c["sent"]) == ("not_sent", False)
    assert await centre.items(first, "overstaying") == [(A, "A-1")]
    # What the monitor is told per UPT the run applied: in custody now, of them flagged by dedup.
    assert await centre.consolidator.runs.central_totals(first) == [(A, 10, 0), (B, 5, 0)]
    # ... and the lists behind a line, counted.
    counted = (await centre.consolidator.runs.line_breakdowns(first))[A]
    assert counted["overstaying_by_register"] == {"A I": 1}
    assert counted["without_ektp_by_reason"] == {"no_nik": 1}  # the others' NIKs are in the population record
    assert counted["without_ektp_by_nik_kabkota"] == {"-": 1}
    # a run reported before the work list kept its NIK regions is counted from its persons, alike
    every = await centre.consolidator.runs.line_breakdowns(first)
    await centre.database.pool.execute("UPDATE run_worklists SET nik_regions = NULL WHERE run_id = $1", first)
    assert await centre.consolidator.runs.line_breakdowns(first) == every
    assert await centre.database.pool.fetchval("SELECT count(*) FROM persons") == 15

    # Next day: A-2 went to B (new id there, same NIK), A-3 left and appears nowhere.
    day2 = DAY + timedelta(days=1)
    moved = at_a[2] | {"inmate_id": "B-from-A"}
    await centre.send(A, day2, [r for r in at_a if r["inmate_id"] not in ("A-2", "A-3")])
    await centre.send(B, day2, [*at_b, moved])
    second = await centre.run(day2)
    a, b = await centre.line(second, A), await centre.line(second, B)
    assert (a["transfers_out"], a["releases"], a["in_transit"], a["admissions"]) == (1, 0, 1, 0)
    assert (b["transfers_in"], b["admissions"], b["inmates"]) == (1, 0, 6)
    assert await centre.items(second, "transfer") == [(A, "A-2")]
    assert await centre.database.pool.fetchval("SELECT count(*) FROM persons") == 15  # the same person moved

    # Running the same day again changes nothing and reports the same, byte for byte.
    again = await centre.run(day2)
    report = centre.consolidator.runs
    first_csv = csv_files(await report.load_report(second))  # type: ignore[arg-type]
    again_csv = csv_files(await report.load_report(again))  # type: ignore[arg-type]
    assert first_csv == again_csv

    # Eight days later A-3 has appeared nowhere: released. B sends a snapshot that lost half its inmates: held.
    day10 = DAY + timedelta(days=9)
    await centre.send(A, day10, [r for r in at_a if r["inmate_id"] not in ("A-2", "A-3")])
    await centre.send(B, day10, at_b[:3])
    third = await centre.run(day10)
    a, b = await centre.line(third, A), await centre.line(third, B)
    assert (a["releases"], a["in_transit"]) == (1, 0)
    assert (b["applied"], b["inmates"], b["previous"]) == ("held", 3, 6)
    active_b = "SELECT count(*) FROM episodes WHERE upt_id = $1 AND state = 'active'"
    assert await centre.database.pool.fetchval(active_b, B) == 6  # the previous state is kept

    # The centre accepts it: applied, three departures in transit.
    accepted = await centre.run(day10, accept=[B])
    b = await centre.line(accepted, B)
    assert (b["applied"], b["in_transit"]) == ("applied", 3)
    assert await centre.database.pool.fetchval(active_b, B) == 3
    assert await orphaned_episodes(centre) == 0


async def test_a_record_that_learns_its_nik_merges_into_the_person_holding_it(centre: Centre) -> None:
    known = inmate(inmate_id="B-1")
    await centre.send(B, DAY, [known])
    nameless = inmate(inmate_id="A-9", nik=None, full_name=known["full_name"])
    await centre.send(A, DAY, [nameless])
    await centre.run(DAY)
    assert await centre.database.pool.fetchval("SELECT count(*) FROM persons") == 2
    day2 = DAY + timedelta(days=1)
    await centre.send(A, day2, [nameless | {"nik": known["nik"]}])
    await centre.send(B, day2, [known])
    run = await centre.run(day2)
    merged = await centre.database.pool.fetchrow("SELECT merged, into_id, reason FROM merges")
    assert merged is not None
    assert merged["reason"] == "nik_learned"
    holder = await centre.database.pool.fetchval("SELECT person_id FROM persons WHERE nik = $1", known["nik"])
    assert merged["into_id"] == holder
    episodes = await centre.database.pool.fetch("SELECT upt_id, person_id FROM episodes ORDER BY upt_id")
    assert {r["person_id"] for r in episodes} == {holder}
    assert await orphaned_episodes(centre) == 0
    # One person in custody in two UPTs at once is flagged on both.
    assert await centre.items(run, "dual_custody") == [(A, "A-9"), (B, "B-1")]


async def test_the_report_cli_writes_the_csv_files_and_the_printable_page(
    centre: Centre, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from services.consolidator.report.__main__ import main

    await centre.send(A, DAY, people("R", 3))
    run_id = await centre.run(DAY)
    url = centre.database.dsn
    assert await asyncio.to_thread(main, ["--date", str(DAY), "--database-url", url]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith(f"Laporan Konsolidasi Harian SDP: Senin, 2 November 2026, {run_id}")
    assert (
        await asyncio.to_thread(main, ["--date", str(DAY), "--database-url", url, "--out", str(tmp_path)])
        == 0
    )
    page = (tmp_path / "laporan.html").read_text(encoding="utf-8")
    assert run_id in page
    assert 'lang="id"' in page
    assert (tmp_path / "upt.csv").read_text(encoding="utf-8").count("\n") == len(TEST_UNITS) - 2 + 1
    assert await asyncio.to_thread(main, ["--date", str(DAY - timedelta(days=1)), "--database-url", url]) == 1


async def test_overstaying_and_notices_agree_with_the_reference_rule_across_both_laws(centre: Centre) -> None:
    """The run's SQL against domain.detention.decide_detention, for detainees of every register whose
    detentions began under the old and the new law, with and without extensions."""
    import random

    from services.consolidator.domain.detention import decide_detention

    day = date(2026, 3, 1)
    rng = random.Random(3)
    records = []
    for i in range(240):
        register = rng.choice(["A I", "A II", "A III", "A IV", "A V"])
        start = day - timedelta(days=rng.randint(0, 200))  # from mid 2025 (KUHAP 1981) to 2026 (UU 20/2025)
        extensions = [
            {"granted_by": "Ketua PN", "days": d, "until": str(start + timedelta(days=d))}
            for d in rng.sample([10, 20, 30, 40, 60], k=rng.randint(0, 2))
        ]
        records.append(
            inmate(inmate_id=f"D-{i}", register=register, sentence_days=None, detention_start=str(start),
                   entry_date=str(start), extensions=extensions)
        )  # fmt: skip
    await centre.send(A, day, records)
    run_id = await centre.run(day)
    rules = load_rules()
    expected: dict[str, set[str]] = {"overstaying": set(), "notice_3": set(), "notice_10": set()}
    for r in records:
        found = decide_detention(
            rules, r["register"], date.fromisoformat(r["detention_start"]),
            sum(e["days"] for e in r["extensions"]), day,
        )  # fmt: skip
        if found is not None:
            expected[found.kind].add(r["inmate_id"])
    assert all(expected.values())  # the sample reaches every kind
    for kind, ids in expected.items():
        assert {i for _, i in await centre.items(run_id, kind)} == ids, kind
    counted = (await centre.consolidator.runs.line_breakdowns(run_id))[A]
    register_of = {r["inmate_id"]: r["register"] for r in records}
    for kind, ids in expected.items():
        by_register: dict[str, int] = {}
        for inmate_id in ids:
            by_register[register_of[inmate_id]] = by_register.get(register_of[inmate_id], 0) + 1
        assert counted[f"{kind}_by_register"] == by_register, kind


async def test_a_transfer_stays_one_transfer_when_the_old_upt_keeps_listing_it_as_transferred_out(
    centre: Centre,
) -> None:
    at_a, at_b = people("A", 4), people("B", 4)
    await centre.send(A, DAY, at_a)
    await centre.send(B, DAY, at_b)
    await centre.run(DAY)
    day2, day3 = DAY + timedelta(days=1), DAY + timedelta(days=2)
    leaving = at_a[0] | {"custody_status": "transferred_out"}
    arrived = at_a[0] | {"inmate_id": "B-from-A", "custody_status": "transferred_in"}
    for day in (day2, day3):  # A lists the inmate as transferred out on both days
        await centre.send(A, day, [leaving, *at_a[1:]])
        await centre.send(B, day, [*at_b, arrived])
    second = await centre.run(day2)
    third = await centre.run(day3)
    assert await centre.items(second, "transfer") == [(A, "A-0")]
    assert await centre.items(third, "transfer") == []
    a = await centre.line(third, A)
    assert (a["transfers_out"], a["releases"], a["in_transit"], a["inmates"]) == (0, 0, 0, 3)
    state = "SELECT state, ended_on FROM episodes WHERE upt_id = $1 AND inmate_id = 'A-0'"
    episode = await centre.database.pool.fetchrow(state, A)
    assert episode is not None
    assert (episode["state"], episode["ended_on"]) == ("transferred", day2)


async def test_the_run_settles_departures_as_the_domain_rule_does(centre: Centre) -> None:
    states = ("active", "departed", "transferred", "released", "died", "escaped")
    for current, implied in itertools.product(states, states):
        found = await centre.database.pool.fetchval("SELECT settled_state($1, $2)", current, implied)
        assert found == settled_state(current, implied), (current, implied)


def failing_once(monkeypatch: pytest.MonkeyPatch, statement_start: str, error: Exception) -> list[str]:
    """The first statement of a run that starts so raises `error` instead of running; the list of it."""
    bind = consolidation._bind
    failed: list[str] = []

    def fails_once(statement: str, params: Sequence[Any]) -> tuple[str, list[Any]]:
        if statement.startswith(statement_start) and not failed:
            failed.append(statement)
            raise error
        return bind(statement, params)

    monkeypatch.setattr(consolidation, "_bind", fails_once)
    return failed


async def test_a_step_chosen_as_a_deadlock_victim_runs_again_whole(
    centre: Centre, monkeypatch: pytest.MonkeyPatch
) -> None:
    await centre.send(A, DAY, people("A", 6))
    await centre.send(B, DAY, people("B", 4))
    # The server rolls the victim's transaction back: here half-way through the step that writes persons and
    # episodes, after the persons were inserted.
    victims = failing_once(
        monkeypatch, "INSERT INTO episodes", asyncpg.exceptions.DeadlockDetectedError("deadlock detected")
    )
    retried = await centre.run(DAY)
    assert victims
    assert await centre.database.pool.fetchval("SELECT count(*) FROM persons") == 10
    assert await centre.database.pool.fetchval("SELECT count(*) FROM episodes") == 10
    assert [(await centre.line(retried, u))["inmates"] for u in (A, B)] == [6, 4]
    again = await centre.run(DAY)
    report = centre.consolidator.runs
    assert csv_files(await report.load_report(again)) == csv_files(await report.load_report(retried))  # type: ignore[arg-type]


async def test_a_report_step_interrupted_after_some_of_its_lists_were_written_writes_each_once_on_resuming(
    centre: Centre, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The report step's lists are written side by side, each in its own transaction: a failure after they
    committed leaves the step to run again whole, and nothing is listed twice."""
    day = date(2026, 3, 1)
    records = [
        inmate(inmate_id=f"D-{i}", register="A II", sentence_days=None, detention_start=str(day - timedelta(days=d)),
               entry_date=str(day - timedelta(days=d)), extensions=[], **({"nik": None} if i % 3 == 0 else {}))
        for i, d in enumerate(range(10, 130, 4))
    ]  # fmt: skip
    await centre.send(A, day, records)
    # The counts, in the step's own transaction: every list beside it has committed by then.
    lost = asyncpg.exceptions.ConnectionDoesNotExistError("connection lost mid-way")
    failing_once(monkeypatch, "WITH m AS MATERIALIZED", lost)
    centre.now[0] = datetime.combine(day, datetime.min.time(), tzinfo=UTC) + timedelta(hours=9)
    command = ConsolidationRunRequested(
        message_id="run-interrupted",
        produced_at=centre.now[0],
        day=day,
        requested_by="operator",
        reason="test",
    )
    run_id = await centre.consolidator.request_run(command, publisher=CENTRE, centre=CENTRE)
    assert run_id is not None
    with pytest.raises(asyncpg.exceptions.ConnectionDoesNotExistError):
        await centre.consolidator.execute(run_id)
    written = "SELECT count(*) FROM run_items WHERE run_id = $1 AND kind = 'overstaying'"
    assert await centre.database.pool.fetchval(written, run_id)  # the lists had committed
    assert (
        await centre.database.pool.fetchval("SELECT state FROM runs WHERE run_id = $1", run_id) == "running"
    )

    assert await centre.consolidator.execute(run_id)  # resumed: the report step again, whole
    clean = await centre.run(day)  # the same day once more, without a failure
    report = centre.consolidator.runs
    resumed, again = await report.load_report(run_id), await report.load_report(clean)
    assert resumed is not None
    assert again is not None
    assert len(resumed.items) == len(again.items)
    assert {i.kind for i in resumed.items} >= {"overstaying", "without_ektp"}
    assert csv_files(resumed) == csv_files(again)

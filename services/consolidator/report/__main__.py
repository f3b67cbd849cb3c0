"""A run's report for people: printed, or written as CSV files and a printable HTML page.

python -m services.consolidator.report --date 2026-12-02 [--run RUN_ID] [--out DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import UTC, date, datetime
from pathlib import Path

from services.consolidator.consolidation import PostgresConsolidationStore
from services.consolidator.domain.report import RunReport
from shared.runtime import Database

from .render import csv_files, html_page, text_summary


async def load(database_url: str, day: date, run_id: str | None) -> RunReport | None:
    """The named run, or the day's latest finished run."""
    database = Database.of_service(database_url, "consolidator")
    await database.open()
    try:
        store = PostgresConsolidationStore(database)
        if run_id is None:
            finished = [r for r in await store.runs_of_day(day) if r["state"] == "finished"]
            if not finished:
                return None
            run_id = str(finished[-1]["run_id"])
        return await store.load_report(run_id)
    finally:
        await database.close()


def write(report: RunReport, out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in csv_files(report).items():
        (out / name).write_text(text, encoding="utf-8")
        written.append(out / name)
    page = out / "laporan.html"
    page.write_text(html_page(report, generated_at=datetime.now(UTC)), encoding="utf-8")
    return [*written, page]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m services.consolidator.report", description=__doc__)
    p.add_argument("--date", type=date.fromisoformat, required=True, help="the day consolidated")
    p.add_argument("--run", help="a run id (default: the day's latest finished run)")
    p.add_argument("--out", type=Path, help="write the CSV files and laporan.html here instead of printing")
    p.add_argument(
        "--database-url",
        default="postgresql://postgres@127.0.0.1:5432/simpul",
        help="the suite's database (the consolidator's role or an administrator)",
    )
    args = p.parse_args(argv)
    report = asyncio.run(load(args.database_url, args.date, args.run))
    if report is None:
        print(f"no finished consolidation run for {args.date}", file=sys.stderr)
        return 1
    if args.out is None:
        print(text_summary(report))
        return 0
    for path in write(report, args.out):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())

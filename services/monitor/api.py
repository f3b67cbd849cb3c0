"""The monitor's JSON and CSV answers, each within the login's scope: units, the e-KTP pipeline, runs, operations
and alerts."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Awaitable, Callable
from datetime import date, datetime, timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from shared import printing
from shared.contracts import WIB
from shared.nik import regency_names
from shared.runtime import Clock

from . import domain, messages
from .alerting import plumbing
from .config import Settings
from .domain import cases, pipeline, printable, runs, unitpage, views
from .domain import live as live_rules
from .journal import LiveLog
from .probe import QueueProbe
from .scrape import MetricsScraper
from .store import Account, MonitorStore
from .usecases import Monitor

Row = dict[str, Any]
Who = Callable[[Request], Awaitable[tuple[Account, domain.Scope] | None]]
Handler = Callable[[Request, Account, domain.Scope], Awaitable[Response]]
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    # same-origin, not no-referrer: with no-referrer a browser posts forms with `Origin: null`, and the same-origin
    # check (web.SameOriginWrites) could not tell the monitor's own forms from a forged one.
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def not_yours() -> Response:
    """Another's unit or run, or none: the same answer, so ids cannot be probed."""
    return JSONResponse({"error": "not in your scope"}, status_code=403, headers=SECURITY_HEADERS)


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def routes(
    store: MonitorStore,
    live_log: LiveLog,
    probe: QueueProbe,
    monitor: Monitor,
    settings: Settings,
    *,
    clock: Clock,
    current: Who,
    scraper: MetricsScraper | None = None,
) -> list[Route]:
    def _day(request: Request) -> date:
        try:
            return date.fromisoformat(request.query_params["day"])
        except (KeyError, ValueError):
            return domain.today_wib(clock())

    async def api_units(request: Request, account: Account, scope: domain.Scope) -> Response:
        day = _day(request)
        # Read before the view: the page follows the live events from here, so none between is missed.
        live_id = (await live_log.bounds())[1]
        rows = views.worst_first([domain.unit_row(r) for r in await store.unit_rows(scope, day)])
        offices = [
            domain.office_row(o, counts, refused)
            for o, counts, refused in await store.office_rows(scope, day)
        ]
        since = datetime.combine(domain.today_wib(clock()), datetime.min.time(), tzinfo=WIB)
        dead = await store.dead_letter_count(since) if scope.role is domain.Role.PUSAT else None
        return JSONResponse(
            {
                "user": account.username,
                "scope": {
                    "role": scope.role.value,
                    "unit": scope.unit_id,
                    "label": domain.scope_label(scope, rows, offices),
                },
                "day": day.isoformat(),
                "units": rows,
                "offices": offices,
                "dead_letters_today": dead,
                "live_id": live_id,
            },
            headers=SECURITY_HEADERS,
        )

    async def api_timeline(request: Request, account: Account, scope: domain.Scope) -> Response:
        hours = await store.parts_by_hour(scope, _day(request))
        return JSONResponse(views.timeline(hours), headers=SECURITY_HEADERS)

    async def api_pipeline(request: Request, account: Account, scope: domain.Scope) -> Response:
        now = clock()
        captures = await store.pipeline_captures(scope, now - timedelta(days=30))
        summary = pipeline.summarise(
            captures, now, stuck_after=timedelta(hours=settings.stuck_after_hours), recent=timedelta(hours=24)
        )
        return JSONResponse(summary.as_dict(), headers=SECURITY_HEADERS)

    async def api_alerts(request: Request, account: Account, scope: domain.Scope) -> Response:
        shown = [messages.alert_event(a, "opened") for a in await store.open_alerts()]
        return JSONResponse(
            {"alerts": [e.payload for e in shown if live_rules.visible(e, scope)]}, headers=SECURITY_HEADERS
        )

    async def api_operations(request: Request, account: Account, scope: domain.Scope) -> Response:
        now = clock()
        queues, services = await plumbing(store, probe, settings, now)
        since = datetime.combine(domain.today_wib(now), datetime.min.time(), tzinfo=WIB)
        letters = await store.recent_dead_letters(50)
        return JSONResponse(
            {
                "sampled_at": _iso(probe.sampled_at),
                # "management": each queue's unacknowledged messages known; "amqp": its ready ones alone
                "queue_source": probe.source,
                "queues": [dataclasses.asdict(q) for q in queues],
                "services": [
                    dataclasses.asdict(s) | {"last_message_at": _iso(s.last_message_at)} for s in services
                ],
                "dead_letters": [d | {"dead_at": d["dead_at"].isoformat()} for d in letters],
                "dead_letter_reasons_today": await store.dead_letter_reasons(since),
                # each service's own figures from its /metrics (since it started), where targets are set
                "metrics": [dataclasses.asdict(f) for f in scraper.figures] if scraper else [],
                "metrics_at": _iso(scraper.scraped_at) if scraper else None,
            },
            headers=SECURITY_HEADERS,
        )

    async def api_cases(request: Request, account: Account, scope: domain.Scope) -> Response:
        return JSONResponse(
            {"cases": [views.case_row(c) for c in await store.cases(200)]}, headers=SECURITY_HEADERS
        )

    async def api_case(request: Request, account: Account, scope: domain.Scope) -> Response:
        p = request.path_params
        found = await store.case(p["kabkota"], p["packet_id"], account.username)
        if found is None:
            return JSONResponse({"error": "unknown_case"}, status_code=404, headers=SECURITY_HEADERS)
        view = views.case_row(found) | {
            "detail": found["detail"],
            "history": cases.history(found, found["reads"]),
        }
        return JSONResponse(view, headers=SECURITY_HEADERS)

    async def api_case_decision(request: Request, account: Account, scope: domain.Scope) -> Response:
        try:
            body = json.loads((await request.body())[:4_096] or b"{}")
            decision, reason = str(body.get("decision", "")), str(body.get("reason", ""))
        except (ValueError, AttributeError):
            return JSONResponse({"error": "bad_request"}, status_code=400, headers=SECURITY_HEADERS)
        p = request.path_params
        found = await monitor.request_decision(
            account.username, p["kabkota"], p["packet_id"], decision, reason
        )
        if isinstance(found, cases.Refusal):
            return JSONResponse({"error": found.code}, status_code=found.status, headers=SECURITY_HEADERS)
        return JSONResponse({"requested": found.decision}, status_code=202, headers=SECURITY_HEADERS)

    async def api_runs(request: Request, account: Account, scope: domain.Scope) -> Response:
        found = [runs.run_view(r) for r in await store.runs_of_day(_day(request))]
        return JSONResponse({"runs": found}, headers=SECURITY_HEADERS)

    async def api_runs_trend(request: Request, account: Account, scope: domain.Scope) -> Response:
        """The last finished run of each of the last `days` days (default 30), its figures in the login's scope."""
        text = request.query_params.get("days", "30")
        days = int(text) if text.isascii() and text.isdigit() and len(text) <= 3 else 0
        if not 1 <= days <= runs.TREND_DAYS_MAX:
            return JSONResponse({"error": "days_invalid"}, status_code=400, headers=SECURITY_HEADERS)
        since = domain.today_wib(clock()) - timedelta(days=days - 1)
        finished = await store.finished_runs_since(since)
        lines = await store.lines_of_runs(scope, [r["run_id"] for r in finished])
        per_day = [(r, lines[r["run_id"]]) for r in finished]
        return JSONResponse({"days": runs.trend(per_day)}, headers=SECURITY_HEADERS)

    async def run_report(request: Request, scope: domain.Scope) -> tuple[Row, list[Row]] | None:
        run = await store.run(request.path_params["run_id"])
        return None if run is None else (run, await store.run_lines(scope, run["run_id"]))

    async def api_run(request: Request, account: Account, scope: domain.Scope) -> Response:
        found = await run_report(request, scope)
        if found is None:
            return not_yours()
        run, lines = found
        view = runs.run_view(run) | {
            "totals": runs.totals(lines),
            "breakdowns": runs.breakdowns(lines, regency_names()),
            "lines": [runs.line_view(line) for line in lines],
            # The centre's own summary of the whole run, as the consolidator reported it.
            "summary": run["summary"] if scope.role is domain.Role.PUSAT else None,
        }
        return JSONResponse(view, headers=SECURITY_HEADERS)

    def report_csv(make: Callable[[list[Row]], str], suffix: str) -> Callable[..., Awaitable[Response]]:
        """A run's report (or part of it) as a CSV download, within the login's scope."""

        async def download(request: Request, account: Account, scope: domain.Scope) -> Response:
            found = await run_report(request, scope)
            if found is None:
                return not_yours()
            run, lines = found
            name = f"konsolidasi-{run['day']}-{run['run_id'][-8:]}{suffix}.csv"
            return Response(
                make(lines),
                media_type="text/csv; charset=utf-8",
                headers={**SECURITY_HEADERS, "Content-Disposition": f'attachment; filename="{name}"'},
            )

        return download

    async def run_print(request: Request, account: Account, scope: domain.Scope) -> Response:
        """The run's report as a printable page (A4, Bahasa Indonesia), within the login's scope."""
        found = await run_report(request, scope)
        if found is None:
            return not_yours()
        run, lines = found
        views_ = [runs.line_view(line) for line in lines]
        text = printable.run_page(
            run, views_, runs.totals(lines), runs.breakdowns(lines, regency_names()),
            scope=domain.scope_label(scope, views_, []), printed_by=account.username, generated_at=clock(),
        )  # fmt: skip
        # its own stylesheet inline, allowed by its hash alone; nothing else may load or run
        policy = (
            f"default-src 'none'; style-src '{printing.CSS_HASH}'; frame-ancestors 'none'; form-action 'none'"
        )
        return Response(
            text,
            media_type="text/html; charset=utf-8",
            headers={**SECURITY_HEADERS, "Content-Security-Policy": policy},
        )

    run_csv = report_csv(lambda lines: runs.lines_csv([runs.line_view(line) for line in lines]), "")
    run_breakdowns_csv = report_csv(
        lambda lines: runs.breakdowns_csv(runs.breakdowns(lines, regency_names())), "-rincian"
    )

    async def api_unit(request: Request, account: Account, scope: domain.Scope) -> Response:
        upt_id = request.path_params["upt_id"]
        rows = await store.unit_rows(scope, _day(request), upt_id)
        if not rows:  # another's UPT, or none: the same answer, so ids cannot be probed
            return not_yours()
        return JSONResponse(domain.unit_row(rows[0]), headers=SECURITY_HEADERS)

    async def api_unit_detail(request: Request, account: Account, scope: domain.Scope) -> Response:
        """The UPT's own page: its day, every part it sent, its last days and what the runs found for it."""
        upt_id, day = request.path_params["upt_id"], _day(request)
        live_id = (await live_log.bounds())[1]  # read before the view, as the overview does
        rows = await store.unit_rows(scope, day, upt_id)
        if not rows:
            return not_yours()
        own = domain.scope_of_login(upt_id)  # the UPT alone, within what the login may see (checked above)
        first = day - timedelta(days=unitpage.HISTORY_DAYS - 1)
        history = [
            (past, domain.unit_row(r))
            for past, r in await store.unit_history(upt_id, first, day - timedelta(days=1))
        ]
        finished = [r for r in await store.finished_runs_since(first) if r["day"] <= day]
        lines = await store.lines_of_runs(own, [r["run_id"] for r in finished], upt_id)
        found = [(run, line) for run in finished for line in lines[run["run_id"]]]
        view = unitpage.detail(
            domain.unit_row(rows[0]), day, await store.unit_parts(upt_id, day), history, found, live_id
        )
        return JSONResponse(view, headers=SECURITY_HEADERS)

    async def units_csv(request: Request, account: Account, scope: domain.Scope) -> Response:
        day = _day(request)
        upt_id = request.query_params.get("upt")
        rows = views.worst_first([domain.unit_row(r) for r in await store.unit_rows(scope, day, upt_id)])
        if upt_id and not rows:
            return not_yours()
        return Response(
            views.units_csv(rows),
            media_type="text/csv; charset=utf-8",
            headers={
                **SECURITY_HEADERS,
                "Content-Disposition": f'attachment; filename="upt-{day.isoformat()}.csv"',
            },
        )

    def logged_in(handler: Handler, *roles: domain.Role) -> Callable[[Request], Awaitable[Response]]:
        """The endpoint for a login (401 without one), of one of `roles` if any are named (403 for the others)."""

        async def endpoint(request: Request) -> Response:
            who = await current(request)
            if who is None:
                return JSONResponse({"error": "login required"}, status_code=401, headers=SECURITY_HEADERS)
            if roles and who[1].role not in roles:
                return not_yours()
            return await handler(request, *who)

        return endpoint

    centre, prisons = (domain.Role.PUSAT,), (domain.Role.PUSAT, domain.Role.KANWIL, domain.Role.UPT)
    return [
        Route("/api/units", logged_in(api_units)),
        Route("/api/units/{upt_id}", logged_in(api_unit)),
        Route("/api/units/{upt_id}/detail", logged_in(api_unit_detail)),
        Route("/units.csv", logged_in(units_csv)),
        Route("/api/pipeline", logged_in(api_pipeline, domain.Role.PUSAT, domain.Role.DUKCAPIL)),
        Route("/api/timeline", logged_in(api_timeline)),
        Route("/api/runs", logged_in(api_runs, *prisons)),
        Route("/api/runs/trend", logged_in(api_runs_trend, *prisons)),
        Route("/api/runs/{run_id}", logged_in(api_run, *prisons)),
        Route("/runs/{run_id}.csv", logged_in(run_csv, *prisons)),
        Route("/runs/{run_id}/print", logged_in(run_print, *prisons)),
        Route("/runs/{run_id}/breakdowns.csv", logged_in(run_breakdowns_csv, *prisons)),
        Route("/api/operations", logged_in(api_operations, *centre)),
        Route("/api/alerts", logged_in(api_alerts)),
        Route("/api/adjudications", logged_in(api_cases, *centre)),
        Route("/api/adjudications/{kabkota}/{packet_id}", logged_in(api_case, *centre)),
        Route(
            "/api/adjudications/{kabkota}/{packet_id}/decision",
            logged_in(api_case_decision, *centre),
            methods=["POST"],
        ),
    ]

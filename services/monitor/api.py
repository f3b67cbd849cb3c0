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

from shared.contracts import WIB
from shared.runtime import Clock

from . import domain, messages
from .config import Settings
from .domain import cases, operations, pipeline, runs, views
from .domain import live as live_rules
from .journal import LiveLog
from .probe import QueueProbe
from .store import Account, MonitorStore
from .usecases import Monitor

Row = dict[str, Any]
Who = Callable[[Request], Awaitable[tuple[Account, domain.Scope] | None]]
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    # same-origin, not no-referrer: with no-referrer a browser posts forms with `Origin: null`, and the same-origin
    # check (web.SameOriginWrites) could not tell the monitor's own forms from a forged one.
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


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
) -> list[Route]:
    def _day(request: Request) -> date:
        try:
            return date.fromisoformat(request.query_params["day"])
        except (KeyError, ValueError):
            return domain.today_wib(clock())

    async def api_units(request: Request) -> Response:
        who = await current(request)
        if who is None:
            return JSONResponse({"error": "login required"}, status_code=401)
        account, scope = who
        day = _day(request)
        # Read before the view: the page follows the live events from here, so none between is missed.
        live_id = (await live_log.bounds())[1]
        rows = [domain.unit_row(r) for r in await store.unit_rows(scope, day)]
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

    async def api_timeline(request: Request) -> Response:
        who = await current(request)
        if who is None:
            return JSONResponse({"error": "login required"}, status_code=401)
        hours = await store.parts_by_hour(who[1], _day(request))
        return JSONResponse(views.timeline(hours), headers=SECURITY_HEADERS)

    async def api_pipeline(request: Request) -> Response:
        who = await current(request)
        if who is None:
            return JSONResponse({"error": "login required"}, status_code=401)
        _, scope = who
        if scope.role not in (domain.Role.PUSAT, domain.Role.DUKCAPIL):
            return JSONResponse({"error": "not in your scope"}, status_code=403, headers=SECURITY_HEADERS)
        now = clock()
        captures = await store.pipeline_captures(scope, now - timedelta(days=30))
        summary = pipeline.summarise(
            captures, now, stuck_after=timedelta(hours=settings.stuck_after_hours), recent=timedelta(hours=24)
        )
        return JSONResponse(summary.as_dict(), headers=SECURITY_HEADERS)

    async def api_alerts(request: Request) -> Response:
        who = await current(request)
        if who is None:
            return JSONResponse({"error": "login required"}, status_code=401)
        shown = [messages.alert_event(a, "opened") for a in await store.open_alerts()]
        return JSONResponse(
            {"alerts": [e.payload for e in shown if live_rules.visible(e, who[1])]}, headers=SECURITY_HEADERS
        )

    async def api_operations(request: Request) -> Response:
        who = await current(request)
        if who is None:
            return JSONResponse({"error": "login required"}, status_code=401)
        if who[1].role is not domain.Role.PUSAT:
            return JSONResponse({"error": "not in your scope"}, status_code=403, headers=SECURITY_HEADERS)
        now = clock()
        queues = [
            operations.decide_queue(probe.current.get(q), probe.previous.get(q), q, settings.queue_backlog)
            for q in probe.queues
        ]
        services = operations.decide_services(
            queues, await store.services_seen(), now, timedelta(minutes=settings.quiet_after_minutes)
        )
        since = datetime.combine(domain.today_wib(now), datetime.min.time(), tzinfo=WIB)
        letters = await store.recent_dead_letters(50)
        return JSONResponse(
            {
                "sampled_at": _iso(probe.sampled_at),
                "queues": [dataclasses.asdict(q) for q in queues],
                "services": [
                    dataclasses.asdict(s)
                    | {"last_message_at": s.last_message_at.isoformat() if s.last_message_at else None}
                    for s in services
                ],
                "dead_letters": [d | {"dead_at": d["dead_at"].isoformat()} for d in letters],
                "dead_letter_reasons_today": await store.dead_letter_reasons(since),
            },
            headers=SECURITY_HEADERS,
        )

    async def centre_only(request: Request) -> tuple[Account, domain.Scope] | Response:
        who = await current(request)
        if who is None:
            return JSONResponse({"error": "login required"}, status_code=401)
        if who[1].role is not domain.Role.PUSAT:
            return JSONResponse({"error": "not in your scope"}, status_code=403, headers=SECURITY_HEADERS)
        return who

    async def api_cases(request: Request) -> Response:
        who = await centre_only(request)
        if isinstance(who, Response):
            return who
        return JSONResponse(
            {"cases": [views.case_row(c) for c in await store.cases(200)]}, headers=SECURITY_HEADERS
        )

    async def api_case(request: Request) -> Response:
        who = await centre_only(request)
        if isinstance(who, Response):
            return who
        p = request.path_params
        found = await store.case(p["kabkota"], p["packet_id"], who[0].username)
        if found is None:
            return JSONResponse({"error": "unknown_case"}, status_code=404, headers=SECURITY_HEADERS)
        return JSONResponse(views.case_row(found) | {"detail": found["detail"]}, headers=SECURITY_HEADERS)

    async def api_case_decision(request: Request) -> Response:
        who = await centre_only(request)
        if isinstance(who, Response):
            return who
        try:
            body = json.loads((await request.body())[:4_096] or b"{}")
            decision, reason = str(body.get("decision", "")), str(body.get("reason", ""))
        except (ValueError, AttributeError):
            return JSONResponse({"error": "bad_request"}, status_code=400, headers=SECURITY_HEADERS)
        p = request.path_params
        found = await monitor.request_decision(
            who[0].username, p["kabkota"], p["packet_id"], decision, reason
        )
        if isinstance(found, cases.Refusal):
            return JSONResponse({"error": found.code}, status_code=found.status, headers=SECURITY_HEADERS)
        return JSONResponse({"requested": found.decision}, status_code=202, headers=SECURITY_HEADERS)

    async def api_runs(request: Request) -> Response:
        who = await current(request)
        if who is None:
            return JSONResponse({"error": "login required"}, status_code=401)
        _, scope = who
        if scope.role is domain.Role.DUKCAPIL:
            return JSONResponse({"error": "not in your scope"}, status_code=403, headers=SECURITY_HEADERS)
        found = [runs.run_view(r) for r in await store.runs_of_day(_day(request))]
        return JSONResponse({"runs": found}, headers=SECURITY_HEADERS)

    async def run_report(request: Request) -> tuple[domain.Scope, Row, list[Row]] | Response:
        who = await current(request)
        if who is None:
            return JSONResponse({"error": "login required"}, status_code=401)
        _, scope = who
        run = await store.run(request.path_params["run_id"])
        if scope.role is domain.Role.DUKCAPIL or run is None:
            return JSONResponse({"error": "not in your scope"}, status_code=403, headers=SECURITY_HEADERS)
        lines = await store.run_lines(scope, run["run_id"])
        return scope, run, lines

    async def api_run(request: Request) -> Response:
        found = await run_report(request)
        if isinstance(found, Response):
            return found
        scope, run, lines = found
        view = runs.run_view(run) | {
            "totals": runs.totals(lines),
            "lines": [runs.line_view(line) for line in lines],
            # The centre's own summary of the whole run, as the consolidator reported it.
            "summary": run["summary"] if scope.role is domain.Role.PUSAT else None,
        }
        return JSONResponse(view, headers=SECURITY_HEADERS)

    async def run_csv(request: Request) -> Response:
        found = await run_report(request)
        if isinstance(found, Response):
            return found
        _, run, lines = found
        name = f"konsolidasi-{run['day']}-{run['run_id'][-8:]}.csv"
        return Response(
            runs.lines_csv([runs.line_view(line) for line in lines]),
            media_type="text/csv; charset=utf-8",
            headers={**SECURITY_HEADERS, "Content-Disposition": f'attachment; filename="{name}"'},
        )

    async def api_unit(request: Request) -> Response:
        who = await current(request)
        if who is None:
            return JSONResponse({"error": "login required"}, status_code=401)
        _, scope = who
        upt_id = request.path_params["upt_id"]
        rows = await store.unit_rows(scope, _day(request), upt_id)
        if not rows:  # another's UPT, or none: the same answer, so ids cannot be probed
            return JSONResponse({"error": "not in your scope"}, status_code=403, headers=SECURITY_HEADERS)
        return JSONResponse(domain.unit_row(rows[0]), headers=SECURITY_HEADERS)

    async def units_csv(request: Request) -> Response:
        who = await current(request)
        if who is None:
            return JSONResponse({"error": "login required"}, status_code=401)
        _, scope = who
        day = _day(request)
        upt_id = request.query_params.get("upt")
        rows = [domain.unit_row(r) for r in await store.unit_rows(scope, day, upt_id)]
        if upt_id and not rows:
            return JSONResponse({"error": "not in your scope"}, status_code=403, headers=SECURITY_HEADERS)
        return Response(
            views.units_csv(rows),
            media_type="text/csv; charset=utf-8",
            headers={
                **SECURITY_HEADERS,
                "Content-Disposition": f'attachment; filename="upt-{day.isoformat()}.csv"',
            },
        )

    return [
        Route("/api/units", api_units),
        Route("/api/units/{upt_id}", api_unit),
        Route("/units.csv", units_csv),
        Route("/api/pipeline", api_pipeline),
        Route("/api/timeline", api_timeline),
        Route("/api/runs", api_runs),
        Route("/api/runs/{run_id}", api_run),
        Route("/runs/{run_id}.csv", run_csv),
        Route("/api/operations", api_operations),
        Route("/api/alerts", api_alerts),
        Route("/api/adjudications", api_cases),
        Route("/api/adjudications/{kabkota}/{packet_id}", api_case),
        Route("/api/adjudications/{kabkota}/{packet_id}/decision", api_case_decision, methods=["POST"]),
    ]

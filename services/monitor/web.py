"""The supervisors' web view: login, the scoped unit table, and live updates over SSE (resumed by event id)."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import date, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from shared.contracts import WIB
from shared.webserver import WebServer

from . import domain, messages
from .config import Settings
from .domain import access, operations, pipeline, runs, views
from .domain import live as live_rules
from .domain.access import LoginPolicy
from .hub import Hub
from .journal import LiveLog
from .live import stream as live_stream
from .logins import Logins, token_hash
from .probe import QueueProbe
from .store import Account, MonitorStore

log = logging.getLogger("simpul.monitor.web")
COOKIE = "simpul_session"
Clock = Callable[[], datetime]
Check = Callable[[], Awaitable[bool]]
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    # same-origin, not no-referrer: with no-referrer a browser posts forms with `Origin: null`, and the same-origin
    # check (SameOriginWrites) could not tell the monitor's own forms from a forged one.
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


# Browser libraries installed from npm by `make assets` (services/monitor/assets/package.json), never copied into
# the repository and never loaded from a CDN: served from here, by name.
_ASSETS = Path(str(resources.files("services.monitor") / "assets" / "node_modules"))
VENDOR = {"chart.umd.min.js": _ASSETS / "chart.js" / "dist" / "chart.umd.min.js"}


Row = dict[str, Any]


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def _static(name: str) -> str:
    return (resources.files("services.monitor") / "static" / name).read_text(encoding="utf-8")


def _last_event_id(request: Request) -> int | None:
    """The id of the last event the page got: the browser's Last-Event-ID on a reconnect, else the id its view
    was read at (`after`)."""
    for value in (request.headers.get("last-event-id"), request.query_params.get("after")):
        if value and value.isdigit() and len(value) < 19:
            return int(value)
    return None


class SameOriginWrites:
    """CSRF protection: a request that may change state (anything but GET, HEAD, OPTIONS) is refused unless the
    browser says it comes from the monitor's own origin (domain/access.py). With the SameSite=Strict cookie, a
    page elsewhere can neither ride a session nor log someone in to another account."""

    def __init__(self, app: ASGIApp, allowed: Sequence[str] = ()) -> None:
        self.app = app
        self.allowed = tuple(allowed)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            request = Request(scope)
            own = [f"{request.url.scheme}://{request.headers.get('host', '')}", *self.allowed]
            if not access.decide_same_origin(
                request.method, request.headers.get("origin"), request.headers.get("referer"), own
            ):
                log.warning("refused a cross-origin request", extra={"path": request.url.path})
                response = JSONResponse({"error": "cross-origin request refused"}, status_code=403)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def build_web(
    store: MonitorStore,
    hub: Hub,
    live_log: LiveLog,
    probe: QueueProbe,
    settings: Settings,
    *,
    clock: Clock,
    checks: Mapping[str, Check],
    stopping: asyncio.Event,
) -> Starlette:
    logins = Logins(store, LoginPolicy(max_failures=settings.login_max_failures), settings.session_hours)

    async def current(request: Request) -> tuple[Account, domain.Scope] | None:
        token = request.cookies.get(COOKIE)
        if not token:
            return None
        account = await store.session_user(token_hash(token), clock())
        return (account, domain.scope_of_login(account.unit_id)) if account else None

    def page(name: str, status: int = 200) -> Response:
        return Response(_static(name), status_code=status, media_type="text/html", headers=SECURITY_HEADERS)

    async def index(request: Request) -> Response:
        if await current(request) is None:
            return RedirectResponse("/login", status_code=303)
        return page("index.html")

    async def login_form(request: Request) -> Response:
        return page("login.html")

    async def login(request: Request) -> Response:
        body = await request.body()
        form = parse_qs(body[:4_096].decode("utf-8", "replace"))
        username = form.get("username", [""])[0][:100]
        password = form.get("password", [""])[0][:200]
        address = request.client.host if request.client else "unknown"
        outcome = await logins.log_in(username, password, address, clock())
        if outcome.account is None or outcome.token is None:
            where = f"/login?locked={outcome.retry_after_s}" if outcome.retry_after_s else "/login?failed=1"
            return RedirectResponse(where, status_code=303)
        response = RedirectResponse("/", status_code=303)
        response.set_cookie(
            COOKIE,
            outcome.token,
            max_age=int(settings.session_hours * 3600),
            httponly=True,
            samesite="strict",
            secure=settings.secure_cookies or request.url.scheme == "https",
            path="/",
        )
        return response

    async def logout(request: Request) -> Response:
        if token := request.cookies.get(COOKIE):
            await store.end_session(token_hash(token))
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(COOKIE, path="/")
        return response

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

    async def events(request: Request) -> Response:
        who = await current(request)
        if who is None:
            return JSONResponse({"error": "login required"}, status_code=401)
        _, scope = who
        events = live_stream(
            live_log,
            hub,
            scope,
            _last_event_id(request),
            heartbeat=settings.sse_heartbeat_seconds,
            stopping=stopping,
        )
        return StreamingResponse(
            events, media_type="text/event-stream", headers={**SECURITY_HEADERS, "X-Accel-Buffering": "no"}
        )

    async def ready(request: Request) -> Response:
        results = {}
        for name, check in checks.items():
            try:
                results[name] = bool(await asyncio.wait_for(check(), timeout=3))
            except Exception:
                results[name] = False
        ok = all(results.values())
        return JSONResponse(
            {"ready": ok, "checks": results, "live_clients": hub.clients}, status_code=200 if ok else 503
        )

    async def alive(request: Request) -> Response:
        return JSONResponse({"live": True})

    async def vendor(request: Request) -> Response:
        path = VENDOR.get(request.path_params["name"])
        if path is None or not path.is_file():
            return Response("not installed: run `make assets`", status_code=404, media_type="text/plain")
        return FileResponse(path, media_type="text/javascript", headers={"Cache-Control": "max-age=86400"})

    static = StaticFiles(directory=str(resources.files("services.monitor") / "static"))
    return Starlette(
        middleware=[Middleware(SameOriginWrites, allowed=settings.allowed_origins)],
        routes=[
            Route("/", index),
            Route("/login", login_form, methods=["GET"]),
            Route("/login", login, methods=["POST"]),
            Route("/logout", logout, methods=["POST"]),
            Route("/api/units", api_units),
            Route("/api/units/{upt_id}", api_unit),
            Route("/api/pipeline", api_pipeline),
            Route("/api/runs", api_runs),
            Route("/api/operations", api_operations),
            Route("/api/alerts", api_alerts),
            Route("/api/runs/{run_id}", api_run),
            Route("/runs/{run_id}.csv", run_csv),
            Route("/units.csv", units_csv),
            Route("/events", events),
            Route("/health/ready", ready),
            Route("/health/live", alive),
            Route("/static/vendor/{name}", vendor),
            Mount("/static", app=static, name="static"),
        ],
    )


__all__ = ["WebServer", "build_web"]

"""The supervisors' web view: login, the scoped unit table, and live updates over SSE (resumed by event id)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime
from importlib import resources
from pathlib import Path
from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.datastructures import MutableHeaders
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.webserver import WebServer

from . import api, domain
from .config import Settings
from .domain import access
from .domain.access import LoginPolicy
from .hub import Hub
from .journal import LiveLog
from .live import stream as live_stream
from .logins import Logins, token_hash
from .probe import QueueProbe
from .scrape import MetricsScraper
from .store import Account, MonitorStore
from .usecases import Monitor

log = logging.getLogger("simpul.monitor.web")
COOKIE = "simpul_session"
Clock = Callable[[], datetime]
Check = Callable[[], Awaitable[bool]]
SECURITY_HEADERS = api.SECURITY_HEADERS


# Browser libraries installed from npm by `make assets` (services/monitor/assets/package.json), never copied into
# the repository and never loaded from a CDN: served from here, by name.
_ASSETS = Path(str(resources.files("services.monitor") / "assets" / "node_modules"))
VENDOR = {"chart.umd.min.js": _ASSETS / "chart.js" / "dist" / "chart.umd.min.js"}


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


class SecurityHeaders:
    """Every response carries the security headers (api.SECURITY_HEADERS): pages, API answers, static files,
    redirects, refusals and errors alike; a header a handler set itself (a static file's Cache-Control) stays.
    A path or query string holding a NUL byte is refused here (400): no store may ever be asked for one."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    if name not in headers:
                        headers[name] = value
            await send(message)

        query = scope.get("query_string", b"")
        if "\x00" in scope.get("path", "") or b"\x00" in query or b"%00" in query:
            response = JSONResponse({"error": "bad_request"}, status_code=400)
            await response(scope, receive, with_headers)
            return
        await self.app(scope, receive, with_headers)


async def server_error(request: Request, exc: Exception) -> Response:
    """What a failure inside the monitor answers (logged by Starlette): no detail, the security headers."""
    return JSONResponse({"error": "internal_error"}, status_code=500, headers=SECURITY_HEADERS)


def build_web(
    store: MonitorStore,
    hub: Hub,
    live_log: LiveLog,
    probe: QueueProbe,
    monitor: Monitor,
    settings: Settings,
    *,
    clock: Clock,
    checks: Mapping[str, Check],
    stopping: asyncio.Event,
    scraper: MetricsScraper | None = None,
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

    async def unit_page(request: Request) -> Response:
        """One UPT's page, for a login that may see it; another's (or none) is refused alike, so ids cannot be
        probed."""
        who = await current(request)
        if who is None:
            return RedirectResponse("/login", status_code=303)
        if not await store.unit_rows(who[1], domain.today_wib(clock()), request.path_params["upt_id"]):
            return page("forbidden.html", 403)
        return page("unit.html")

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

    async def events(request: Request) -> Response:
        who = await current(request)
        if who is None:
            return JSONResponse({"error": "login required"}, status_code=401)
        _, scope = who

        async def still_allowed() -> bool:
            return await current(request) is not None

        events = live_stream(
            live_log,
            hub,
            scope,
            _last_event_id(request),
            heartbeat=settings.sse_heartbeat_seconds,
            stopping=stopping,
            still_allowed=still_allowed,
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
        middleware=[
            Middleware(SecurityHeaders),
            Middleware(SameOriginWrites, allowed=settings.allowed_origins),
        ],
        exception_handlers={Exception: server_error},
        routes=[
            Route("/", index),
            Route("/units/{upt_id}", unit_page),
            Route("/login", login_form, methods=["GET"]),
            Route("/login", login, methods=["POST"]),
            Route("/logout", logout, methods=["POST"]),
            *api.routes(
                store, live_log, probe, monitor, settings, clock=clock, current=current, scraper=scraper
            ),
            Route("/events", events),
            Route("/health/ready", ready),
            Route("/health/live", alive),
            Route("/static/vendor/{name}", vendor),
            Mount("/static", app=static, name="static"),
        ],
    )


__all__ = ["WebServer", "build_web"]

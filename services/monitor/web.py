"""The supervisors' web view: login, the scoped unit table, and live updates over SSE (resumed by event id)."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets
from collections.abc import Awaitable, Callable, Mapping
from datetime import date, datetime, timedelta
from importlib import resources
from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from shared.contracts import WIB
from shared.webserver import WebServer

from . import accounts, domain
from .config import Settings
from .hub import Hub
from .journal import LiveLog
from .live import stream as live_stream
from .store import Account, MonitorStore

log = logging.getLogger("simpul.monitor.web")
COOKIE = "simpul_session"
Clock = Callable[[], datetime]
Check = Callable[[], Awaitable[bool]]
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _static(name: str) -> str:
    return (resources.files("services.monitor") / "static" / name).read_text(encoding="utf-8")


def _last_event_id(request: Request) -> int | None:
    """The id of the last event the page got: the browser's Last-Event-ID on a reconnect, else the id its view
    was read at (`after`)."""
    for value in (request.headers.get("last-event-id"), request.query_params.get("after")):
        if value and value.isdigit() and len(value) < 19:
            return int(value)
    return None


def build_web(
    store: MonitorStore,
    hub: Hub,
    live_log: LiveLog,
    settings: Settings,
    *,
    clock: Clock,
    checks: Mapping[str, Check],
    stopping: asyncio.Event,
) -> Starlette:
    async def current(request: Request) -> tuple[Account, domain.Scope] | None:
        token = request.cookies.get(COOKIE)
        if not token:
            return None
        account = await store.session_user(_token_hash(token), clock())
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
        account = await store.account(username)
        loop = asyncio.get_running_loop()
        ok = await loop.run_in_executor(
            None,
            accounts.verify_password,
            password,
            account.password_hash if account else accounts.DUMMY_HASH,
        )
        if account is None or not ok:
            log.warning("monitor login refused", extra={"username": username})
            return RedirectResponse("/login?failed=1", status_code=303)
        token = secrets.token_urlsafe(32)
        expires = clock() + timedelta(hours=settings.session_hours)
        await store.create_session(_token_hash(token), account.username, expires)
        log.info("monitor login", extra={"username": account.username, "scope": account.unit_id})
        response = RedirectResponse("/", status_code=303)
        response.set_cookie(
            COOKIE,
            token,
            max_age=int(settings.session_hours * 3600),
            httponly=True,
            samesite="strict",
            secure=settings.secure_cookies,
            path="/",
        )
        return response

    async def logout(request: Request) -> Response:
        if token := request.cookies.get(COOKIE):
            await store.end_session(_token_hash(token))
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

    static = StaticFiles(directory=str(resources.files("services.monitor") / "static"))
    return Starlette(
        routes=[
            Route("/", index),
            Route("/login", login_form, methods=["GET"]),
            Route("/login", login, methods=["POST"]),
            Route("/logout", logout, methods=["POST"]),
            Route("/api/units", api_units),
            Route("/events", events),
            Route("/health/ready", ready),
            Route("/health/live", alive),
            Mount("/static", app=static, name="static"),
        ]
    )


__all__ = ["WebServer", "build_web"]

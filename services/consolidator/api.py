"""The centre's person lookup and report download over HTTP: Basic logins, every read audited, OpenAPI."""

from __future__ import annotations

import enum
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Protocol

import asyncpg
import orjson
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from shared import nik as niks
from shared.runtime import Clock, utcnow

from .api_users import MAX_USERNAME, Authenticator, basic_credentials
from .auditing import AuditWriter
from .domain.report import RunReport
from .lookup import AuditEntry, Found, LookupStore, Outcome, PersonRecord, QueryKind

REALM = "simpul-consolidator"
CENTRE_ROLE = "pusat"
PURPOSE_MIN, PURPOSE_MAX = 3, 500
_MAX_QUERY = 200
_CENTRAL_ID = re.compile(r"C([0-9]{1,18})")
# Personal data: never kept by a browser or proxy, never sniffed into another type.
PRIVATE = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}
# A report page is static: inline styles at most, nothing fetched, nothing run, never framed.
REPORT_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'"


class ErrorCode(enum.StrEnum):
    PURPOSE_REQUIRED = "PURPOSE_REQUIRED"
    NIK_MALFORMED = "NIK_MALFORMED"
    CENTRAL_ID_MALFORMED = "CENTRAL_ID_MALFORMED"
    DAY_MALFORMED = "DAY_MALFORMED"
    PERSON_NOT_FOUND = "PERSON_NOT_FOUND"
    RUN_NOT_FOUND = "RUN_NOT_FOUND"
    REPORT_FILE_NOT_FOUND = "REPORT_FILE_NOT_FOUND"
    NOT_AUTHENTICATED = "NOT_AUTHENTICATED"
    FORBIDDEN = "FORBIDDEN"
    NOT_FOUND = "NOT_FOUND"
    METHOD_NOT_ALLOWED = "METHOD_NOT_ALLOWED"
    INTERNAL = "INTERNAL"


class ErrorBody(BaseModel):
    """Every refusal: a stable code and a sentence for people."""

    error: ErrorCode
    detail: str


class ReportSource(Protocol):
    async def load_report(self, run_id: str) -> RunReport | None: ...
    async def runs_of_day(self, day: date) -> list[dict[str, Any]]: ...


CsvFiles = Callable[[RunReport], Mapping[str, str]]


class HtmlPage(Protocol):
    def __call__(self, report: RunReport, *, generated_at: datetime) -> str: ...


_OUTCOMES: dict[int, Outcome] = {400: "invalid", 401: "unauthenticated", 403: "refused", 404: "not_found"}


class Refused(Exception):
    """Ends a request with an error answer; the audit's outcome follows from the status."""

    def __init__(self, status: int, code: ErrorCode, detail: str) -> None:
        super().__init__(detail)
        self.status, self.code, self.detail, self.outcome = status, code, detail, _OUTCOMES[status]


@dataclass(frozen=True)
class Answer:
    response: Response
    outcome: Outcome
    person_id: int | None = None


Handler = Callable[[Request], Awaitable[Answer]]


def error(status: int, code: ErrorCode, detail: str, headers: Mapping[str, str] | None = None) -> Response:
    return JSONResponse({"error": code.value, "detail": detail}, status_code=status, headers=headers)


def _clean(text: str, limit: int) -> str:
    """What may go into a text column: PostgreSQL refuses NUL, and a caller's input is bounded."""
    return text.replace("\x00", "\N{REPLACEMENT CHARACTER}")[:limit]


def check_purpose(request: Request, *, required: bool) -> None:
    purpose = request.query_params.get("purpose")
    if purpose is None and not required:
        return
    purpose = (purpose or "").strip()
    if not (PURPOSE_MIN <= len(purpose) <= PURPOSE_MAX and purpose.isprintable()):
        detail = f"say why: query parameter 'purpose', {PURPOSE_MIN}-{PURPOSE_MAX} printable characters"
        raise Refused(400, ErrorCode.PURPOSE_REQUIRED, detail)


def person_answer(found: Found | None) -> Answer:
    if found is None:
        return Answer(error(404, ErrorCode.PERSON_NOT_FOUND, "no central record under this key"), "not_found")
    headers = dict(PRIVATE)
    if found.redirected:  # the record asked for lives on in another: answered with that one, and said so
        headers["Content-Location"] = f"/persons/C{found.person_id}"
    return Answer(
        Response(found.document, media_type="application/json", headers=headers), "found", found.person_id
    )


@dataclass(frozen=True)
class Audited:
    """A route whose every request is logged in, checked for the centre's role and audited."""

    kind: QueryKind
    query: Callable[[Request], str]  # what was asked for, as the audit keeps it
    handler: Handler
    purpose_required: bool


def build_api(
    pool_provider: Callable[[], asyncpg.Pool],
    reports: ReportSource,
    *,
    clock: Clock = utcnow,
    csv_files: CsvFiles | None = None,
    html_page: HtmlPage | None = None,
    login_cache: timedelta = timedelta(seconds=60),
) -> Starlette:
    """The lookup API on the consolidator's pool (`pool_provider` is called per request: the pool opens with
    the service). The renderers default to services/consolidator/report/render.py."""
    if csv_files is None or html_page is None:
        from .report import render

        csv_files, html_page = csv_files or render.csv_files, html_page or render.html_page
    store = LookupStore(pool_provider)
    auth = Authenticator(store.user, ttl=login_cache, clock=clock)
    auditor = AuditWriter(store.audit)

    def audited(route: Audited) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            given = basic_credentials(request.headers.get("authorization", ""))
            who, role = (given[0] if given else "anonymous"), "none"
            try:
                user = await auth.verify(*given) if given else None
                if user is None:
                    raise Refused(401, ErrorCode.NOT_AUTHENTICATED, "valid HTTP Basic credentials needed")
                who, role = user.username, user.role
                if user.role != CENTRE_ROLE:
                    raise Refused(403, ErrorCode.FORBIDDEN, "only the centre (pusat) may read this")
                check_purpose(request, required=route.purpose_required)
                answer = await route.handler(request)
            except Refused as no:
                challenge = {"WWW-Authenticate": f'Basic realm="{REALM}"'} if no.status == 401 else None
                answer = Answer(error(no.status, no.code, no.detail, challenge), no.outcome)
            purpose = request.query_params.get("purpose")
            await auditor.write(
                AuditEntry(
                    who=_clean(who, MAX_USERNAME),
                    role=role,
                    purpose=None if purpose is None else _clean(purpose, PURPOSE_MAX),
                    query_kind=route.kind,
                    query=_clean(route.query(request), _MAX_QUERY),
                    person_id=answer.person_id,
                    outcome=answer.outcome,
                    status=answer.response.status_code,
                )
            )
            return answer.response

        return endpoint

    async def by_nik(request: Request) -> Answer:
        nik = niks.normalise(request.path_params["nik"])
        if len(nik) != 16 or not (nik.isascii() and nik.isdigit()):
            raise Refused(400, ErrorCode.NIK_MALFORMED, "a NIK has exactly 16 digits")
        return person_answer(await store.by_nik(nik))

    async def by_central_id(request: Request) -> Answer:
        matched = _CENTRAL_ID.fullmatch(request.path_params["central_id"])
        if matched is None:
            raise Refused(400, ErrorCode.CENTRAL_ID_MALFORMED, "a central id is 'C' and digits, as C123")
        return person_answer(await store.by_person_id(int(matched.group(1))))

    async def runs(request: Request) -> Answer:
        try:
            day = date.fromisoformat(request.query_params.get("day", ""))
        except ValueError:
            raise Refused(400, ErrorCode.DAY_MALFORMED, "query parameter 'day' as YYYY-MM-DD") from None
        body = orjson.dumps({"day": day, "runs": await reports.runs_of_day(day)}, default=str)
        return Answer(Response(body, media_type="application/json", headers=PRIVATE), "found")

    async def report(request: Request) -> RunReport:
        found = await reports.load_report(request.path_params["run_id"])
        if found is None:
            raise Refused(404, ErrorCode.RUN_NOT_FOUND, "no report of this run")
        return found

    async def report_html(request: Request) -> Answer:
        page = html_page(await report(request), generated_at=clock())
        headers = PRIVATE | {"Content-Security-Policy": REPORT_CSP}
        return Answer(Response(page, media_type="text/html; charset=utf-8", headers=headers), "found")

    async def report_csv(request: Request) -> Answer:
        files, name = csv_files(await report(request)), request.path_params["name"]
        text = files.get(f"{name}.csv", files.get(name))  # the renderer's names may carry the suffix or not
        if text is None:
            raise Refused(404, ErrorCode.REPORT_FILE_NOT_FOUND, f"files: {', '.join(sorted(files))}")
        filename = re.sub(r"[^A-Za-z0-9._-]", "_", f"{request.path_params['run_id']}-{name}.csv")
        headers = PRIVATE | {"Content-Disposition": f'attachment; filename="{filename}"'}
        return Answer(Response(text, media_type="text/csv; charset=utf-8", headers=headers), "found")

    async def health(request: Request) -> Response:
        try:
            ok = await store.ping()
        except (OSError, RuntimeError, asyncpg.PostgresError):
            ok = False
        return JSONResponse({"status": "ok" if ok else "unavailable"}, status_code=200 if ok else 503)

    async def openapi(request: Request) -> Response:
        return JSONResponse(document)

    def path(name: str) -> Callable[[Request], str]:
        return lambda request: str(request.path_params.get(name, ""))

    def day(request: Request) -> str:
        return request.query_params.get("day", "")

    routes: dict[str, tuple[Audited | Callable[[Request], Awaitable[Response]], Doc]] = {
        "/persons/by-nik/{nik}": (Audited("nik", path("nik"), by_nik, True), BY_NIK),
        "/persons/{central_id}": (
            Audited("central_id", path("central_id"), by_central_id, True),
            BY_CENTRAL_ID,
        ),
        "/runs": (Audited("report", day, runs, False), RUNS),
        "/runs/{run_id}/report.html": (Audited("report", path("run_id"), report_html, False), REPORT_HTML),
        "/runs/{run_id}/{name}.csv": (Audited("report", path("run_id"), report_csv, False), REPORT_CSV),
        "/health": (health, HEALTH),
        "/openapi.json": (openapi, OPENAPI),
    }
    document = openapi_document({p: doc for p, (_, doc) in routes.items()})
    return Starlette(
        routes=[
            Route(p, audited(e) if isinstance(e, Audited) else e, methods=["GET"])
            for p, (e, _) in routes.items()
        ],
        exception_handlers={HTTPException: _http_error, Exception: _internal_error},
    )


async def _http_error(request: Request, exc: Exception) -> Response:
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    code = {404: ErrorCode.NOT_FOUND, 405: ErrorCode.METHOD_NOT_ALLOWED}.get(status, ErrorCode.INTERNAL)
    headers = exc.headers if isinstance(exc, HTTPException) else None
    return error(status, code, str(getattr(exc, "detail", "")), headers)


async def _internal_error(request: Request, exc: Exception) -> Response:
    return error(500, ErrorCode.INTERNAL, "internal error: nothing was answered")


# The OpenAPI document, built from the same table as the routes so that the two cannot drift apart.
@dataclass(frozen=True)
class Doc:
    summary: str
    ok: Mapping[str, Any]  # the 200 answer's content by media type
    parameters: tuple[dict[str, Any], ...] = ()
    errors: tuple[int, ...] = (400, 401, 403, 404)
    secured: bool = True


def _param(where: str, name: str, description: str, required: bool = True, **schema: Any) -> dict[str, Any]:
    return {"name": name, "in": where, "required": required, "description": description, "schema": schema}


def _json(ref: str | None = None, **schema: Any) -> dict[str, Any]:
    return {"application/json": {"schema": {"$ref": f"#/components/schemas/{ref}"} if ref else schema}}


_LIMITS: dict[str, Any] = {"type": "string", "minLength": PURPOSE_MIN, "maxLength": PURPOSE_MAX}
PURPOSE_NEEDED = _param("query", "purpose", "why the caller reads this record (kept in the audit)", **_LIMITS)
PURPOSE = _param("query", "purpose", "why the caller reads this (kept in the audit)", False, **_LIMITS)
_RUN_ID = _param("path", "run_id", "the run's id", type="string")
BY_NIK = Doc(
    "A person's central record by NIK (centre only, audited). A record merged away answers with the one it "
    "was merged into, naming the one asked for in `redirected_from` and the answer in Content-Location.",
    _json("PersonRecord"),
    (_param("path", "nik", "16 digits", type="string", pattern="^[0-9]{16}$"), PURPOSE_NEEDED),
)
BY_CENTRAL_ID = Doc(
    "A person's central record by central id (centre only, audited); merges are followed as by NIK.",
    _json("PersonRecord"),
    (
        _param("path", "central_id", "'C' and a number", type="string", pattern="^C[0-9]{1,18}$"),
        PURPOSE_NEEDED,
    ),
)
RUNS = Doc(
    "The consolidation runs of a day (centre only, audited).",
    _json(type="object", properties={"day": {"type": "string", "format": "date"}, "runs": {"type": "array"}}),
    (_param("query", "day", "YYYY-MM-DD", type="string", format="date"), PURPOSE),
    errors=(400, 401, 403),
)
REPORT_HTML = Doc("A run's report as a page (centre only, audited).", {"text/html": {}}, (_RUN_ID, PURPOSE))
REPORT_CSV = Doc(
    "One file of a run's report (centre only, audited); an unknown name answers 404 listing the names.",
    {"text/csv": {}},
    (
        _RUN_ID,
        _param("path", "name", "a file of the report, as upt, kanwil or national", type="string"),
        PURPOSE,
    ),
)
HEALTH = Doc(
    "Whether the API reaches its database (no login); 503 when it does not.",
    _json(type="object", properties={"status": {"enum": ["ok", "unavailable"]}}),
    errors=(),
    secured=False,
)
OPENAPI = Doc("This document (no login).", _json(type="object"), errors=(), secured=False)
_WHEN = {
    400: "a malformed key, day or purpose",
    401: "no credentials, an unknown or disabled login, or a wrong password",
    403: "a valid login whose role is not pusat",
    404: "nothing under this key",
}


def openapi_document(docs: Mapping[str, Doc]) -> dict[str, Any]:
    _, schemas = models_json_schema(
        [(PersonRecord, "serialization"), (ErrorBody, "serialization")],
        ref_template="#/components/schemas/{model}",
    )
    challenge = {"WWW-Authenticate": {"schema": {"type": "string"}, "description": f'Basic realm="{REALM}"'}}
    paths: dict[str, Any] = {}
    for path, doc in docs.items():
        responses: dict[str, Any] = {"200": {"description": "answered", "content": dict(doc.ok)}}
        for status in doc.errors:
            responses[str(status)] = {"description": _WHEN[status], "content": _json("ErrorBody")}
        if 401 in doc.errors:
            responses["401"]["headers"] = challenge
        paths[path] = {
            "get": {
                "operationId": re.sub(r"[^A-Za-z0-9]+", "_", path).strip("_"),
                "summary": doc.summary,
                "parameters": list(doc.parameters),
                "responses": responses,
                "security": [{"basic": []}] if doc.secured else [],
            }
        }
    return {
        "openapi": "3.1.0",
        "info": {"title": "simpul consolidator lookup", "version": "1.0.0"},
        "paths": paths,
        "components": {
            "securitySchemes": {"basic": {"type": "http", "scheme": "basic"}},
            "schemas": schemas["$defs"],
        },
    }

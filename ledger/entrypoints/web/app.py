"""The ASGI application: ``create_app(...)`` builds the API, the web view and their wiring.

FastAPI (on Starlette) was chosen for the OpenAPI document it derives from the routes
(``/api/v1/openapi.json``) and for per-request authentication as a dependency; uvicorn serves it,
``--workers N`` for several processes (each opens its own ledger; writes meet in the database).
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from ledger import __version__
from ledger.adapters.oidc import OidcConfig
from ledger.domain.errors import LedgerError
from ledger.entrypoints.web.api import router as api_router
from ledger.entrypoints.web.auth import Sessions, Unauthenticated
from ledger.entrypoints.web.errors import (
    error_response,
    headers_of,
    internal_response,
    shown,
    status_of,
)
from ledger.entrypoints.web.pages import error_page, signin_page
from ledger.entrypoints.web.pages import router as pages_router
from ledger.entrypoints.web.signin import router as signin_router
from ledger.entrypoints.web.world import World

access_log = logging.getLogger("obc_ledger.access")


def _configure_access_log() -> None:
    """The access log and the security log (refused sign-ins): JSON lines on stderr."""
    for log in (access_log, logging.getLogger("obc_ledger.security")):
        if log.handlers:
            continue
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        log.propagate = False


# The web view's pages run no script at all and load nothing from elsewhere: a script injected
# into a page (a provider's text shown back, say) would not run. Styles are the pages' own inline
# <style>; frame-ancestors (and X-Frame-Options) keep the close and dispute forms out of frames.
PAGE_POLICY = (
    b"default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
    b"frame-ancestors 'none'; base-uri 'none'"
)


# A multipart upload's body holds the file and a little more (boundaries, the form's fields).
FORM_SLACK = 64 * 1024


class _BodyTooLarge(Exception):
    """The request's body went past the service's limit while it was being read."""


def _too_large(limit: int) -> JSONResponse:
    return error_response(LedgerError(f"the body is larger than {limit:,} bytes", code="body_too_large"))


class AccessLog:
    """One JSON line per request (time, method, path, status, ms, principal); security headers on
    every response (a 500 too); no body past ``max_body`` bytes is read, whoever sends it — a
    declared Content-Length beyond it is refused before routing, a body without one is counted as
    it streams in and cut off at the limit (413 ``body_too_large``)."""

    def __init__(self, app: Any, quiet: bool = False, max_body: int | None = None) -> None:
        self.app, self.quiet = app, quiet
        self.max_body = max_body

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        path = scope.get("path", "")
        page = not path.startswith("/api/") and path != "/healthz"
        status = [500]
        started_response = [False]
        limit = self.max_body
        counted = [0]
        overflow = [False]

        async def receiving() -> Any:
            message = await receive()
            if limit is not None and message["type"] == "http.request":
                counted[0] += len(message.get("body", b""))
                if counted[0] > limit:
                    overflow[0] = True
                    raise _BodyTooLarge
            return message

        async def sending(message: Any, ours: bool = False) -> None:
            if overflow[0] and not ours:  # the app's answer to a body cut off: ours replaces it
                return
            if message["type"] == "http.response.start":
                started_response[0] = True
                status[0] = message["status"]
                headers = list(message.get("headers", []))
                names = {k.lower() for k, _ in headers}
                extra = [(b"x-content-type-options", b"nosniff")]
                if not page:  # API answers are not cached, and (the report's HTML) run nothing
                    extra += [
                        (b"cache-control", b"no-store"),
                        (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'"),
                    ]
                if page:
                    extra += [
                        (b"content-security-policy", PAGE_POLICY),
                        (b"x-frame-options", b"DENY"),
                        (b"referrer-policy", b"same-origin"),
                        (b"cache-control", b"no-store"),
                    ]
                headers += [(k, v) for k, v in extra if k not in names]
                message = {**message, "headers": headers}
            await send(message)

        async def answer(response: Response) -> None:
            async def ours(message: Any) -> None:
                await sending(message, ours=True)

            await response(scope, receive, ours)

        try:
            length = dict(scope.get("headers") or []).get(b"content-length", b"")
            if limit is not None and length.isdigit() and int(length) > limit:
                overflow[0] = True
                await answer(_too_large(limit))
                return
            try:
                await self.app(scope, receiving, sending)
            except Exception as exc:
                if started_response[0]:
                    raise
                if not overflow[0]:
                    logging.getLogger("obc_ledger.service").exception(
                        "request failed: %s %s", scope.get("method"), path
                    )
                await answer(_too_large(limit or 0) if overflow[0] else internal_response(exc))
                return
            if overflow[0] and not started_response[0]:
                await answer(_too_large(limit or 0))
        finally:
            if not self.quiet:
                client = scope.get("client")
                access_log.info(
                    json.dumps(
                        {
                            "ts": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                            "method": scope.get("method"),
                            "path": path,
                            "status": status[0],
                            "ms": round((time.perf_counter() - started) * 1000, 1),
                            "client": client[0] if client else None,
                            "principal": scope.get("state", {}).get("principal"),
                        }
                    )
                )


def _is_page(request: Request) -> bool:
    return not request.url.path.startswith("/api/") and request.url.path != "/healthz"


def create_app(
    db: str | None = None,
    projections_db: str | None = None,
    oidc: OidcConfig | None = None,
    world: World | None = None,
    quiet: bool = False,
) -> FastAPI:
    """The service over the ledger at ``db`` (default as the CLI: ``$OBC_LEDGER_DB`` or the SQLite file)."""
    world = world or World.open(db, projections_db, oidc)
    app = FastAPI(
        title="obc-ledger",
        version=__version__,
        description="Event-sourced contract ledger for outcomes-based commissioning: the HTTP API.",
        openapi_url="/api/v1/openapi.json",
        docs_url=None,  # Swagger UI would load a script from a CDN onto our origin: no page runs one
        redoc_url=None,
    )
    app.state.world = world
    app.state.sessions = Sessions(world.tokens.secret())
    if not quiet:
        _configure_access_log()

    @app.exception_handler(Unauthenticated)
    async def unauthenticated(request: Request, exc: Unauthenticated) -> Response:
        headers = dict(exc.headers or {})
        if _is_page(request):
            return signin_page(request, status=401, message=str(exc.detail), headers=headers)
        return JSONResponse({"error": exc.code, "message": exc.detail}, status_code=401, headers=headers)

    @app.exception_handler(LedgerError)
    async def ledger_error(request: Request, exc: LedgerError) -> Response:
        if _is_page(request):
            page = error_page(request, shown(exc), status_of(shown(exc)))
            page.headers.update(headers_of(exc))
            return page
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> Response:
        problems = [
            {"path": ".".join(str(p) for p in e.get("loc", ())), "message": e.get("msg", "")}
            for e in exc.errors()
        ]
        first = exc.errors()[0] if exc.errors() else {}
        field = ".".join(str(p) for p in first.get("loc", ())[1:]) or "the request"
        message = f"{field}: {first.get('msg', 'invalid')}" if first else "the request is invalid"
        if _is_page(request):  # a person at a browser gets a page, as for every other refusal
            return error_page(request, LedgerError(message, code="invalid_request"), 422)
        return JSONResponse({"error": "invalid_request", "message": message, "problems": problems}, 422)

    @app.exception_handler(StarletteHTTPException)  # FastAPI's HTTPException and Starlette's own
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if _is_page(request) and exc.status_code in (404, 405):
            code = "not_found" if exc.status_code == 404 else "method_not_allowed"
            page = error_page(request, LedgerError(str(exc.detail), code=code), exc.status_code)
            page.headers.update(exc.headers or {})
            return page
        return JSONResponse(
            {"error": "http_" + str(exc.status_code), "message": str(exc.detail)},
            status_code=exc.status_code,
            headers=exc.headers,
        )

    @app.exception_handler(Exception)
    async def internal(request: Request, exc: Exception) -> Response:
        logging.getLogger("obc_ledger.service").exception(
            "request failed: %s %s", request.method, request.url.path
        )
        return internal_response(exc)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, Any]:
        return {"ok": True, "version": __version__}

    app.add_middleware(AccessLog, quiet=quiet, max_body=world.max_upload + FORM_SLACK)

    app.include_router(api_router)
    app.include_router(pages_router)
    app.include_router(signin_router)

    @app.get("/favicon.ico", include_in_schema=False)
    def favicon() -> Response:
        return HTMLResponse("", status_code=204)

    return app


def app_from_env() -> FastAPI:
    """For ``uvicorn --factory ledger.entrypoints.web.app:app_from_env`` (``serve --workers N``)."""
    return create_app(os.environ.get("OBC_LEDGER_DB"), os.environ.get("OBC_LEDGER_PROJECTIONS_DB"))

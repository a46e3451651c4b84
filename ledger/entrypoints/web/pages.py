"""The web view: server-rendered pages (no JavaScript needed) over the same calls as the API.

Sign-in sets the session cookie; every form post carries the session's CSRF token.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import jinja2
from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException

from ledger.domain.errors import InvalidCommand, LedgerError
from ledger.entrypoints.web.api import (
    OptYear,
    Year,
    authorize_read,
    check_id,
    close_preview_statement,
    readable,
    statement_of,
    upload_records,
    verification,
)
from ledger.entrypoints.web.auth import (
    CSRF_COOKIE,
    SESSION_COOKIE,
    Principal,
    Unauthenticated,
    authenticate,
    end_session,
    from_token,
    log_refusal,
    new_csrf_cookie,
    record_refusal,
    same,
    start_session,
)
from projections.explain import explain
from projections.explain import render as render_text

router = APIRouter(include_in_schema=False)
# Autoescape always: Starlette's default (select_autoescape) goes by the file's extension and so
# escaped nothing in these *.html.j2 templates — a provider's text (a record id, a refusal naming a
# value, a dispute's reason) reached other users' pages as markup. The pages' policy runs no script
# either (PAGE_POLICY in app.py); tests/browser holds both.
templates = Jinja2Templates(
    env=jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(Path(__file__).parent / "templates")), autoescape=True
    )
)
Auth = Depends(authenticate)


def money(value: Any) -> str:
    """``12345.6`` → ``12,345.60``; blanks stay blank."""
    if value is None or value == "":
        return ""
    try:
        return f"{Decimal(str(value)):,.2f}"
    except (InvalidOperation, ValueError):
        return str(value)


templates.env.filters["money"] = money


def _csrf(request: Request) -> str:
    cookie = request.cookies.get(SESSION_COOKIE)
    return request.app.state.sessions.csrf(cookie) if cookie else ""


def render(
    request: Request, name: str, status: int = 200, headers: Any = None, **context: Any
) -> HTMLResponse:
    context.setdefault("principal", None)
    context["csrf"] = _csrf(request)
    return templates.TemplateResponse(request, name, context, status_code=status, headers=headers)


def signin_page(
    request: Request, status: int = 200, message: str | None = None, headers: Any = None
) -> Response:
    token = request.cookies.get(CSRF_COOKIE) or new_csrf_cookie()
    response = render(
        request,
        "signin.html.j2",
        status=status,
        headers=headers,
        message=message,
        signin_csrf=token,
        oidc=request.app.state.world.oidc is not None,
        oidc_signin=request.app.state.world.signin is not None,
    )
    response.set_cookie(CSRF_COOKIE, token, httponly=True, samesite="strict", max_age=3600, path="/signin")
    return response


def error_page(request: Request, exc: LedgerError, status: int) -> Response:
    return render(request, "error.html.j2", status=status, code=exc.code, message=exc.message)


def check_csrf(request: Request, p: Principal, given: str | None) -> None:
    """A cookie-borne session must send its CSRF token with every form post."""
    if p.via != "session":
        return
    cookie = request.cookies.get(SESSION_COOKIE, "")
    if not request.app.state.sessions.check_csrf(cookie, given):
        refused = LedgerError(
            "the form's CSRF token is missing or wrong; reload the page", code="csrf_failed"
        )
        world = request.app.state.world
        record_refusal(world, p.principal, p.actor, "write", f"csrf_failed: {refused.message}")
        raise refused


# -- sign-in ---------------------------------------------------------------------------------


@router.get("/")
def home(request: Request) -> Response:
    return RedirectResponse("/contracts", status_code=303)


@router.get("/signin")
def signin_form(request: Request) -> Response:
    return signin_page(request)


@router.post("/signin")
def signin(request: Request, token: str = Form(""), csrf: str = Form("")) -> Response:
    expected = request.cookies.get(CSRF_COOKIE, "")
    if not expected or not same(expected, csrf):
        return signin_page(request, status=400, message="the sign-in form expired; try again")
    world = request.app.state.world
    try:
        p = from_token(world, token.strip())
    except Unauthenticated as exc:
        log_refusal(request, "signin_refused", via="token", reason=exc.code)
        return signin_page(request, status=401, message=str(exc.detail))
    if p.via == "oidc":
        ident = world.oidc.verify(token.strip())
        data: dict[str, Any] = {
            "sub": ident.subject,
            "actor": ident.actor,
            "name": ident.name,
            "oidc_exp": ident.expires,
        }
    else:
        data = {"token_id": p.principal.removeprefix("token:")}
    response = RedirectResponse("/contracts", status_code=303)
    start_session(request, response, data)
    response.delete_cookie(CSRF_COOKIE, path="/signin")
    return response


@router.post("/signout")
def signout(request: Request, csrf: str = Form(""), p: Principal = Auth) -> Response:
    check_csrf(request, p, csrf)
    response = RedirectResponse("/signin", status_code=303)
    ended = end_session(request, response)
    signin = request.app.state.world.signin
    if ended is not None and "sub" in ended and signin is not None:  # signed in through the issuer:
        issuer_url = signin.end_session_url(str(request.url_for("signin_form")))  # sign out there too
        if issuer_url is not None:
            response.headers["location"] = issuer_url
    return response


# -- contracts -------------------------------------------------------------------------------


@router.get("/contracts")
def contracts(request: Request, p: Principal = Auth) -> Response:
    world = request.app.state.world
    may = readable(world, p)
    rows = [r for r in world.read().contracts() if may(r["contract_id"])]
    return render(request, "contracts.html.j2", principal=p, contracts=rows)


def _years(world: Any, contract_id: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    read = world.read()
    contract = read.contract(contract_id)
    closed = {d["year"] for d in read.decisions(contract_id) if d["kind"] == "close"}
    years = []
    for year in range(
        1, contract["years"] + (contract["extension_years"] if contract["extended"] else 0) + 1
    ):
        st = read.statement(contract_id, year)
        years.append({"year": year, "closed": year in closed, "statement": st})
    return contract, years


@router.get("/contracts/{contract_id}")
def contract_page(contract_id: str, request: Request, p: Principal = Auth) -> Response:
    world = request.app.state.world
    authorize_read(world, p, contract_id)
    contract, years = _years(world, contract_id)
    return render(request, "contract.html.j2", principal=p, contract=contract, years=years)


@router.get("/contracts/{contract_id}/years/{year}/statement")
def statement_page(
    contract_id: str, year: Year, request: Request, as_of: str | None = None, p: Principal = Auth
) -> Response:
    world = request.app.state.world
    authorize_read(world, p, contract_id)
    st = statement_of(request, p, contract_id, year, as_of or None)
    return render(
        request, "statement.html.j2", principal=p, st=st, as_of=as_of, contract_id=contract_id, year=year
    )


@router.get("/contracts/{contract_id}/years/{year}/explain")
def explain_page(
    contract_id: str, year: Year, request: Request, indicator: str | None = None, p: Principal = Auth
) -> Response:
    world = request.app.state.world
    authorize_read(world, p, contract_id)
    check_id("indicator", indicator or None)
    data = explain(world.read(), contract_id, year, indicator or None)
    return render(
        request,
        "explain.html.j2",
        principal=p,
        contract_id=contract_id,
        year=year,
        indicator=indicator,
        data=data,
        text=render_text(data),
    )


@router.get("/contracts/{contract_id}/submissions")
def submissions_page(contract_id: str, request: Request, p: Principal = Auth) -> Response:
    world = request.app.state.world
    authorize_read(world, p, contract_id)
    read = world.read()
    rows = read.submissions(contract_id, None, None, True)
    rejected = [r for r in read.rejected() if r["contract_id"] == contract_id]
    return render(
        request, "submissions.html.j2", principal=p, contract_id=contract_id, rows=rows, rejected=rejected
    )


@router.get("/contracts/{contract_id}/upload")
def upload_form(contract_id: str, request: Request, p: Principal = Auth) -> Response:
    world = request.app.state.world
    authorize_read(world, p, contract_id)
    contract = world.read().contract(contract_id)
    return render(request, "upload.html.j2", principal=p, contract=contract, report=None)


@router.post("/contracts/{contract_id}/upload")
async def upload(contract_id: str, request: Request, p: Principal = Auth) -> Response:
    # The form is parsed here, after authentication (a form parameter would be parsed, its file
    # spooled to disk, before the credentials were looked at); the body's size is bounded before.
    world = request.app.state.world
    try:
        form = await request.form(max_files=1, max_fields=10)
    except StarletteHTTPException as exc:  # not multipart/form-data, or malformed: Starlette's 400
        raise InvalidCommand(
            f"file: the upload is not a valid form ({exc.detail})", code="invalid_form"
        ) from None
    csrf, check, file = form.get("csrf"), form.get("check"), form.get("file")
    await run_in_threadpool(check_csrf, request, p, csrf if isinstance(csrf, str) else "")
    if not isinstance(file, UploadFile):
        raise InvalidCommand("file: choose a file to upload", code="invalid_command")
    await run_in_threadpool(authorize_read, world, p, contract_id)
    data = await file.read(world.max_upload + 1)
    if len(data) > world.max_upload:
        raise LedgerError(f"the file is larger than {world.max_upload:,} bytes", code="body_too_large")
    name = Path(file.filename or "upload").name[:100]
    kind = "xlsx" if name.lower().endswith(".xlsx") else "csv" if name.lower().endswith(".csv") else "jsonl"

    def run() -> Any:
        return world.write(
            p.principal,
            lambda: upload_records(
                world, p, data, kind, f"web:{name}", check=isinstance(check, str) and bool(check)
            ),
        )

    report = await run_in_threadpool(run)
    contract = await run_in_threadpool(lambda: world.read().contract(contract_id))
    status = 200 if not report["rejected"] else 422
    return render(
        request, "upload.html.j2", status=status, principal=p, contract=contract, report=report, filename=name
    )


@router.get("/contracts/{contract_id}/years/{year}/close")
def close_preview(contract_id: str, year: Year, request: Request, p: Principal = Auth) -> Response:
    world = request.app.state.world
    authorize_read(world, p, contract_id)
    st = close_preview_statement(world, contract_id, year)
    gaps = world.services.settlement.data_gaps(contract_id, year)
    return render(
        request,
        "close.html.j2",
        principal=p,
        contract_id=contract_id,
        year=year,
        st=st,
        gaps=gaps.lines(),
        done=False,
    )


@router.post("/contracts/{contract_id}/years/{year}/close")
def close_confirm(
    contract_id: str, year: Year, request: Request, csrf: str = Form(""), p: Principal = Auth
) -> Response:
    world = request.app.state.world
    check_csrf(request, p, csrf)
    authorize_read(world, p, contract_id)
    st = world.write(
        p.principal, lambda: world.services.settlement.close_year(contract_id, year, actor=p.actor)
    )
    gaps = world.services.settlement.data_gaps(contract_id, year)
    return render(
        request,
        "close.html.j2",
        principal=p,
        contract_id=contract_id,
        year=year,
        st=st,
        gaps=gaps.lines(),
        done=True,
    )


@router.get("/contracts/{contract_id}/disputes")
def disputes_page(
    contract_id: str, request: Request, done: str | None = None, p: Principal = Auth
) -> Response:
    world = request.app.state.world
    authorize_read(world, p, contract_id)
    _, definition = world.ledger.load_contract(contract_id)
    bar = definition.dispute_time_bar_days
    decisions = world.read().decisions(contract_id)
    latest: dict[int, str] = {}
    for d in decisions:
        latest[d["year"]] = max(latest.get(d["year"], ""), d["decided_at"])
    now = world.ledger.clock()
    deadlines = []
    for year, at in sorted(latest.items()):
        decided = datetime.fromisoformat(at.replace("Z", "+00:00"))
        until = decided + timedelta(days=bar)
        deadlines.append({"year": year, "decided_at": at, "deadline": until.date(), "open": now <= until})
    rows = world.services.disputes.disputes(contract_id, None)
    notice = None
    if done:
        status = next((r["status"] for r in rows if r["dispute_id"] == done), None)
        if status is not None:
            notice = f"Dispute {done} is {'raised' if status == 'open' else status}."
    return render(
        request,
        "disputes.html.j2",
        principal=p,
        contract_id=contract_id,
        rows=rows,
        deadlines=deadlines,
        bar=bar,
        notice=notice,
        may_raise=p.role in ("provider", "system"),
        may_resolve=p.role in ("commissioner", "system"),
        providers=definition.providers,
    )


@router.post("/contracts/{contract_id}/years/{year}/disputes")
def dispute_raise(
    contract_id: str,
    year: Year,
    request: Request,
    reason: str = Form(""),
    csrf: str = Form(""),
    p: Principal = Auth,
) -> Response:
    """A provider disputes the year's latest decision (the same use case as the API's)."""
    world = request.app.state.world
    check_csrf(request, p, csrf)
    authorize_read(world, p, contract_id)
    dispute = world.write(
        p.principal,
        lambda: world.services.disputes.raise_dispute(contract_id, year, reason, actor=p.actor),
    )
    return RedirectResponse(
        f"/contracts/{contract_id}/disputes?done={dispute['dispute_id']}", status_code=303
    )


@router.post("/contracts/{contract_id}/years/{year}/disputes/{dispute_id}/resolve")
def dispute_resolve(
    contract_id: str,
    year: Year,
    dispute_id: str,
    request: Request,
    outcome: str = Form(""),
    note: str = Form(""),
    adjust: str = Form(""),
    party: str = Form(""),
    csrf: str = Form(""),
    p: Principal = Auth,
) -> Response:
    """The commissioner upholds or rejects a dispute, optionally with an adjustment to a party."""
    world = request.app.state.world
    check_csrf(request, p, csrf)
    authorize_read(world, p, contract_id)
    check_id("dispute_id", dispute_id)
    if outcome not in ("upheld", "rejected"):
        raise InvalidCommand("choose whether the dispute is upheld or rejected", code="invalid_command")
    result = world.write(
        p.principal,
        lambda: world.services.disputes.resolve_dispute(
            contract_id,
            year,
            dispute_id,
            outcome == "upheld",
            note,
            actor=p.actor,
            adjust=adjust.strip() or None,
            party=party.strip() or None,
        ),
    )
    return RedirectResponse(f"/contracts/{contract_id}/disputes?done={result['dispute_id']}", status_code=303)


@router.get("/audit")
def audit_page(
    request: Request,
    contract: str | None = None,
    year: OptYear = None,
    as_of: str | None = None,
    p: Principal = Auth,
) -> Response:
    world = request.app.state.world
    may = readable(world, p)
    ids = [r["contract_id"] for r in world.read().contracts() if may(r["contract_id"])]
    checked = verification(request, p)
    st = None
    if contract:
        authorize_read(world, p, contract)
        if year:
            st = statement_of(request, p, contract, year, as_of or None)
    return render(
        request,
        "audit.html.j2",
        principal=p,
        ids=ids,
        contract=contract,
        year=year,
        as_of=as_of,
        st=st,
        verification=checked,
    )

"""The JSON API under ``/api/v1``: the CLI's commands over HTTP, as the authenticated principal.

Every write accepts an ``Idempotency-Key``: the first response is stored under (principal, key)
with the request's sha256; a retry gets it again (``Idempotent-Replayed: true``); the same key with
another request is refused (422 ``idempotency_key_reused``). Errors are one JSON shape,
``{"error": CODE, "message": …}``, with the codes the CLI prints.
"""

from __future__ import annotations

import copy
import hashlib
import io
import json
import re
import tempfile
from collections.abc import Callable
from datetime import UTC
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from ledger.adapters import audit
from ledger.adapters.framing import read_lines
from ledger.adapters.tabular import (
    read_csv,
    read_xlsx,
    template_reference,
    template_rows,
    write_csv,
    write_template_xlsx,
)
from ledger.adapters.yamlio import MAX_YAML_BYTES
from ledger.domain.errors import InvalidCommand, LedgerError
from ledger.domain.ids import id_problem
from ledger.domain.records import as_sent_back
from ledger.domain.variations import year_terms
from ledger.entrypoints.web.auth import SESSION_COOKIE, Principal, authenticate, record_refusal
from ledger.entrypoints.web.errors import error_response
from ledger.entrypoints.web.walks import chain_walk, charge, spend
from projections.bootstrap import parse_instant
from projections.costs import costs as year_costs
from projections.explain import explain as explain_year
from projections.reconcile import reconcile as reconcile_year
from projections.report import build, render_html
from projections.schedule import schedule_lines

router = APIRouter(prefix="/api/v1")
Auth = Depends(authenticate)

# A contract year: 1 to 100 (a larger number would overflow the calendar's dates, a 500).
Year = Annotated[int, PathParam(ge=1, le=100)]
QueryYear = Annotated[int, Query(ge=1, le=100)]
OptYear = Annotated[int | None, Query(ge=1, le=100)]

KEY = re.compile(r"[\x21-\x7e]{1,200}")
FORMATS = {
    "application/x-ndjson": "jsonl",
    "application/jsonl": "jsonl",
    "application/json": "jsonl",
    "text/plain": "jsonl",
    "text/csv": "csv",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": "xlsx",
}


def world_of(request: Request) -> Any:
    return request.app.state.world


def check_id(name: str, value: str | None) -> None:
    if value is not None:
        problem = id_problem(value)
        if problem is not None:
            raise InvalidCommand(f"{name.replace('_', '-')} {problem}", code="invalid_id")


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, at most ``limit`` bytes (413 ``body_too_large`` beyond)."""
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > limit:
        raise LedgerError(f"the body is larger than {limit:,} bytes", code="body_too_large")
    chunks, total = [], 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > limit:
            raise LedgerError(f"the body is larger than {limit:,} bytes", code="body_too_large")
        chunks.append(chunk)
    return b"".join(chunks)


def _as_response(result: Any) -> Response:
    if isinstance(result, Response):
        return result
    return JSONResponse(result)


async def idempotent_write(
    request: Request, p: Principal, limit: int, action: Callable[[bytes], Any], status: int = 200
) -> Response:
    """Run a write once per Idempotency-Key; the principal is recorded on every event it saves."""
    world = world_of(request)
    if p.via == "session":  # a cookie-borne session writes only with its CSRF token (X-CSRF-Token)
        cookie = request.cookies.get(SESSION_COOKIE, "")
        if not request.app.state.sessions.check_csrf(cookie, request.headers.get("x-csrf-token")):
            refused = LedgerError("X-CSRF-Token is missing or wrong", code="csrf_failed")
            await run_in_threadpool(
                record_refusal, world, p.principal, p.actor, "write", f"csrf_failed: {refused.message}"
            )
            return error_response(refused)
    try:
        body = await read_body(request, limit)
    except LedgerError as exc:
        return error_response(exc)
    key = request.headers.get("idempotency-key")
    path = request.url.path + ("?" + request.url.query if request.url.query else "")
    sha = hashlib.sha256(
        b"\0".join(
            [request.method.encode(), path.encode(), request.headers.get("content-type", "").encode(), body]
        )
    ).hexdigest()
    if key is not None:
        if not KEY.fullmatch(key):
            return error_response(
                InvalidCommand(
                    "Idempotency-Key: 1 to 200 printable ASCII characters", code="invalid_idempotency_key"
                )
            )
        stored = await run_in_threadpool(world.tokens.reserve, p.principal, key, request.method, path, sha)
        if stored is not None:
            if stored.request_sha256 != sha:
                return error_response(
                    LedgerError(
                        "this Idempotency-Key was used for a different request; use a new key",
                        code="idempotency_key_reused",
                    )
                )
            if stored.status == 0:
                return error_response(
                    LedgerError(
                        "the first request with this key is still running", code="idempotency_in_progress"
                    )
                )
            return Response(
                stored.body,
                status_code=stored.status,
                media_type=stored.content_type or None,
                headers={"Idempotent-Replayed": "true"},
            )

    def run() -> Response:
        try:
            response = _as_response(world.write(p.principal, lambda: action(body)))
            if isinstance(response, JSONResponse) and response.status_code == 200:
                response.status_code = status
            return response
        except LedgerError as exc:
            return error_response(exc)

    try:
        response = await run_in_threadpool(run)
    except BaseException:
        if key is not None:
            await run_in_threadpool(world.tokens.release, p.principal, key)
        raise
    if key is not None:
        await run_in_threadpool(
            world.tokens.complete,
            p.principal,
            key,
            response.status_code,
            response.headers.get("content-type", ""),
            bytes(response.body),
        )
    return response


def authorize_read(world: Any, p: Principal, contract_id: str) -> None:
    """403 (recorded with the principal) when ``p`` may not read the contract; 429 once ``p`` has had
    its budget of recorded refusals this minute (ledger/entrypoints/web/walks.py)."""
    check_id("contract_id", contract_id)
    if p.actor == "system":
        return
    key, head = (p.actor, contract_id), world.projections.projector.head()
    if world.allowed.get(key) == head:  # allowed, and nothing recorded since: the parties are as they were
        return
    access, budget = world.services.access, world.refusals
    if not budget.has_room(p.principal) and access.refuses_read(p.actor, contract_id):
        spent = f"had its {budget.per_minute} refused reads of this minute recorded"
        charge(world, None, p, "read", budget, spent)  # 429 (a refill meanwhile: recorded as before)
    try:
        world.as_principal(p.principal, lambda: access.authorize_read(p.actor, contract_id))
    except LedgerError:  # refused, and recorded: one of the principal's budget
        budget.spend(p.principal)
        raise
    world.allowed[key] = head


def readable(world: Any, p: Principal) -> Callable[[str | None], bool]:
    return (lambda _cid: True) if p.actor == "system" else world.services.access.readable(p.actor)


# -- who, contracts --------------------------------------------------------------------------


@router.get("/whoami")
def whoami(p: Principal = Auth) -> dict[str, Any]:
    return {"actor": p.actor, "principal": p.principal, "name": p.name, "via": p.via}


@router.get("/contracts")
def list_contracts(request: Request, p: Principal = Auth) -> list[dict[str, Any]]:
    world = world_of(request)
    may = readable(world, p)
    return [r for r in world.read().contracts() if may(r["contract_id"])]


@router.post("/contracts")
async def register_contract(request: Request, p: Principal = Auth) -> Response:
    def action(body: bytes) -> Any:
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise LedgerError(
                f"the body is not valid UTF-8 at byte {exc.start + 1}", code="invalid_encoding"
            ) from None
        definition, created = world_of(request).services.registration.register_contract(text, actor=p.actor)
        return JSONResponse(
            {
                "contract_id": definition.id,
                "registered": created,
                "years": definition.years,
                "indicators": len(definition.indicators),
            },
            status_code=201 if created else 200,
        )

    return await idempotent_write(request, p, MAX_YAML_BYTES, action)


@router.get("/contracts/{contract_id}")
def show_contract(contract_id: str, request: Request, p: Principal = Auth) -> Any:
    world = world_of(request)
    authorize_read(world, p, contract_id)
    return world.read().contract(contract_id)


@router.get("/contracts/{contract_id}/template")
def template(
    contract_id: str,
    request: Request,
    year: QueryYear,
    format: str = Query("csv", pattern="^(csv|xlsx)$"),
    kind: str = Query("submissions"),
    p: Principal = Auth,
) -> Response:
    world = world_of(request)
    authorize_read(world, p, contract_id)
    app = world.ledger
    contract, definition = app.load_contract(contract_id)
    calendar = definition.calendar(contract.extended)
    app.check_year(calendar, year)
    definition = year_terms(definition, year)
    sheets = template_rows(definition, calendar, year)
    name = f"{contract_id}-year{year}"
    if format == "xlsx":
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "template.xlsx"
            write_template_xlsx(
                out,
                sheets,
                template_reference(definition, calendar, year),
                list(definition.providers),
                [m.id for i in definition.indicators for m in i.measures],
            )
            data = out.read_bytes()
        return Response(
            data,
            media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            headers={"Content-Disposition": f'attachment; filename="{name}.xlsx"'},
        )
    if kind not in sheets:
        raise LedgerError(f"contract {definition.id!r} takes no {kind} records", code="invalid_command")
    header, rows = sheets[kind]
    return Response(
        write_csv(header, rows),
        media_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{name}-{kind}.csv"'},
    )


# -- records ---------------------------------------------------------------------------------


def upload_records(
    world: Any, p: Principal, data: bytes, kind: str, source: str, check: bool = False
) -> dict[str, Any]:
    """Records through the ingest path (same framing, grammar and refusals as ``obc-ledger ingest``).

    A record's signature (issue 12, signed submissions) travels inside it — a ``signature`` field of
    the JSON line or a ``signature`` column — so the ingest path's check sees it as the CLI's would.
    """
    with tempfile.TemporaryDirectory() as tmp:
        if kind == "xlsx":
            path = Path(tmp) / "upload.xlsx"
            path.write_bytes(data)
            framed: Any = read_xlsx(path)
        elif kind == "csv":
            framed = read_csv(io.BytesIO(data))
        else:
            framed = read_lines(io.BytesIO(data))
        if check:
            report, refused = world.services.ingest.check_framed(framed, source, actor=p.actor)
            out = report.to_dict()
            out["checked_only"] = True
        else:
            refused = []
            report = world.services.ingest.ingest_framed(framed, source, p.actor, refused=refused)
            refused.sort(key=lambda r: (r.line is None, r.line or 0))
            out = report.to_dict()
    out["source"] = source
    counts, shown = out["rejected_by_reason"], []
    for r in refused:
        told = as_sent_back(r.refusal)
        if told.code != r.refusal.code:  # the counts as the refusals are shown
            counts[r.refusal.code] -= 1
            counts[told.code] = counts.get(told.code, 0) + 1
        shown.append({"line": r.line, "code": told.code, "field": told.field, "message": told.message})
    out["refused"] = shown
    out["rejected_by_reason"] = {code: n for code, n in sorted(counts.items()) if n}
    return out


def upload_format(request: Request, given: str | None) -> str:
    if given:
        if given not in ("jsonl", "csv", "xlsx"):
            raise InvalidCommand("format: jsonl, csv or xlsx", code="invalid_format")
        return given
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    return FORMATS.get(content_type, "jsonl")


@router.post("/records")
async def post_records(
    request: Request,
    check: bool = False,
    # a name shown to others beside the records (in the submissions, the audit trail): no markup,
    # no control characters, no free text
    source: Annotated[str | None, Query(pattern=r"^[A-Za-z0-9._:/-]{1,200}$")] = None,
    format: str | None = None,
    p: Principal = Auth,
) -> Response:
    world = world_of(request)
    try:
        kind = upload_format(request, format)
    except LedgerError as exc:
        return error_response(exc)
    name = source or f"api:{p.principal}"

    def action(body: bytes) -> Any:
        report = upload_records(world, p, body, kind, name[:200], check)
        return report

    return await idempotent_write(request, p, world.max_upload, action)


# -- decisions -------------------------------------------------------------------------------


def _json_body(body: bytes) -> dict[str, Any]:
    if not body.strip():
        return {}
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):  # RecursionError: nested too deep ('[' * 4000)
        raise InvalidCommand("the body is not JSON", code="invalid_json") from None
    if not isinstance(data, dict):
        raise InvalidCommand("the body must be a JSON object", code="invalid_json")
    return data


@router.post("/contracts/{contract_id}/pay")
async def pay(contract_id: str, request: Request, p: Principal = Auth) -> Response:
    def action(body: bytes) -> Any:
        authorize_read(world_of(request), p, contract_id)  # a stranger learns nothing, a probe is recorded
        through = _json_body(body).get("through")
        if not isinstance(through, str):
            raise InvalidCommand('give {"through": "YYYY-Qn" or "YYYY-MM"}', code="invalid_command")
        return world_of(request).services.settlement.pay(contract_id, through, actor=p.actor)

    return await idempotent_write(request, p, 4096, action)


def close_preview_statement(world: Any, contract_id: str, year: int) -> dict[str, Any]:
    """The statement closing ``year`` would give now (a closed year: the one in force); nothing is saved."""
    return world.services.registration.shadow_statement(contract_id, year)


@router.get("/contracts/{contract_id}/years/{year}/preview")
def close_preview(contract_id: str, year: Year, request: Request, p: Principal = Auth) -> dict[str, Any]:
    """What closing the year would decide now (nothing is recorded) and what data it lacks."""
    world = world_of(request)
    authorize_read(world, p, contract_id)
    statement = close_preview_statement(world, contract_id, year)
    gaps = world.services.settlement.data_gaps(contract_id, year)
    return {"statement": statement, "completeness": gaps.to_dict(), "gaps": gaps.lines()}


@router.post("/contracts/{contract_id}/years/{year}/close")
async def close_year(contract_id: str, year: Year, request: Request, p: Principal = Auth) -> Response:
    def action(_body: bytes) -> Any:
        authorize_read(world_of(request), p, contract_id)  # a stranger learns nothing, a probe is recorded
        services = world_of(request).services
        statement = services.settlement.close_year(contract_id, year, actor=p.actor)
        return {"statement": statement, "gaps": services.settlement.data_gaps(contract_id, year).lines()}

    return await idempotent_write(request, p, 4096, action)


@router.post("/contracts/{contract_id}/years/{year}/restate")
async def restate(contract_id: str, year: Year, request: Request, p: Principal = Auth) -> Response:
    def action(_body: bytes) -> Any:
        authorize_read(world_of(request), p, contract_id)  # a stranger learns nothing, a probe is recorded
        services = world_of(request).services
        true_up = services.settlement.restate(contract_id, year, actor=p.actor)
        later = services.settlement.restate_later_years(contract_id, year, actor=p.actor)
        doc: dict[str, Any] = {"contract_id": contract_id, "year": year, "true_up": true_up}
        if later:
            doc["later_years"] = later
        return doc

    return await idempotent_write(request, p, 4096, action)


@router.post("/contracts/{contract_id}/years/{year}/disputes")
async def raise_dispute(contract_id: str, year: Year, request: Request, p: Principal = Auth) -> Response:
    def action(body: bytes) -> Any:
        authorize_read(world_of(request), p, contract_id)  # a stranger learns nothing, a probe is recorded
        reason = _json_body(body).get("reason")
        if not isinstance(reason, str) or not reason.strip():
            raise InvalidCommand('give {"reason": TEXT}', code="invalid_command")
        return world_of(request).services.disputes.raise_dispute(contract_id, year, reason, actor=p.actor)

    return await idempotent_write(request, p, 16384, action, status=201)


@router.post("/contracts/{contract_id}/years/{year}/disputes/{dispute_id}/resolve")
async def resolve_dispute(
    contract_id: str, year: Year, dispute_id: str, request: Request, p: Principal = Auth
) -> Response:
    def action(body: bytes) -> Any:
        authorize_read(world_of(request), p, contract_id)  # a stranger learns nothing, a probe is recorded
        check_id("dispute_id", dispute_id)
        data = _json_body(body)
        if not isinstance(data.get("upheld"), bool) or not isinstance(data.get("note"), str):
            raise InvalidCommand('give {"upheld": true|false, "note": TEXT}', code="invalid_command")
        return world_of(request).services.disputes.resolve_dispute(
            contract_id,
            year,
            dispute_id,
            data["upheld"],
            data["note"],
            actor=p.actor,
            adjust=data.get("adjust"),
            party=data.get("party"),
        )

    return await idempotent_write(request, p, 16384, action)


# -- reads -----------------------------------------------------------------------------------


def statement_of(
    request: Request, p: Principal, contract_id: str, year: int, as_of: str | None
) -> dict[str, Any]:
    """A year's statement; ``as_of``: replayed from the log as it stood then (charged to ``p``)."""
    world = world_of(request)
    if as_of:
        instant = parse_instant(as_of)
        spend(request, p, "as_of")
        return world.as_of(instant, contract_id).statement(contract_id, year)
    return copy.deepcopy(world.statement(contract_id, year))


@router.get("/contracts/{contract_id}/years/{year}/statement")
def statement(
    contract_id: str, year: Year, request: Request, as_of: str | None = None, p: Principal = Auth
) -> Any:
    world = world_of(request)
    authorize_read(world, p, contract_id)
    return JSONResponse(statement_of(request, p, contract_id, year, as_of))


@router.get("/contracts/{contract_id}/years/{year}/history")
def history(contract_id: str, year: Year, request: Request, p: Principal = Auth) -> Any:
    world = world_of(request)
    authorize_read(world, p, contract_id)
    return world.read().history(contract_id, year)


@router.get("/contracts/{contract_id}/years/{year}/explain")
def explain(
    contract_id: str, year: Year, request: Request, indicator: str | None = None, p: Principal = Auth
) -> Any:
    world = world_of(request)
    authorize_read(world, p, contract_id)
    check_id("indicator", indicator)
    return explain_year(world.read(), contract_id, year, indicator)


@router.get("/contracts/{contract_id}/years/{year}/costs")
def costs(contract_id: str, year: Year, request: Request, p: Principal = Auth) -> Any:
    world = world_of(request)
    authorize_read(world, p, contract_id)
    return year_costs(world.read(), contract_id, year)


@router.get("/contracts/{contract_id}/years/{year}/reconcile")
def reconcile(contract_id: str, year: Year, request: Request, p: Principal = Auth) -> Any:
    world = world_of(request)
    authorize_read(world, p, contract_id)
    return reconcile_year(world.read(), contract_id, year, None, None)


@router.get("/contracts/{contract_id}/submissions")
def submissions(
    contract_id: str,
    request: Request,
    indicator: str | None = None,
    period: str | None = None,
    all_versions: bool = False,
    p: Principal = Auth,
) -> Any:
    world = world_of(request)
    authorize_read(world, p, contract_id)
    check_id("indicator", indicator)
    return world.read().submissions(contract_id, indicator, period, all_versions)


@router.get("/contracts/{contract_id}/decisions")
def decisions(contract_id: str, request: Request, p: Principal = Auth) -> Any:
    world = world_of(request)
    authorize_read(world, p, contract_id)
    return world.read().decisions(contract_id)


@router.get("/contracts/{contract_id}/payments")
def payments(contract_id: str, request: Request, year: OptYear = None, p: Principal = Auth) -> Any:
    world = world_of(request)
    authorize_read(world, p, contract_id)
    return schedule_lines(world.read(), contract_id, year)


@router.get("/contracts/{contract_id}/disputes")
def disputes(contract_id: str, request: Request, year: OptYear = None, p: Principal = Auth) -> Any:
    world = world_of(request)
    authorize_read(world, p, contract_id)
    return world.services.disputes.disputes(contract_id, year)


@router.get("/contracts/{contract_id}/report", response_class=HTMLResponse)
def report(
    contract_id: str,
    request: Request,
    year: OptYear = None,
    as_of: str | None = None,
    p: Principal = Auth,
) -> Response:
    """The auditor's report (as ``obc-ledger report``); ``as_of``: as the ledger stood then (``report --as-of``)."""
    world = world_of(request)
    authorize_read(world, p, contract_id)
    name = f"{contract_id}-report"
    if as_of:
        instant = parse_instant(as_of)
        spend(request, p, "as_of")
        html = render_html(
            build(world.app.projections_as_of(instant, {contract_id}), contract_id, year, None)
        )
        name += "-as-of-" + instant.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    else:
        world.read()
        with world.read_lock:
            html = render_html(build(world.projections, contract_id, year, None))
    return HTMLResponse(html, headers={"Content-Disposition": f'attachment; filename="{name}.html"'})


@router.get("/rejected")
def rejected(
    request: Request, contract: str | None = None, code: str | None = None, p: Principal = Auth
) -> Any:
    world = world_of(request)
    check_id("contract", contract)
    if contract:
        authorize_read(world, p, contract)
    may = readable(world, p)
    return [
        r
        for r in world.read().rejected()
        if (not contract or r["contract_id"] == contract)
        and (not code or r["code"] == code)
        and may(r["contract_id"])
    ]


@router.get("/digest")
def digest(request: Request, p: Principal = Auth) -> Any:
    """The log's checkpoint, once its seal chain verifies (409 ``log_broken`` otherwise)."""
    ledger = world_of(request).ledger

    def checked() -> dict[str, Any]:
        return audit.digest(ledger, verified=audit.check_head(ledger))

    return chain_walk(request, p, "digest", checked)


@router.get("/verify")
def verify(request: Request, p: Principal = Auth) -> Any:
    """Every seal recomputed (as ``obc-ledger verify --seals-only``)."""
    return verification(request, p)


def verification(request: Request, p: Principal) -> dict[str, Any]:
    """The seal chain walked (coalesced with other callers', charged to ``p``): ``Verification.to_dict``."""
    ledger = world_of(request).ledger
    return chain_walk(request, p, "verify", lambda: audit.verify(ledger).to_dict())

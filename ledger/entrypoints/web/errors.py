"""Errors as one JSON shape, ``{"error": CODE, "message": …}``, with the CLI's stable codes."""

from __future__ import annotations

from fastapi.responses import JSONResponse

from ledger.domain.access import NotAuthorized
from ledger.domain.errors import LedgerError, NotFound, ValidationFailed, storage_fault, unknown_contract

STATUS = {
    "not_authorized": 403,
    "not_found": 404,
    "unknown_contract": 404,
    "unknown_token": 404,
    "already_exists": 409,
    "year_closed": 409,
    "year_not_closed": 409,
    "idempotency_in_progress": 409,
    "idempotency_key_reused": 422,
    "body_too_large": 413,
    "csrf_failed": 403,
    "storage_full": 507,
    "storage_read_only": 503,
    "oidc_unavailable": 503,
    "log_broken": 409,  # no checkpoint of a log whose seals do not verify
    "malformed_seal": 409,
    "rate_limited": 429,
}


class RateLimited(LedgerError):
    """429: the principal spent its budget of whole-log work; ``retry_after`` seconds until one more."""

    code = "rate_limited"

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def headers_of(exc: LedgerError) -> dict[str, str]:
    return {"Retry-After": str(exc.retry_after)} if isinstance(exc, RateLimited) else {}


def shown(exc: LedgerError) -> LedgerError:
    """The error as the caller sees it: a refusal on a contract the caller may not read is answered
    as for an unregistered one (404 ``unknown_contract``, the same body), so that the service does
    not tell a stranger which contract ids exist. The refusal itself is recorded with its reason."""
    if isinstance(exc, NotAuthorized) and exc.conceals is not None:
        return unknown_contract(exc.conceals)
    return exc


def status_of(exc: LedgerError) -> int:
    if exc.code in STATUS:
        return STATUS[exc.code]
    if isinstance(exc, NotFound):
        return 404
    if isinstance(exc, ValidationFailed):
        return 422
    return 400


def error_response(exc: LedgerError) -> JSONResponse:
    exc = shown(exc)
    return JSONResponse(exc.to_dict(), status_code=status_of(exc), headers=headers_of(exc))


def internal_response(exc: Exception) -> JSONResponse:
    fault = storage_fault(exc)
    if fault is not None:
        return error_response(fault)
    return JSONResponse({"error": "internal", "type": type(exc).__name__, "message": "internal error"}, 500)

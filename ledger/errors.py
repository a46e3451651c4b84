"""One root for every error the ledger raises, each with a stable code."""

from __future__ import annotations


class LedgerError(Exception):
    """Base of all ledger errors. ``code`` is stable; ``message`` is for people."""

    code = "ledger_error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code

    def to_dict(self) -> dict[str, object]:
        return {"error": self.code, "message": self.message}


class ValidationFailed(LedgerError):
    """A document failed validation; ``problems`` lists every ``path: message``."""

    code = "invalid_contract"

    def __init__(self, problems: list[tuple[str, str]], *, what: str = "contract") -> None:
        self.problems = problems
        lines = "; ".join(f"{path}: {msg}" for path, msg in problems)
        super().__init__(f"{what} is invalid ({len(problems)} problem(s)): {lines}")

    def to_dict(self) -> dict[str, object]:
        return {
            "error": self.code,
            "message": self.message,
            "problems": [{"path": p, "message": m} for p, m in self.problems],
        }


class NotFound(LedgerError):
    code = "not_found"


class AlreadyExists(LedgerError):
    code = "already_exists"


class InvalidCommand(LedgerError):
    code = "invalid_command"


class YearClosed(LedgerError):
    code = "year_closed"


class YearNotClosed(LedgerError):
    code = "year_not_closed"


class ConfigurationError(LedgerError):
    code = "configuration_error"

# PYTHON_ARGCOMPLETE_OK
"""The ``obc-ledger`` command line. Thin: parse, call the application, print.

Every error is one line on stderr (``--json``: a JSON object) and a non-zero exit;
a user mistake never shows a Python traceback. :func:`main` is the one place that maps
failures to exit statuses (:mod:`.errors`) and prints them (:func:`report_error`).
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import os
import sys
from collections.abc import Sequence
from typing import Any

import argcomplete

from ledger.domain.errors import LedgerError, ValidationFailed, storage_fault
from ledger.domain.ids import id_problem, printable
from ledger.entrypoints.cli import hints
from ledger.entrypoints.cli.errors import (
    EXIT_BROKEN_PIPE,
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    EXIT_REFUSED,
    EXIT_USAGE,
    UsageError,
)
from ledger.entrypoints.cli.parser import (
    LOG_LEVELS,
    apply_env_defaults,
    build_parser,
    env_name,
    option_actions,
)
from ledger.entrypoints.cli.table import CONTEXT, resolve

__all__ = [
    "EXIT_BROKEN_PIPE",
    "EXIT_ERROR",
    "EXIT_REFUSED",
    "EXIT_USAGE",
    "UsageError",
    "apply_env_defaults",
    "build_parser",
    "env_name",
    "main",
    "option_actions",
]

# Arguments that name an id: checked with the id grammar before any command runs.
ID_ARGUMENTS = ("contract_id", "contract", "indicator", "party", "dispute_id", "key", "group")


def _check_ids(args: argparse.Namespace) -> None:
    for name in ID_ARGUMENTS:
        value = getattr(args, name, None)
        if isinstance(value, str):
            problem = id_problem(value)
            if problem is not None:
                raise UsageError(f"obc-ledger: {name.replace('_', '-')} {problem}")


class _Stderr(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is when a record is emitted (it may be redirected)."""

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _value: Any) -> None:
        pass


def _configure_logging(level: str) -> None:
    """The ledger's own loggers (``obc_ledger.*``) at LEVEL on stderr; libraries stay at warning."""
    if level not in LOG_LEVELS:  # from $OBC_LEDGER_LOG_LEVEL, which argparse's choices do not check
        raise UsageError(f"obc-ledger: --log-level must be one of {', '.join(LOG_LEVELS)}, not {level!r}")
    handler = _Stderr()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    ours = logging.getLogger("obc_ledger")
    ours.handlers[:] = [handler]
    ours.setLevel(level.upper())
    ours.propagate = False


def _quiet_broken_pipe() -> int:
    """The reader of stdout stopped early (``obc-ledger payments ID --csv | head``): exit quietly.

    What the command wrote to the ledger is already committed; only its output was cut short. Point
    stdout at /dev/null so the interpreter's final flush does not raise again, and say nothing.
    """
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError, io.UnsupportedOperation):  # stdout is no real file (tests)
        pass
    return EXIT_BROKEN_PIPE


def _fail(as_json: bool, error: dict[str, Any], lines: Sequence[str], code: int) -> int:
    if as_json:
        print(json.dumps(error), file=sys.stderr)
    else:
        for line in lines:
            print(printable(line), file=sys.stderr)  # nothing a sender wrote reaches the terminal raw
    return code


def report_error(exc: BaseException, as_json: bool) -> int:
    """The one error printer: one line (JSON with --json) on stderr; the exit status for ``exc``."""
    if isinstance(exc, BrokenPipeError):
        return _quiet_broken_pipe()
    if isinstance(exc, UsageError):
        return _fail(as_json, {"error": "usage", "message": str(exc)}, [f"error: {exc}"], EXIT_USAGE)
    if isinstance(exc, ValidationFailed):
        lines = [
            f"error: {exc.code}: {len(exc.problems)} problem(s); nothing was "
            f"{'recorded' if exc.code == 'invalid_variation' else 'registered'}"
        ]
        lines += [f"  {path}: {message}" for path, message in exc.problems]
        return _fail(as_json, exc.to_dict(), lines, EXIT_ERROR)
    if isinstance(exc, LedgerError):
        exc.message = hints.with_hint(exc)  # the use cases name no flags; the CLI adds them (cli/hints.py)
        return _fail(as_json, exc.to_dict(), [f"error: {exc.code}: {exc.message}"], EXIT_ERROR)
    if isinstance(exc, KeyboardInterrupt):
        return _fail(
            as_json,
            {"error": "interrupted", "message": "interrupted"},
            ["error: interrupted"],
            EXIT_INTERRUPTED,
        )
    fault = storage_fault(exc)  # the disk or database is full, or read-only: a code of its own
    if fault is not None:
        return _fail(as_json, fault.to_dict(), [f"error: {fault.code}: {fault.message}"], EXIT_ERROR)
    name = type(exc).__name__
    message = str(exc).splitlines()[0] if str(exc) else name
    return _fail(
        as_json,
        {"error": "internal", "type": name, "message": message},
        [f"error: {name}: {message} (set OBC_LEDGER_DEBUG=1 for a traceback)"],
        EXIT_ERROR,
    )


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    as_json = "--json" in argv
    try:
        completing = "_ARGCOMPLETE" in os.environ  # `eval "$(register-python-argcomplete obc-ledger)"`
        parser = build_parser(lazy=not completing)  # completion offers every command's options
        apply_env_defaults(parser)
        if completing:
            argcomplete.autocomplete(parser)
        args = parser.parse_args(argv)
        as_json = bool(getattr(args, "json", False))  # --json, or $OBC_LEDGER_JSON: errors as JSON too
        _configure_logging(getattr(args, "log_level", None) or "warning")
        _check_ids(args)
        ctx = resolve(CONTEXT)(args)  # the wiring, imported only now (table.CONTEXT)
        status = ctx.run(parser.handler(args))  # the read check, then the command
        sys.stdout.flush()  # a closed pipe shows here, inside the guard, not at interpreter exit
        return status
    except (BrokenPipeError, UsageError, LedgerError, KeyboardInterrupt) as exc:
        return report_error(exc, as_json)
    except Exception as exc:  # infrastructure failures: one line, never a traceback
        if os.environ.get("OBC_LEDGER_DEBUG"):
            raise
        return report_error(exc, as_json)


if __name__ == "__main__":
    sys.exit(main())

"""The command table: every ``obc-ledger`` command, its one-line help, and where it lives.

``name: (help, "module:configure")``. ``configure(parser)`` adds the command's arguments to its
sub-parser and returns the handler, ``handler(args, ctx) -> exit status``
(:class:`ledger.entrypoints.cli.context.Context`). A command's module is imported only when that
command runs, or its help is asked for (:mod:`.parser`); ``obc-ledger --help`` lists the table
without importing any of them.

A new command: a function ``configure`` in a module under ``commands/`` (or a module of its own)
and one line here. A module that builds its own parsers (``add_parsers(subparsers)``, each
sub-parser given ``set_defaults(handler=...)``) goes in :data:`EXTENSIONS` instead.
"""

from __future__ import annotations

import importlib
from typing import Any

C = "ledger.entrypoints.cli.commands."

COMMANDS: dict[str, tuple[str, str]] = {
    "contract": ("register and inspect contracts", C + "contract:contract"),
    "budget": ("show or adjust yearly budgets", C + "contract:budget"),
    "baseline": ("record historical baselines", C + "contract:baseline"),
    "ingest": ("ingest providers' records from a JSON-lines file ('-' for stdin)", C + "ingest:ingest"),
    "rejected": ("records that could not be accepted, with reasons", C + "ingest:rejected"),
    "pay": ("decide core instalments due up to a period", C + "settle:pay"),
    "close-year": (
        "decide outstanding instalments, then the outcomes payment and risk share",
        C + "settle:close_year",
    ),
    "template": (
        "an upload template of a contract year's records (CSV or xlsx) for a provider to fill in",
        C + "ingest:template",
    ),
    "completeness": (
        "the cost reports and indicator periods a year's settlement lacks",
        C + "settle:completeness",
    ),
    "whatif": (
        "settle years as if a variation were recorded, or on another year's schedule "
        "(shadow settlement); nothing is recorded",
        C + "settle:whatif",
    ),
    "restate": (
        "recompute a closed year from the data now held; record a true-up if different",
        C + "settle:restate",
    ),
    "statement": ("the year statement (from the read models)", C + "reads:statement"),
    "history": (
        "every budget, instalment, close and true-up of a contract year, in order",
        C + "reads:history",
    ),
    "submissions": (
        "submissions held for a contract (current versions unless --all-versions)",
        C + "reads:submissions",
    ),
    "decisions": ("every year close and true-up of a contract", C + "reads:decisions"),
    "replay": (
        "statements and decisions exactly as they stood at a recorded instant",
        C + "reads:replay",
    ),
    "dispute": ("raise, resolve and list disputes on payment decisions", C + "dispute:dispute"),
    "verify": (
        "recompute every event's seal; report the first broken link (exit 1 when broken)",
        C + "audit:verify",
    ),
    "digest": (
        "print a checkpoint of the log (ledger id, position, chain head, time), "
        "Ed25519-signed with --sign-key, for an auditor to keep",
        C + "audit:digest",
    ),
    "db": ("set up the database", C + "admin:db"),
    "keys": ("Ed25519 signing keys for digests and decisions", C + "admin:keys"),
    "projections": ("build and inspect the read models", C + "admin:projections"),
    "consume": (
        "apply providers' Avro records from Kafka, exactly once in effect; "
        "records that cannot be applied go to <topic>.dlq with the reason",
        C + "streams:consume",
    ),
    "produce": (
        "check a provider's JSON-lines file, report refused lines, send the rest as Avro",
        C + "streams:produce",
    ),
    "publish-decisions": (
        "publish payment decisions from the ledger to a topic, exactly once in effect",
        C + "streams:publish_decisions",
    ),
    "explain": (
        "why a year's figures are what they are: submissions, thresholds, scores, risk share",
        C + "views:explain",
    ),
    "costs": (
        "open book: cost reports by provider, period and case; budget vs cost variance",
        C + "views:costs",
    ),
    "reconcile": (
        "compare a year with its baselines, budget and historical spend, and a payment "
        "register (exit 3 when anything does not reconcile)",
        C + "views:reconcile",
    ),
    "payments": (
        "every payment decided, one line per payment and party: payment id, deciding event, "
        "finance codes, kind, period, due date, financial year, amount, currency",
        C + "views:payments",
    ),
    "accruals": (
        "year-end accruals for a financial year (April to March), per contract and party: "
        "what was decided and when, what is decided but not yet due, provisional year-close "
        "amounts for open contract years",
        C + "views:accruals",
    ),
    "report": (
        "write the auditor's report: a self-contained HTML page with charts (and a PDF of it)",
        C + "report:report",
    ),
    "serve": ("serve the HTTP API and web view (FastAPI on uvicorn)", C + "service:serve"),
    "token": ("bearer tokens for the HTTP service: issue, list, revoke", C + "service:token"),
    "provider": ("provider keys and signed submissions (non-repudiation)", C + "provider:provider"),
    "demo": (
        "build two realistic demo contracts in a fresh SQLite file and settle them",
        C + "admin:demo",
    ),
}

# What a handler is given beside its arguments (it imports the wiring: eventsourcing, SQLAlchemy, the
# codec), loaded like a command module, once a command runs: ``--help`` and usage errors stay fast.
CONTEXT = "ledger.entrypoints.cli.context:Context"


def resolve(target: str) -> Any:
    """The object a table entry names: ``"package.module:attribute"`` (the module imported now)."""
    module_name, _, attribute = target.partition(":")
    return getattr(importlib.import_module(module_name), attribute)


# Modules whose ``add_parsers(subparsers)`` adds their own commands (imported when the parser is built).
EXTENSIONS: tuple[str, ...] = ()

# Commands that are groups of actions (``contract register``): their actions carry the global options.
GROUPS = frozenset(
    {
        "contract",
        "budget",
        "baseline",
        "rejected",
        "dispute",
        "db",
        "keys",
        "projections",
        "provider",
        "token",
    }
)

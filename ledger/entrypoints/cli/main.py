# PYTHON_ARGCOMPLETE_OK
"""The ``obc-ledger`` command line. Thin: parse, call the application, print.

Every error is one line on stderr (``--json``: a JSON object) and a non-zero exit;
a user mistake never shows a Python traceback.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import os
import re
import sys
from collections.abc import Callable, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

from ledger import __version__
from ledger.adapters.config import DB_ENV, database_url
from ledger.adapters.framing import read_lines, text_lines
from ledger.adapters.render import render_rejections, render_statement
from ledger.adapters.tables import table
from ledger.adapters.tabular import format_of, read_csv, read_xlsx
from ledger.adapters.yamlio import MAX_YAML_BYTES
from ledger.domain.errors import InvalidCommand, LedgerError, ValidationFailed, storage_fault
from ledger.domain.ids import id_problem, printable
from ledger.entrypoints.cli.service_commands import COMMANDS as SERVICE_COMMANDS
from ledger.entrypoints.cli.service_commands import add_parsers as add_service_parsers
from ledger.entrypoints.cli.views import VIEW_COMMANDS, add_view_commands

BOOTSTRAP_ENV = "OBC_LEDGER_BOOTSTRAP"
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_REFUSED = 3  # ingest (and ingest --check): some record was (or would be) refused
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE: the reader of our output went away (`| head`)


LOG_LEVELS = ("debug", "info", "warning", "error")


class UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, no usage dump
        raise UsageError(f"{self.prog}: {message} (see --help)")

    def parse_known_args(self, args: Any = None, namespace: Any = None) -> Any:  # type: ignore[override]
        parsed, rest = super().parse_known_args(args, namespace)
        _resolve_env(parsed)  # options absent from the command line take their environment variable
        return parsed, rest


def _global_options(parser: argparse.ArgumentParser, *, suppress: bool) -> None:
    default = argparse.SUPPRESS if suppress else None
    parser.add_argument(
        "--db",
        default=default,
        metavar="URL",
        help=f"event store: sqlite:///file.db (default sqlite:///obc-ledger.db, or ${DB_ENV}) "
        "or postgresql://user:pass@host:port/dbname",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        default=argparse.SUPPRESS if suppress else False,
        help="machine-readable output (and errors as JSON)",
    )
    parser.add_argument(
        "--projections-db",
        dest="projections_db",
        default=default,
        metavar="URL",
        help="where the read models live (default: the event store's database; "
        "or $OBC_LEDGER_PROJECTIONS_DB)",
    )
    parser.add_argument(
        "--as",
        dest="actor",
        default=default,
        metavar="ACTOR",
        help="who is acting, recorded on every event (e.g. commissioner:occg); default $OBC_LEDGER_ACTOR or 'system'",
    )
    parser.add_argument(
        "--log-level",
        dest="log_level",
        default=default,
        choices=LOG_LEVELS,
        type=str.lower,
        help="diagnostics on stderr, e.g. a consumer's partition assignments at 'info' "
        "(default 'warning', or $OBC_LEDGER_LOG_LEVEL)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="obc-ledger", description="Event-sourced contract ledger for outcomes-based commissioning."
    )
    parser.add_argument("--version", action="version", version=f"obc-ledger {__version__}")
    _global_options(parser, suppress=False)
    common = _Parser(add_help=False)
    _global_options(common, suppress=True)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    def command(name: str, help_text: str, parent: Any = sub) -> argparse.ArgumentParser:
        return parent.add_parser(name, help=help_text, description=help_text, parents=[common])

    contract = sub.add_parser("contract", help="register and inspect contracts")
    csub = contract.add_subparsers(dest="contract_command", metavar="ACTION", parser_class=_Parser)
    csub.required = True
    p = command("register", "register a contract from its YAML definition (validated as a whole)", csub)
    p.add_argument("file", type=Path)
    command("list", "list registered contracts", csub)
    p = command("show", "show a contract's terms, budgets and baselines", csub)
    p.add_argument("contract_id")
    p = command(
        "extend", "record the contract's extension (extension_years) and set those years' budgets", csub
    )
    p.add_argument("contract_id")
    p = command("vary", "record a contract variation (validated against every year it affects)", csub)
    p.add_argument("contract_id")
    p.add_argument("file", type=Path)
    p.add_argument(
        "--restate",
        action="store_true",
        help="the variation reaches a closed year: restate the closed years from its effective year",
    )
    p = command("terms", "the terms in force for a contract year, in the contract definition's shape", csub)
    p.add_argument("contract_id")
    p.add_argument("--year", type=int, required=True)
    p = command("variations", "the contract's variations, in recording order", csub)
    p.add_argument("contract_id")

    budget = sub.add_parser("budget", help="show or adjust yearly budgets")
    bsub = budget.add_subparsers(dest="budget_command", metavar="ACTION", parser_class=_Parser)
    bsub.required = True
    p = command("show", "budget by year with every recorded change and its reason", bsub)
    p.add_argument("contract_id")
    p = command("adjust", "record a reasoned budget adjustment for a year", bsub)
    p.add_argument("contract_id")
    p.add_argument("--year", type=int, required=True)
    p.add_argument("--amount", required=True, help="the new budget for the year, e.g. 12000000.00")
    p.add_argument(
        "--reason", required=True, help="efficiency, uplift, population, extension, variation or correction"
    )
    p.add_argument("--note", default="")

    baseline = sub.add_parser("baseline", help="record historical baselines")
    blsub = baseline.add_subparsers(dest="baseline_command", metavar="ACTION", parser_class=_Parser)
    blsub.required = True
    p = command("record", "record (or re-record) an indicator's historical baseline", blsub)
    p.add_argument("contract_id")
    p.add_argument("key", help="indicator or sub-indicator id")
    p.add_argument("value")
    p.add_argument("--note", default="")

    p = command("ingest", "ingest providers' records from a JSON-lines file ('-' for stdin)")
    p.add_argument("file")
    p.add_argument("--source", help="source name kept with rejected records (default: the file name)")
    p.add_argument(
        "--check",
        action="store_true",
        help="a dry run: report what would be accepted, duplicate or rejected (each refusal with its "
        "line and reason) against the ledger as it stands; record nothing",
    )
    p.add_argument(
        "--format",
        choices=("jsonl", "csv", "xlsx"),
        default=None,
        help="the file's format (default: from its name: .csv, .xlsx, else JSON lines)",
    )
    p.add_argument(
        "--max-line-bytes",
        type=_positive_int,
        default=None,
        metavar="N",
        help="refuse (and keep) any line longer than N bytes (default 1048576; "
        "also OBC_LEDGER_MAX_LINE_BYTES)",
    )

    rejected = sub.add_parser("rejected", help="records that could not be accepted, with reasons")
    rsub = rejected.add_subparsers(dest="rejected_command", metavar="ACTION", parser_class=_Parser)
    rsub.required = True
    p = command("list", "list rejected records", rsub)
    p.add_argument("--contract")
    p.add_argument("--code", help="only this reason code")

    p = command("pay", "decide core instalments due up to a period")
    p.add_argument("contract_id")
    p.add_argument("--through", required=True, metavar="PERIOD", help="YYYY-MM or YYYY-Qn")
    p = command("close-year", "decide outstanding instalments, then the outcomes payment and risk share")
    p.add_argument("contract_id")
    p.add_argument("year", type=int)
    p = command(
        "template", "an upload template of a contract year's records (CSV or xlsx) for a provider to fill in"
    )
    p.add_argument("contract_id")
    p.add_argument(
        "--year", type=int, required=True, help="the contract year whose periods the template lists"
    )
    p.add_argument(
        "--format",
        choices=("csv", "xlsx"),
        default="csv",
        help="csv (one kind, to stdout or --out) "
        "or xlsx (every kind on its own sheet, and a reference sheet; needs --out)",
    )
    p.add_argument(
        "--kind",
        choices=("submissions", "cost_reports", "population", "outcome_claims", "prom_episodes"),
        default="submissions",
        help="with csv: which records (default submissions)",
    )
    p.add_argument("--out", type=Path, help="write the template to this file")
    p = command("completeness", "the cost reports and indicator periods a year's settlement lacks")
    p.add_argument("contract_id")
    p.add_argument("--year", type=int, help="one contract year (default: every year of the term)")
    p = command(
        "whatif",
        "settle years as if a variation were recorded, or on another year's schedule "
        "(shadow settlement); nothing is recorded",
    )
    p.add_argument("contract_id")
    p.add_argument("file", type=Path, nargs="?", help="the variation (YAML, as for contract vary)")
    p.add_argument(
        "--years",
        metavar="A-B",
        help="the years to settle (default: from the variation's effective year to the last closed year)",
    )
    p.add_argument(
        "--schedule-of-year",
        dest="schedule_of_year",
        type=int,
        metavar="Z",
        help="settle the years with the schedule entry and risk-share terms in force in year Z",
    )
    p = command("restate", "recompute a closed year from the data now held; record a true-up if different")
    p.add_argument("contract_id")
    p.add_argument("year", type=int)
    p = command("statement", "the year statement (from the read models)")
    p.add_argument("contract_id")
    p.add_argument("--year", type=int, required=True)
    p.add_argument(
        "--as-of",
        dest="as_of",
        metavar="TIMESTAMP",
        help="the statement as it stood at this recorded instant (ISO 8601)",
    )
    p = command("history", "every budget, instalment, close and true-up of a contract year, in order")
    p.add_argument("contract_id")
    p.add_argument("--year", type=int, required=True)
    p = command("submissions", "submissions held for a contract (current versions unless --all-versions)")
    p.add_argument("contract_id")
    p.add_argument("--indicator")
    p.add_argument("--period")
    p.add_argument("--all-versions", dest="all_versions", action="store_true")
    p = command("decisions", "every year close and true-up of a contract")
    p.add_argument("contract_id")
    p = command("replay", "statements and decisions exactly as they stood at a recorded instant")
    p.add_argument(
        "--as-of",
        dest="as_of",
        required=True,
        metavar="TIMESTAMP",
        help="ISO 8601; naive times are UTC; a bare date means the end of that day",
    )
    p.add_argument("--contract")

    dispute = sub.add_parser("dispute", help="raise, resolve and list disputes on payment decisions")
    dsub = dispute.add_subparsers(dest="dispute_command", metavar="ACTION", parser_class=_Parser)
    dsub.required = True
    p = command(
        "raise", "a provider disputes a year's latest decision (within the contract's time bar)", dsub
    )
    p.add_argument("contract_id")
    p.add_argument("--year", type=int, required=True)
    p.add_argument("--reason", required=True)
    p = command("resolve", "the commissioner upholds or rejects a dispute", dsub)
    p.add_argument("contract_id")
    p.add_argument("dispute_id")
    p.add_argument("--year", type=int, required=True)
    verdict = p.add_mutually_exclusive_group(required=True)
    verdict.add_argument("--upheld", action="store_true")
    verdict.add_argument("--rejected", action="store_true")
    p.add_argument("--note", required=True)
    p.add_argument(
        "--adjust",
        metavar="AMOUNT",
        help="upheld: a manual adjustment of this amount (else the year is restated)",
    )
    p.add_argument("--party", help="who receives the adjustment (default the lead provider)")
    p = command("list", "disputes of a contract", dsub)
    p.add_argument("contract_id")
    p.add_argument("--year", type=int)

    p = command("verify", "recompute every event's seal; report the first broken link (exit 1 when broken)")
    p.add_argument(
        "--against", metavar="DIGEST", help="a digest (JSON text or a file) the log must still extend"
    )
    p.add_argument(
        "--public-key",
        dest="public_key",
        metavar="FILE",
        help="the Ed25519 public key every digest checked must be signed with",
    )
    p.add_argument(
        "--witness",
        metavar="DIR|kafka:TOPIC",
        help="a witness (directory, or kafka:ledger.digests): the log must extend every digest in it",
    )
    p.add_argument(
        "--bootstrap",
        default=os.environ.get(BOOTSTRAP_ENV),
        metavar="HOST:PORT",
        help=f"Kafka bootstrap server(s) for --witness kafka:TOPIC (or ${BOOTSTRAP_ENV})",
    )
    p.add_argument(
        "--read-models",
        dest="read_models",
        action="store_true",
        help="also rebuild the read models in a scratch database and compare them row by row",
    )
    p.add_argument(
        "--seals-only",
        dest="seals_only",
        action="store_true",
        help="check the seals only: skip replaying snapshots and rebuilding the record index",
    )
    p = command(
        "digest",
        "print a checkpoint of the log (ledger id, position, chain head, time), "
        "Ed25519-signed with --sign-key, for an auditor to keep",
    )
    p.add_argument(
        "--sign-key", dest="sign_key", metavar="FILE", help="the private key (obc-ledger keys generate)"
    )
    p.add_argument(
        "--publish",
        action="append",
        metavar="DIR|kafka:TOPIC",
        default=None,
        help="also append the digest to a witness: a directory, or kafka:ledger.digests (repeatable)",
    )
    p.add_argument(
        "--bootstrap",
        default=os.environ.get(BOOTSTRAP_ENV),
        metavar="HOST:PORT",
        help=f"Kafka bootstrap server(s) for --publish kafka:TOPIC (or ${BOOTSTRAP_ENV})",
    )
    db = sub.add_parser("db", help="set up the database")
    dbsub = db.add_subparsers(dest="db_command", metavar="ACTION", parser_class=_Parser)
    dbsub.required = True
    p = command(
        "init",
        "create the tables; with --roles (PostgreSQL) the least-privilege roles, grants, "
        "append-only trigger and row-level security",
        dbsub,
    )
    p.add_argument(
        "--roles", action="store_true", help="owner, writer, projector and reader roles (PostgreSQL)"
    )
    p.add_argument(
        "--print-sql",
        dest="print_sql",
        action="store_true",
        help="print the SQL --roles runs (for a DBA to review or run) instead of running it",
    )
    keys = sub.add_parser("keys", help="Ed25519 signing keys for digests and decisions")
    ksub = keys.add_subparsers(dest="keys_command", metavar="ACTION", parser_class=_Parser)
    ksub.required = True
    p = command("generate", "a new key pair: the private key (mode 0600) and the public key beside it", ksub)
    p.add_argument("--out", type=Path, required=True, metavar="DIR")

    proj = sub.add_parser("projections", help="build and inspect the read models")
    psub = proj.add_subparsers(dest="projections_command", metavar="ACTION", parser_class=_Parser)
    psub.required = True
    p = command("run", "catch the read models up with the event log", psub)
    p.add_argument("--follow", action="store_true", help="keep following new events until interrupted")
    p.add_argument("--poll", type=float, default=1.0, metavar="SECONDS")
    command("rebuild", "drop every read model and rebuild it from position zero", psub)
    command("status", "the read models' position in the event log and their lag", psub)
    _stream_commands(command)
    add_view_commands(command)
    add_service_parsers(sub, command)  # serve, token (LEAD: into H-A's command table)
    p = command("demo", "build two realistic demo contracts in a fresh SQLite file and settle them")
    p.add_argument(
        "--out",
        type=Path,
        default=Path("demo-output"),
        help="directory for the demo's generated files (default ./demo-output)",
    )
    return parser


def _stream_commands(command: Callable[..., argparse.ArgumentParser]) -> None:
    def bootstrap(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--bootstrap",
            default=os.environ.get(BOOTSTRAP_ENV),
            metavar="HOST:PORT",
            help=f"Kafka bootstrap server(s), comma-separated (or ${BOOTSTRAP_ENV})",
        )
        p.add_argument(
            "--registry",
            metavar="URL",
            help="a Confluent-compatible schema registry (http[s]://[KEY:SECRET@]host:port): "
            "schema ids on the wire are its ids (default: the fixed ids of schemas/)",
        )

    p = command(
        "consume",
        "apply providers' Avro records from Kafka, exactly once in effect; "
        "records that cannot be applied go to <topic>.dlq with the reason",
    )
    bootstrap(p)
    p.add_argument(
        "--topic",
        action="append",
        dest="topics",
        metavar="TOPIC",
        help="topic to consume (repeatable; default ledger.domain.records)",
    )
    p.add_argument("--group", default="obc-ledger", help="consumer group (default obc-ledger)")
    p.add_argument(
        "--until-idle",
        type=float,
        metavar="SECONDS",
        help="exit cleanly once no record arrived for this long after the last save, no rebalance "
        "is in progress, and every partition it owns is consumed to its end",
    )
    p.add_argument(
        "--batch", type=int, default=2000, metavar="N", help="records per transaction (default 2000)"
    )
    p.add_argument(
        "--session-timeout-ms",
        type=int,
        default=10_000,
        metavar="MS",
        help="group session timeout (default 10000; joining a group takes about half of it)",
    )
    create_topics = (
        "create the topic when it does not exist (3 partitions); without it a missing topic is an error"
    )
    p.add_argument("--create-topics", dest="create_topics", action="store_true", help=create_topics)
    p = command("produce", "check a provider's JSON-lines file, report refused lines, send the rest as Avro")
    p.add_argument("file", help="JSON-lines file ('-' for stdin)")
    bootstrap(p)
    p.add_argument(
        "--topic", default="ledger.domain.records", help="topic to send to (default ledger.domain.records)"
    )
    p.add_argument("--check", action="store_true", help="only check the file; send nothing")
    p.add_argument("--create-topics", dest="create_topics", action="store_true", help=create_topics)
    p = command(
        "publish-decisions", "publish payment decisions from the ledger to a topic, exactly once in effect"
    )
    bootstrap(p)
    p.add_argument(
        "--topic", default="ledger.decisions", help="topic to publish to (default ledger.decisions)"
    )
    p.add_argument(
        "--until-idle",
        type=float,
        metavar="SECONDS",
        help="exit cleanly after this many seconds without a new decision",
    )
    p.add_argument(
        "--sign-key",
        dest="decision_sign_key",
        metavar="FILE",
        help="Ed25519 private key: each decision carries a decision-signature header",
    )


def _bootstrap(args: argparse.Namespace) -> str:
    """The Kafka bootstrap servers; also sets the schema registry the codec uses (--registry)."""
    from consumers.codec import use_registry

    use_registry(args.registry)
    if not args.bootstrap:
        raise UsageError(
            f"obc-ledger {args.command}: --bootstrap HOST:PORT is required (or set ${BOOTSTRAP_ENV})"
        )
    return args.bootstrap


ENV_PREFIX = "OBC_LEDGER_"


def env_name(action: argparse.Action) -> str:
    """The environment variable that supplies an option's default: OBC_LEDGER_<DEST>."""
    return ENV_PREFIX + action.dest.upper()


def option_actions(parser: argparse.ArgumentParser) -> list[tuple[str, argparse.Action]]:
    """(command path, option) for every option of every command, recursively."""
    found: list[tuple[str, argparse.Action]] = []

    def walk(p: argparse.ArgumentParser, path: str) -> None:
        for action in p._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, child in action.choices.items():
                    walk(child, f"{path} {name}".strip())
            elif action.option_strings and action.dest not in ("help", "version"):
                found.append((path, action))

    walk(parser, "")
    return found


class _FromEnv:
    """An option's default taken from its environment variable, converted only if the option is absent.

    argparse lets a sub-command's defaults overwrite what the main parser read (``--db b`` before the
    command lost to ``$OBC_LEDGER_DB``), and an append option's default is appended to; so the variable
    is never made an ordinary default: the parsed namespace is resolved after parsing (``_Parser``).
    """

    def __init__(self, action: argparse.Action, value: str) -> None:
        self.action, self.value = action, value

    def resolve(self) -> Any:
        action, value, name = self.action, self.value, env_name(self.action)
        option = "/".join(action.option_strings)
        if isinstance(action, (argparse._StoreTrueAction, argparse._StoreFalseAction)):
            word = value.strip().lower()
            if word not in _TRUE + _FALSE:
                raise UsageError(f"{name}={value!r}: {option} takes 1/true/yes/on or 0/false/no/off")
            return (word in _TRUE) == isinstance(action, argparse._StoreTrueAction)
        many = action.nargs in ("*", "+") or isinstance(action, argparse._AppendAction)
        items = [v for v in value.split(",") if v] if many else [value]
        if action.type is not None and callable(action.type):
            try:
                items = [action.type(v) for v in items]
            except (TypeError, ValueError, argparse.ArgumentTypeError):
                raise UsageError(f"{name}={value!r} is not a valid {action.dest} ({option})") from None
        if action.choices is not None:
            for v in items:
                if v not in action.choices:
                    raise UsageError(
                        f"{name}={value!r}: {option} must be one of "
                        f"{', '.join(map(str, action.choices))}, not {v!r}"
                    )
        return items if many else items[0]


_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


def _resolve_env(namespace: argparse.Namespace) -> None:
    for dest, value in list(vars(namespace).items()):
        if isinstance(value, _FromEnv):
            setattr(namespace, dest, value.resolve())


def _fresh_when_given(action: argparse.Action) -> None:
    """An append-style option given on the command line starts from nothing, not from $VARIABLE."""
    base = type(action)
    if not any(
        isinstance(action, c)
        for c in (
            argparse._AppendAction,
            argparse._AppendConstAction,
            argparse._CountAction,
            argparse._ExtendAction,
        )
    ):
        return

    def __call__(self: Any, parser: Any, namespace: Any, values: Any, option_string: Any = None) -> None:
        if isinstance(getattr(namespace, self.dest, None), _FromEnv):
            setattr(namespace, self.dest, None)
        base.__call__(self, parser, namespace, values, option_string)

    action.__class__ = type(base.__name__, (base,), {"__call__": __call__})


def apply_env_defaults(parser: argparse.ArgumentParser, environ: Any = None) -> None:
    """Every option may also be given as an environment variable; the command line always wins.

    The copies of the global options on each command (default ``SUPPRESS``) are left alone: given
    after the command they set the value, else the main parser's default (the variable) holds.
    """
    environ = os.environ if environ is None else environ
    for _, action in option_actions(parser):
        value = environ.get(env_name(action))
        if value is None or action.default is argparse.SUPPRESS:
            continue
        action.default = _FromEnv(action, value)
        action.required = False
        _fresh_when_given(action)


def _actor(args: argparse.Namespace) -> str:
    return getattr(args, "actor", None) or os.environ.get("OBC_LEDGER_ACTOR") or "system"


# Commands that read one contract, and where its id is (``contract``: optional, a filter).
READ_TARGETS = {
    "statement": "contract_id",
    "history": "contract_id",
    "submissions": "contract_id",
    "decisions": "contract_id",
    "explain": "contract_id",
    "costs": "contract_id",
    "reconcile": "contract_id",
    "payments": "contract_id",
    "report": "contract_id",
    "replay": "contract",
    "rejected": "contract",
    "completeness": "contract_id",
    "template": "contract_id",
    "whatif": "contract_id",
    ("contract", "show"): "contract_id",
    ("budget", "show"): "contract_id",
    ("contract", "terms"): "contract_id",
    ("contract", "variations"): "contract_id",
    ("dispute", "list"): "contract_id",
}


def _check_read(args: argparse.Namespace) -> None:
    """A read of one contract by someone who is not party to it is refused, and recorded."""
    actor = _actor(args)
    if actor == "system":
        return
    sub = getattr(args, f"{args.command}_command", None)
    field = READ_TARGETS.get((args.command, sub)) or READ_TARGETS.get(args.command)
    contract_id = getattr(args, field, None) if field else None
    if contract_id:
        _open(args).authorize_read(actor, contract_id)


def _readable(args: argparse.Namespace) -> Callable[[str | None], bool]:
    """Which contracts a list shows the acting party: all for system and auditors."""
    actor = _actor(args)
    return (lambda _cid: True) if actor == "system" else _open(args).readable(actor)


def _open(args: argparse.Namespace) -> Any:
    """The command's ledger, opened once (the read check and the command share it)."""
    from ledger.usecases.application import Ledger

    app = getattr(args, "_ledger", None)
    if app is None:
        app = args._ledger = Ledger.from_url(database_url(getattr(args, "db", None)))
    return app


def _projections(args: argparse.Namespace, app: Any = None) -> Any:
    from projections.bootstrap import Projections

    app = app or _open(args)
    return Projections.for_ledger(
        app, database_url(getattr(args, "db", None)), getattr(args, "projections_db", None)
    )


def _read(args: argparse.Namespace) -> Any:
    """The read models, caught up with the event log (their position noted for :func:`_position_note`)."""
    projections = _projections(args)
    read = projections.current()
    args._position = projections.projector.position()
    return read


def _position_note(args: argparse.Namespace) -> None:
    """Which event position the figures just printed come from (on stderr: stdout stays the data)."""
    position = getattr(args, "_position", None)
    if position is not None and not getattr(args, "json", False):
        print(
            f"figures from the read models at event #{position} (obc-ledger verify --read-models checks them "
            f"against the events)",
            file=sys.stderr,
        )


def _emit(args: argparse.Namespace, data: Any, text: Callable[[], str]) -> None:
    if getattr(args, "json", False):
        print(json.dumps(data, indent=2))
    else:
        print(text())


def read_document(path: Path) -> str:
    """A YAML document's text: at most MAX_YAML_BYTES read (a huge file is refused, not parsed), UTF-8."""
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_YAML_BYTES + 1)
    except OSError as exc:
        raise LedgerError(f"cannot read {path}: {exc.strerror}", code="file_not_found") from None
    if len(data) > MAX_YAML_BYTES:
        raise LedgerError(
            f"{path} is larger than {MAX_YAML_BYTES:,} bytes; a contract document is far smaller",
            code="document_too_large",
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise LedgerError(
            f"{path} is not valid UTF-8 at byte {exc.start + 1} (0x{data[exc.start]:02x})",
            code="invalid_encoding",
        ) from None


def cmd_contract(args: argparse.Namespace) -> int:
    app = _open(args)
    action = args.contract_command
    if action == "register":
        text = read_document(args.file)
        definition, created = app.register_contract(text, actor=_actor(args))
        data = {
            "contract_id": definition.id,
            "registered": created,
            "years": definition.years,
            "indicators": len(definition.indicators),
        }
        _emit(
            args,
            data,
            lambda: (
                f"registered contract {definition.id} ({definition.name}): "
                f"{definition.years} years, {len(definition.indicators)} indicators"
                if created
                else f"contract {definition.id} is already registered with this definition; nothing changed"
            ),
        )
        return 0
    if action == "list":
        may = _readable(args)
        rows = [r for r in _projections(args, app).current().contracts() if may(r["contract_id"])]
        _emit(
            args,
            rows,
            lambda: (
                "\n".join(
                    f"{r['contract_id']:<24} {r['model']:<10} {r['start']}  {r['years']}y {r['period']:<9} {r['name']}"
                    for r in rows
                )
                or "no contracts registered"
            ),
        )
        return 0
    if action == "extend":
        years = app.record_extension(args.contract_id, actor=_actor(args))
        _emit(
            args,
            {"contract_id": args.contract_id, "extension_years": years},
            lambda: f"extended {args.contract_id}: years {', '.join(map(str, years))} added",
        )
        return 0
    if action == "vary":
        text = read_document(args.file)
        result = app.vary_contract(args.contract_id, text, restate=args.restate, actor=_actor(args))
        _emit(args, result, lambda: _variation_text(result))
        return 0
    if action == "terms":
        terms = app.contract_terms(args.contract_id, args.year)
        _emit(args, terms, lambda: _yaml_text(terms))
        return 0
    if action == "variations":
        rows = app.variations(args.contract_id)
        _emit(
            args,
            rows,
            lambda: (
                "\n".join(
                    f"{r['variation_id']:<20} from year {r['effective_from_year']:<3} {r['reason']}"
                    + "".join(f"\n  - {c}" for c in r["changes"])
                    for r in rows
                )
                or "no variations recorded"
            ),
        )
        return 0
    data = _projections(args, app).current().contract(args.contract_id)
    _emit(args, data, lambda: json.dumps(data, indent=2))
    return 0


def _variation_text(result: dict[str, Any]) -> str:
    if not result["recorded"]:
        return (
            f"variation {result['variation_id']} of {result['contract_id']} is already recorded with this "
            f"content; nothing changed"
        )
    lines = [
        f"recorded variation {result['variation_id']} of {result['contract_id']}, effective from year "
        f"{result['effective_from_year']}: {result['reason']}"
    ]
    lines += [f"  - {c}" for c in result["changes"]]
    for r in result["restated"]:
        lines.append(f"  year {r['year']} restated: true-up {Decimal(r['amount']):,.2f} ({r['reason']})")
    return "\n".join(lines)


def _yaml_text(document: Any) -> str:
    import yaml

    return yaml.safe_dump(document, sort_keys=False, allow_unicode=True).rstrip("\n")


def cmd_budget(args: argparse.Namespace) -> int:
    app = _open(args)
    if args.budget_command == "adjust":
        amount = app.adjust_budget(
            args.contract_id, args.year, args.amount, args.reason, args.note, actor=_actor(args)
        )
        _emit(
            args,
            {"contract_id": args.contract_id, "year": args.year, "budget": format(amount, "f")},
            lambda: f"budget for {args.contract_id} year {args.year} is now {amount:,.2f} ({args.reason})",
        )
        return 0
    contract, _ = app.load_contract(args.contract_id)
    rows = [
        {"year": h["year"], "amount": format(h["amount"], "f"), "reason": h["reason"], "note": h["note"]}
        for h in contract.budget_history
    ]
    _emit(
        args,
        rows,
        lambda: table(
            [("year", "year"), ("amount", "budget"), ("reason", "reason"), ("note", "note")],
            rows,
            money_columns=["amount"],
        ),
    )
    return 0


def cmd_baseline(args: argparse.Namespace) -> int:
    app = _open(args)
    app.record_baseline(args.contract_id, args.key, args.value, args.note, actor=_actor(args))
    _emit(
        args,
        {"contract_id": args.contract_id, "key": args.key, "value": args.value},
        lambda: f"baseline {args.key} = {args.value} recorded for {args.contract_id}",
    )
    return 0


def _positive_int(text: str) -> int:
    if not (text.isascii() and text.isdigit()) or len(text) > 12 or int(text) == 0:
        raise argparse.ArgumentTypeError(f"must be a whole number from 1 to 999999999999 (got {text[:20]!r})")
    return int(text)


def cmd_ingest(args: argparse.Namespace) -> int:
    app = _open(args)
    source = args.source or ("stdin" if args.file == "-" else Path(args.file).name)
    refused: list[Any] = []

    kind = format_of(args.file, args.format)
    if kind == "xlsx" and args.file == "-":
        raise UsageError("obc-ledger: an xlsx workbook is read from a file, not standard input")

    def run(stream: Any) -> Any:  # bytes: encoding and line length are judged line by line (or row by row)
        if kind == "xlsx":
            framed = read_xlsx(Path(args.file), args.max_line_bytes)
        elif isinstance(stream, io.TextIOBase) or not hasattr(stream, "readline"):
            framed = text_lines(stream, args.max_line_bytes)
        elif kind == "csv":
            framed = read_csv(stream, args.max_line_bytes)
        else:
            framed = read_lines(stream, args.max_line_bytes)
        if args.check:
            report, refused[:] = app.check_framed(framed, source, actor=_actor(args))
            return report
        return app.ingest_framed(framed, source, actor=_actor(args))

    if args.file == "-":
        report = run(getattr(sys.stdin, "buffer", sys.stdin))
    else:
        try:
            handle = open(args.file, "rb")
        except OSError as exc:
            raise LedgerError(f"cannot read {args.file}: {exc.strerror}", code="file_not_found") from None
        with handle:
            report = run(handle)
    data = report.to_dict()
    if args.check:
        data["checked_only"] = True
        data["refused"] = [
            {"line": r.line, "code": r.refusal.code, "field": r.refusal.field, "message": r.refusal.message}
            for r in refused
        ]

    def text() -> str:
        if args.check:
            head = [
                f"would accept {report.accepted}, duplicates {report.duplicates}, reject {report.rejected}"
                + (f" (corrections among accepted: {report.corrections})" if report.corrections else "")
                + "; nothing was recorded (--check)"
            ]
            return "\n".join(head + [f"  line {r.line}: {r.refusal}" for r in refused])
        lines = [
            f"accepted {report.accepted}, duplicates {report.duplicates}, rejected {report.rejected}"
            + (f" (corrections among accepted: {report.corrections})" if report.corrections else "")
        ]
        for code, n in sorted(report.by_code.items()):
            lines.append(f"  rejected {n:>6}  {code}")
        for (cid, year), n in sorted(report.late.items()):
            lines.append(
                f"  {n} record(s) for closed year {year} of {cid}: run `obc-ledger restate {cid} {year}`"
            )
        for change in report.budget_changes:
            lines.append(
                f"  budget for {change['contract_id']} year {change['year']} now {change['budget']} "
                f"(population count {change['record_id']})"
            )
        if report.rejected:
            lines.append("  see `obc-ledger rejected list` for each rejected record and its reason")
        return "\n".join(lines)

    _emit(args, data, text)
    return EXIT_REFUSED if report.rejected else 0  # the good records are kept either way


def cmd_rejected(args: argparse.Namespace) -> int:
    may = _readable(args)
    rows = [
        r
        for r in _read(args).rejected()
        if (not args.contract or r["contract_id"] == args.contract)
        and (not args.code or r["code"] == args.code)
        and may(r["contract_id"])
    ]
    _emit(args, rows, lambda: render_rejections(rows))
    return 0


def _utc(stamp: Any) -> Any:
    """ISO-8601 UTC with a ``Z``, as every timestamp the CLI prints."""
    if not isinstance(stamp, str):
        return stamp
    return re.sub(r"\.\d+(?=Z$)", "", stamp.replace("+00:00", "Z"))  # to the second, as decisions are


def cmd_pay(args: argparse.Namespace) -> int:
    decided = _open(args).pay(args.contract_id, args.through, actor=_actor(args))
    _emit(
        args,
        decided,
        lambda: (
            table(
                [
                    ("contract_id", "contract"),
                    ("year", "year"),
                    ("period", "period"),
                    ("amount", "core instalment"),
                ],
                decided,
                money_columns=["amount"],
            )
            if decided
            else f"no instalments due through {args.through} (all already decided)"
        ),
    )
    return 0


def cmd_close_year(args: argparse.Namespace) -> int:
    app = _open(args)
    statement = app.close_year(args.contract_id, args.year, actor=_actor(args))
    gaps = app.data_gaps(args.contract_id, args.year)
    for line in gaps.lines():  # the close went ahead on the data held: say what was never sent
        print(f"warning: year {args.year} of {args.contract_id}: {line}", file=sys.stderr)
    _emit(
        args,
        statement,
        lambda: (
            f"closed year {args.year} of {args.contract_id}\n\n"
            + render_statement(statement)
            + _completeness_text(gaps)
        ),
    )
    return 0


def _completeness_text(gaps: Any) -> str:
    if gaps.complete:
        return "\n\ndata completeness: every cost report and indicator period is in"
    return (
        f"\n\ndata completeness: {len(gaps.cost_reports_missing)} cost report(s) and "
        f"{len(gaps.submissions_missing)} indicator period(s) missing\n"
        + "\n".join(f"  {line}" for line in gaps.lines())
    )


def cmd_template(args: argparse.Namespace) -> int:
    from ledger.adapters.tabular import template_reference, template_rows, write_csv, write_template_xlsx

    app = _open(args)
    contract, definition = app.load_contract(args.contract_id)
    calendar = definition.calendar(contract.extended)
    app.check_year(calendar, args.year)
    from ledger.domain.variations import year_terms

    definition = year_terms(definition, args.year)  # the indicators and parties in force that year
    sheets = template_rows(definition, calendar, args.year)
    if args.format == "xlsx":
        if args.out is None:
            raise UsageError("obc-ledger: template --format xlsx needs --out FILE")
        write_template_xlsx(
            args.out,
            sheets,
            template_reference(definition, calendar, args.year),
            list(definition.providers),
            [m.id for i in definition.indicators for m in i.measures],
        )
        _emit(
            args,
            {"out": str(args.out), "sheets": {k: len(v[1]) for k, v in sheets.items()}},
            lambda: f"wrote {args.out}: " + ", ".join(f"{k} ({len(v[1])} rows)" for k, v in sheets.items()),
        )
        return 0
    if args.kind not in sheets:
        raise LedgerError(f"contract {definition.id!r} takes no {args.kind} records", code="invalid_command")
    header, rows = sheets[args.kind]
    text = write_csv(header, rows)
    if args.out is None:
        sys.stdout.write(text)
    else:
        args.out.write_text(text)
        _emit(args, {"out": str(args.out), "rows": len(rows)}, lambda: f"wrote {args.out}: {len(rows)} rows")
    return 0


def cmd_completeness(args: argparse.Namespace) -> int:
    app = _open(args)  # the read check (READ_TARGETS) has run
    contract, definition = app.load_contract(args.contract_id)
    years = [args.year] if args.year else list(range(1, definition.term_years(contract.extended) + 1))
    found = [app.data_gaps(args.contract_id, year) for year in years]
    _emit(
        args,
        [g.to_dict() for g in found],
        lambda: "\n".join(
            f"year {g.year}: "
            + ("complete" if g.complete else f"{len(g.lines())} gap(s)")
            + "".join(f"\n  {line}" for line in g.lines())
            for g in found
        ),
    )
    return 0


def _year_range(text: str | None) -> tuple[int, int] | None:
    if text is None:
        return None
    first, sep, last = text.partition("-")
    try:
        return (int(first), int(last)) if sep else (int(first), int(first))
    except ValueError:
        raise InvalidCommand(f"--years {text!r}: give A-B (e.g. 1-2) or one year") from None


def cmd_whatif(args: argparse.Namespace) -> int:
    text = None
    if args.file is not None:
        text = read_document(args.file)
    if args.file is None and args.schedule_of_year is None:
        raise InvalidCommand("give a variation FILE or --schedule-of-year Z")
    result = _open(args).whatif(
        args.contract_id, text, _year_range(args.years), args.schedule_of_year, actor=_actor(args)
    )
    _emit(args, result, lambda: whatif_text(result))
    return 0


def whatif_text(result: dict[str, Any]) -> str:
    """Each year's statement in force beside the what-if, with the difference per line and per party."""

    def net(st: dict[str, Any]) -> Decimal:
        return Decimal(st["total"]) + sum((Decimal(t["amount"]) for t in st["true_ups"]), Decimal("0"))

    def money_of(value: Any) -> Decimal:
        return Decimal(value) if value is not None else Decimal("0")

    def lines_of(st: dict[str, Any]) -> list[tuple[str, Decimal]]:
        risk = st.get("risk_share") or {}
        return [
            ("budget", money_of(st["budget"])),
            ("core", money_of(st["core"]["annual"])),
            ("outcome payment", money_of(st["outcomes"]["payment"])),
            ("reserve", money_of(st["reserve"])),
            ("risk-share adjustment", money_of(risk.get("adjustment"))),
            ("high-cost reimbursement", money_of(st["high_cost_reimbursement"])),
            ("rate card", money_of((st.get("rate_card") or {}).get("payment"))),
            ("health gain", sum((money_of(g["payment"]) for g in st.get("health_gain") or []), Decimal("0"))),
            ("year-close payment", money_of(st["year_close_payment"])),
            ("true-ups", net(st) - Decimal(st["total"])),
            ("net total", net(st)),
        ]

    out = [
        f"what-if for {result['contract_id']}: {result['variation_id']} (effective from year "
        f"{result['effective_from_year']}); nothing recorded"
    ]
    for y in result["years"]:
        now, new = y["in_force"], y["whatif"]
        out.append("")
        out.append(f"year {y['year']}{'':<19}{'in force':>18}{'what-if':>18}{'difference':>18}")
        for (label, a), (_, b) in zip(lines_of(now), lines_of(new)):
            out.append(f"  {label:<24}{a:>18,.2f}{b:>18,.2f}{b - a:>18,.2f}")
        out.append("  by party")
        for party, diff in y["difference"]["by_party"].items():
            before = Decimal(new["by_party"].get(party, "0")) - Decimal(diff)
            out.append(
                f"    {party:<22}{before:>18,.2f}{Decimal(new['by_party'].get(party, '0')):>18,.2f}"
                f"{Decimal(diff):>18,.2f}"
            )
    return "\n".join(out)


def cmd_restate(args: argparse.Namespace) -> int:
    app = _open(args)
    true_up = app.restate(args.contract_id, args.year, actor=_actor(args))
    # a rate card's caps run over the term: later closed years whose figures changed are restated too (§8)
    later = app.restate_later_years(args.contract_id, args.year, actor=_actor(args))
    doc: dict[str, Any] = {"contract_id": args.contract_id, "year": args.year, "true_up": true_up}
    if later:
        doc["later_years"] = later

    def text() -> str:
        lines = [
            f"true-up for {args.contract_id} year {args.year}: {true_up['amount']} ({true_up['reason']})"
            if true_up
            else f"restated {args.contract_id} year {args.year}: no difference, nothing recorded"
        ]
        lines += [
            f"true-up for {args.contract_id} year {y['year']}: {y['true_up']['amount']} "
            f"({y['true_up']['reason']})"
            for y in later
        ]
        return "\n".join(lines)

    _emit(args, doc, text)
    return 0


def cmd_statement(args: argparse.Namespace) -> int:
    if args.as_of:
        from projections.bootstrap import Projections, parse_instant

        read = Projections.as_of(_open(args), parse_instant(args.as_of), {args.contract_id}).read
    else:
        read = _read(args)
    statement = read.statement(args.contract_id, args.year)
    _emit(args, statement, lambda: render_statement(statement))
    _position_note(args)
    return 0


def cmd_history(args: argparse.Namespace) -> int:
    rows = _read(args).history(args.contract_id, args.year)
    _emit(
        args,
        rows,
        lambda: (
            table(
                [
                    ("at", "recorded at (UTC)"),
                    ("event", "event"),
                    ("period", "period"),
                    ("amount", "amount"),
                    ("reason", "reason"),
                    ("actor", "by"),
                ],
                [dict(r, at=_utc(r["at"])) for r in rows],
                money_columns=["amount"],
            )
            if rows
            else "nothing recorded for that year yet"
        ),
    )
    return 0


def cmd_submissions(args: argparse.Namespace) -> int:
    rows = _read(args).submissions(args.contract_id, args.indicator, args.period, args.all_versions)
    _emit(
        args,
        rows,
        lambda: (
            table(
                [
                    ("period", "period"),
                    ("indicator_id", "indicator"),
                    ("provider_id", "provider"),
                    ("figure", "figure"),
                    ("submission_id", "submission"),
                    ("status", "status"),
                ],
                [
                    dict(
                        r,
                        figure=(f"{r['numerator']}/{r['denominator']}" if r["value"] is None else r["value"]),
                        status="current" if r["current"] else f"superseded by {r['superseded_by']}",
                    )
                    for r in rows
                ],
            )
            if rows
            else "no submissions"
        ),
    )
    return 0


def cmd_decisions(args: argparse.Namespace) -> int:
    rows = _read(args).decisions(args.contract_id)
    _emit(
        args,
        rows,
        lambda: (
            table(
                [
                    ("year", "year"),
                    ("kind", "decision"),
                    ("decided_at", "decided at (UTC)"),
                    ("amount", "amount"),
                    ("reason", "reason"),
                ],
                [dict(r, decided_at=_utc(r["decided_at"])) for r in rows],
                money_columns=["amount"],
            )
            if rows
            else "no decisions yet"
        ),
    )
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    from projections.bootstrap import Projections, parse_instant

    instant = parse_instant(args.as_of)
    read = Projections.as_of(_open(args), instant, {args.contract} if args.contract else None).read
    may = _readable(args)
    contracts = [args.contract] if args.contract else [cid for cid in read.contract_ids() if may(cid)]
    data: dict[str, Any] = {"as_of": instant.isoformat(), "contracts": {}}
    for cid in contracts:
        data["contracts"][cid] = {
            "statements": [read.statement(cid, y) for y in read.settled_years(cid)],
            "decisions": read.decisions(cid),
        }

    def text() -> str:
        out = [f"ledger as recorded at {instant.isoformat()}"]
        for cid, c in data["contracts"].items():
            out.append(f"\n== {cid}: {len(c['decisions'])} decision(s)")
            out += [
                f"  year {d['year']} {d['kind']:<8} {d['decided_at']}  {d['amount']:>16}  {d['reason'] or ''}"
                for d in c["decisions"]
            ]
            for st in c["statements"]:
                out += ["", render_statement(st)]
        return "\n".join(out)

    _emit(args, data, text)
    return 0


def cmd_dispute(args: argparse.Namespace) -> int:
    app = _open(args)
    action = args.dispute_command
    if action == "raise":
        d = app.raise_dispute(args.contract_id, args.year, args.reason, actor=_actor(args))
        _emit(
            args,
            d,
            lambda: (
                f"dispute {d['dispute_id']} raised on the {d['decision']} of {args.contract_id} "
                f"year {args.year} (decided {d['decision_at']})"
            ),
        )
        return 0
    if action == "resolve":
        out = app.resolve_dispute(
            args.contract_id,
            args.year,
            args.dispute_id,
            args.upheld,
            args.note,
            actor=_actor(args),
            adjust=args.adjust,
            party=args.party,
        )

        def text() -> str:
            line = f"dispute {out['dispute_id']} {out['status']}"
            if "adjustment" in out:
                line += f"; adjustment {out['adjustment']['amount']} to {out['adjustment']['party']}"
            elif out.get("true_up"):
                line += f"; true-up {out['true_up']['amount']} ({out['true_up']['reason']})"
            elif out["status"] == "upheld":
                line += "; the year was restated with no difference"
            return line

        _emit(args, out, text)
        return 0
    rows = app.disputes(args.contract_id, args.year)
    _emit(
        args,
        rows,
        lambda: (
            "\n".join(
                f"year {r['year']} {r['dispute_id']:<6} {r['status']:<9} raised {r['raised_at']} by {r['raised_by']}: "
                f"{r['reason']}" + (f" — {r['resolution']['note']}" if r["resolution"] else "")
                for r in rows
            )
            or "no disputes"
        ),
    )
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    from ledger.adapters import audit, witness

    against = audit.load_digest(args.against) if args.against else None
    engine: list[Any] = []

    def recorded(oid: str) -> tuple[str, str, int | None] | None:
        """What the read models recorded of a stream: they name it even when its first event was altered."""
        from uuid import UUID

        from sqlalchemy import select

        from projections import schema as t

        if not engine:
            engine.append(_projections(args).engine)
        with engine[0].connect() as conn:
            row = conn.execute(
                select(t.streams).where(t.streams.c.originator_id == str(UUID(hex=oid)))
            ).first()
        return (row.stream, row.contract_id, row.year) if row else None

    public = None
    if args.public_key:
        from ledger.adapters.signing import load_public_key

        public = load_public_key(args.public_key)
    witnessed = witness.read(args.witness, args.bootstrap) if args.witness else []
    if public is not None:
        for name, one in witnessed:  # a refusal names the witness file
            try:
                audit.check_signature(one, public)
            except LedgerError as exc:
                raise LedgerError(f"witness {name}: {exc.message}", code=exc.code) from None
    app = _open(args)
    result = audit.verify(
        app,
        against,
        public_key=public,
        witnessed=[d for _, d in witnessed],
        names=audit.StreamNames(recorded),
    )
    out = result.to_dict()
    if result.witness is not None:
        for (name, _), check in zip(witnessed, result.witness):
            check["file"] = name
        order = witness.order_problem(witnessed)
        if order is not None:
            result.witness.append(order)
            result.ok = out["ok"] = False
        failing = [c for c in result.witness if not c["ok"]]
        out["witness_first_not_extended"] = failing[0] if failing else None
    lines = []
    if result.problem:
        lines.append(f"BROKEN after {result.checked} good event(s): {result.problem['message']}")
    else:
        lines.append(f"ok: {result.checked} event(s) verified; head #{result.position} {result.head_hash}")
    if result.digest_checked:
        lines.append(
            ("ok: " if result.digest_checked["ok"] else "BROKEN: ") + result.digest_checked["message"]
        )
    if (against is not None or witnessed) and public is None:
        lines.append("note: digest signatures not checked (give --public-key to require them)")
    if result.witness is not None:
        failing = [c for c in result.witness if not c["ok"]]
        lines.append(
            f"BROKEN: witness digest {failing[0].get('file')}: {failing[0]['message']}"
            if failing
            else f"ok: the log extends all {len(witnessed)} witnessed digest(s)"
        )
    if not result.problem and not args.seals_only:
        from ledger.usecases.checks import check_derived

        derived = check_derived(app)
        out["derived_state"] = derived
        result.ok = out["ok"] = result.ok and not derived["problems"]
        problems = derived["problems"]
        lines.append(
            f"ok: {derived['snapshots_checked']} snapshot(s) replayed and {derived['index_rows']} record "
            f"index row(s) matched the events"
            if not problems
            else "\n".join(f"BROKEN: {p['message']}" for p in problems[:50])
            + (f"\n… {len(problems) - 50} more (--json lists every one)" if len(problems) > 50 else "")
        )
    if args.read_models and not result.problem:
        from projections.verify import verify_read_models

        models = verify_read_models(_projections(args, app))
        out["read_models"] = models
        result.ok = out["ok"] = result.ok and models["ok"]
        lines.append(models_text(models))
    _emit(args, out, lambda: "\n".join(lines))
    return 0 if result.ok else 1


def models_text(models: dict[str, Any]) -> str:
    if models["ok"]:
        return (
            f"ok: the read models match a rebuild from the events ({models['rows_compared']} row(s) in "
            f"{len(models['tables'])} table(s), position #{models['position']})"
        )
    lines = [
        f"BROKEN: the read models differ from a rebuild from the events ({len(models['differences'])} "
        f"difference(s)):"
    ]
    for d in models["differences"][:200]:
        key = ", ".join(f"{k}={v}" for k, v in d["key"].items())
        lines.append(
            f"  {d['table']} ({key}) {d['column'] or 'row'}: live {d['live']} / from events {d['from_events']}"
        )
    if len(models["differences"]) > 200:
        lines.append(f"  … {len(models['differences']) - 200} more (--json lists every one)")
    return "\n".join(lines)


def cmd_digest(args: argparse.Namespace) -> int:
    from ledger.adapters import audit

    signer = None
    if args.sign_key:
        from ledger.adapters.signing import load_signer

        signer = load_signer(args.sign_key)
    value = audit.digest(_open(args), signer)
    for target in args.publish or ():
        from ledger.adapters.witness import publish

        publish(value, target, args.bootstrap)
    print(json.dumps(value, indent=2 if getattr(args, "json", False) else None))
    return 0


def cmd_db(args: argparse.Namespace) -> int:
    url = database_url(getattr(args, "db", None))
    if not args.roles:
        _open(args)
        _projections(args).projector.create_tables()
        _emit(args, {"initialised": True}, lambda: "created the event tables and read models")
        return 0
    from ledger.adapters.roles import init_roles

    sql = init_roles(url, execute=not args.print_sql)
    if args.print_sql:
        print(";\n".join(sql) + ";")
        return 0
    _emit(
        args,
        {"roles": ["obc_owner", "obc_writer", "obc_projector", "obc_reader"], "statements": len(sql)},
        lambda: (
            f"roles obc_owner, obc_writer, obc_projector and obc_reader set up ({len(sql)} statements); "
            f"make each worker's login user a member of one (see deploy/README.md)"
        ),
    )
    return 0


def cmd_keys(args: argparse.Namespace) -> int:
    from ledger.adapters.signing import generate, key_id, load_public_key

    private, public = generate(args.out)
    kid = key_id(load_public_key(public))
    _emit(
        args,
        {"private_key": str(private), "public_key": str(public), "key_id": kid},
        lambda: (
            f"private key {private} (mode 0600: keep it off the ledger's machines)\n"
            f"public key  {public} (key id {kid})"
        ),
    )
    return 0


def cmd_projections(args: argparse.Namespace) -> int:
    proj = _projections(args)
    action = args.projections_command
    if action == "status":
        status = proj.projector.status()
        if status.get("alarm") == "log_truncated":
            _emit(
                args,
                status,
                lambda: (
                    f"ALARM log_truncated: position {status['position']} of {status['head']}: "
                    f"{status['message']}"
                ),
            )
            return 1

        def text() -> str:
            lines = [f"position {status['position']} of {status['head']} (lag {status['lag']})"]
            skipped = status["quarantined"]
            if skipped:
                lines.append(
                    f"quarantined {len(skipped)} event(s) the read models could not hold "
                    f"(`projections rebuild` tries them again):"
                )
                lines += [
                    f"  #{q['notification_id']} {q['event_type']}"
                    + (
                        f" ({q['contract_id']}" + (f" year {q['year']}" if q["year"] else "") + ")"
                        if q["contract_id"]
                        else ""
                    )
                    + f": {q['error']}: {q['reason']}"
                    for q in skipped
                ]
            return "\n".join(lines)

        _emit(args, status, text)
        return 0
    if action == "rebuild":
        n = proj.projector.rebuild()
        _emit(args, {"rebuilt": n}, lambda: f"rebuilt the read models from {n} event(s)")
        return 0
    if args.follow:
        import signal

        stopping = []
        signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
        try:
            n = proj.projector.follow(poll_seconds=args.poll, stop=lambda: bool(stopping))
        except KeyboardInterrupt:
            n = 0
        _emit(args, {"projected": n}, lambda: f"stopped following after {n} event(s)")
        return 0
    n = proj.projector.run()
    _emit(args, {"projected": n, **proj.projector.status()}, lambda: f"projected {n} event(s); up to date")
    return 0


def cmd_consume(args: argparse.Namespace) -> int:
    from consumers.consumer import LedgerConsumer

    bootstrap = _bootstrap(args)
    if args.batch < 1:
        raise UsageError("obc-ledger consume: --batch must be at least 1")
    consumer = LedgerConsumer(
        _open(args),
        bootstrap,
        args.topics,
        group=args.group,
        batch=args.batch,
        until_idle=args.until_idle,
        actor=_actor(args),
        session_timeout_ms=args.session_timeout_ms,
        create_topics=args.create_topics,
    )
    report = consumer.run()

    def text() -> str:
        lines = [
            f"consumed {report.consumed}: accepted {report.accepted}, duplicates {report.duplicates}, "
            f"dead-lettered {report.dead_lettered}"
            + (f" (corrections among accepted: {report.corrections})" if report.corrections else "")
        ]
        for code, n in sorted(report.by_code.items()):
            lines.append(f"  dead-lettered {n:>6}  {code}")
        for (cid, year), n in sorted(report.late.items()):
            lines.append(
                f"  {n} record(s) for closed year {year} of {cid}: run `obc-ledger restate {cid} {year}`"
            )
        if report.dead_lettered:
            lines.append(
                f"  dead letters are in {', '.join(t + '.dlq' for t in consumer.topics)} and "
                f"`obc-ledger rejected list`"
            )
        return "\n".join(lines)

    _emit(args, report.to_dict(), text)
    return 0


def cmd_produce(args: argparse.Namespace) -> int:
    from consumers.producer import produce

    bootstrap = _bootstrap(args)
    if args.file == "-":
        buffered = sys.stdin.readlines()

        def open_lines() -> Any:
            return iter(buffered)
    else:
        path = Path(args.file)
        if not path.is_file():
            raise LedgerError(f"cannot read {args.file}: no such file", code="file_not_found")

        def open_lines() -> Any:
            with open(path, encoding="utf-8", errors="surrogateescape") as handle:
                yield from handle

    def show_refused(refused: list[Any]) -> None:
        if refused and not args.json:
            print(f"refused {len(refused)} line(s), not sent:")
            for r in refused:
                print(f"  line {r.line}: {r.refusal}")
            sys.stdout.flush()

    report = produce(
        bootstrap,
        args.topic,
        open_lines,
        check_only=args.check,
        on_refused=show_refused,
        create_topic=args.create_topics,
    )
    _emit(
        args,
        report.to_dict(),
        lambda: (
            f"checked {report.lines} line(s): {report.lines - len(report.refused)} valid, {len(report.refused)} refused; "
            f"nothing sent (--check)"
            if args.check
            else f"sent {report.sent} record(s) to {report.topic}"
            + (f"; refused {len(report.refused)}" if report.refused else "")
        ),
    )
    return 0


def cmd_publish_decisions(args: argparse.Namespace) -> int:
    from consumers.decisions import publish_decisions

    signer = None
    if args.decision_sign_key:
        from ledger.adapters.signing import load_signer

        signer = load_signer(args.decision_sign_key)
    report = publish_decisions(_open(args), _bootstrap(args), args.topic, args.until_idle, signer=signer)
    _emit(
        args,
        report.to_dict(),
        lambda: (
            f"published {report.published} decision(s) to {report.topic}"
            + (
                f" ({report.already_published} already there from an interrupted run, not sent again)"
                if report.already_published
                else ""
            )
        ),
    )
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from ledger.entrypoints.cli.demo import run_demo

    return run_demo(db=getattr(args, "db", None), out=args.out, as_json=args.json)


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "contract": cmd_contract,
    "budget": cmd_budget,
    "baseline": cmd_baseline,
    "ingest": cmd_ingest,
    "rejected": cmd_rejected,
    "pay": cmd_pay,
    "close-year": cmd_close_year,
    "completeness": cmd_completeness,
    "template": cmd_template,
    "restate": cmd_restate,
    "whatif": cmd_whatif,
    "statement": cmd_statement,
    "demo": cmd_demo,
    "consume": cmd_consume,
    "produce": cmd_produce,
    "publish-decisions": cmd_publish_decisions,
    "history": cmd_history,
    "submissions": cmd_submissions,
    "decisions": cmd_decisions,
    "replay": cmd_replay,
    "projections": cmd_projections,
    "verify": cmd_verify,
    "digest": cmd_digest,
    "dispute": cmd_dispute,
    "keys": cmd_keys,
    "db": cmd_db,
}
COMMANDS.update(VIEW_COMMANDS)
COMMANDS.update(SERVICE_COMMANDS)


def _fail(as_json: bool, error: dict[str, Any], lines: Sequence[str], code: int) -> int:
    if as_json:
        print(json.dumps(error), file=sys.stderr)
    else:
        for line in lines:
            print(printable(line), file=sys.stderr)  # nothing a sender wrote reaches the terminal raw
    return code


# Arguments that name an id: checked with the id grammar before any command runs.
ID_ARGUMENTS = ("contract_id", "contract", "indicator", "party", "dispute_id", "key", "group")


def _check_ids(args: argparse.Namespace) -> None:
    for name in ID_ARGUMENTS:
        value = getattr(args, name, None)
        if isinstance(value, str):
            problem = id_problem(value)
            if problem is not None:
                raise UsageError(f"obc-ledger: {name.replace('_', '-')} {problem}")


class _Stderr(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is when a record is emitted (it may be redirected)."""

    @property  # type: ignore[override]
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


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    as_json = "--json" in argv
    try:
        parser = build_parser()
        apply_env_defaults(parser)
        if (
            "_ARGCOMPLETE" in os.environ
        ):  # shell completion: `eval "$(register-python-argcomplete obc-ledger)"`
            import argcomplete

            argcomplete.autocomplete(parser)
        args = parser.parse_args(argv)
        as_json = bool(getattr(args, "json", False))  # --json, or $OBC_LEDGER_JSON: errors as JSON too
        _configure_logging(getattr(args, "log_level", None) or "warning")
        _check_ids(args)
        _check_read(args)
        status = COMMANDS[args.command](args)
        sys.stdout.flush()  # a closed pipe shows here, inside the guard, not at interpreter exit
        return status
    except BrokenPipeError:
        return _quiet_broken_pipe()
    except UsageError as exc:
        return _fail(as_json, {"error": "usage", "message": str(exc)}, [f"error: {exc}"], EXIT_USAGE)
    except ValidationFailed as exc:
        lines = [
            f"error: {exc.code}: {len(exc.problems)} problem(s); nothing was "
            f"{'recorded' if exc.code == 'invalid_variation' else 'registered'}"
        ]
        lines += [f"  {path}: {message}" for path, message in exc.problems]
        return _fail(as_json, exc.to_dict(), lines, EXIT_ERROR)
    except LedgerError as exc:
        return _fail(as_json, exc.to_dict(), [f"error: {exc.code}: {exc.message}"], EXIT_ERROR)
    except KeyboardInterrupt:
        return _fail(as_json, {"error": "interrupted", "message": "interrupted"}, ["error: interrupted"], 130)
    except Exception as exc:  # infrastructure failures: one line, never a traceback
        if os.environ.get("OBC_LEDGER_DEBUG"):
            raise
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


if __name__ == "__main__":
    sys.exit(main())

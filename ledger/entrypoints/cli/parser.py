"""The ``obc-ledger`` argument parser, built from the command table (:mod:`.table`).

The top-level parser knows every command's name and help; a command's own arguments are added
(its module imported) only when argparse reaches that command (:class:`_LazyCommands`), or for
every command at once with ``build_parser(lazy=False)`` (shell completion, the deploy env table).

Every option may also come from ``OBC_LEDGER_<DEST>`` (:func:`apply_env_defaults`); the command
line always wins.
"""

from __future__ import annotations

import argparse
import importlib
import os
from collections.abc import Callable, Mapping
from typing import Any

from ledger import __version__
from ledger.adapters.config import DB_ENV
from ledger.entrypoints.cli.errors import UsageError
from ledger.entrypoints.cli.help import finish
from ledger.entrypoints.cli.table import COMMANDS, EXTENSIONS, GROUPS, resolve

LOG_LEVELS = ("debug", "info", "warning", "error")
ENV_PREFIX = "OBC_LEDGER_"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]  # one line, no usage dump
        raise UsageError(f"{self.prog}: {message} (see --help)")

    def parse_known_args(self, args: Any = None, namespace: Any = None) -> Any:
        parsed, rest = super().parse_known_args(args, namespace)
        _resolve_env(parsed)  # options absent from the command line take their environment variable
        return parsed, rest


def _global_options(parser: argparse.ArgumentParser, *, suppress: bool) -> None:
    """The global options: documented on the top-level parser; on each command (``suppress``) accepted
    after it too, without a default (the top-level value holds) and left out of its help."""
    default = argparse.SUPPRESS if suppress else None

    def described(text: str) -> str:
        return argparse.SUPPRESS if suppress else text

    parser.add_argument(
        "--db",
        default=default,
        metavar="URL",
        help=described(
            f"event store: sqlite:///file.db (default sqlite:///obc-ledger.db, or ${DB_ENV}) "
            "or postgresql://user:pass@host:port/dbname"
        ),
    )
    parser.add_argument(
        "--json",
        action="store_true",
        default=argparse.SUPPRESS if suppress else False,
        help=described("machine-readable output (and errors as JSON)"),
    )
    parser.add_argument(
        "--projections-db",
        dest="projections_db",
        default=default,
        metavar="URL",
        help=described(
            "where the read models live (default: the event store's database; or $OBC_LEDGER_PROJECTIONS_DB)"
        ),
    )
    parser.add_argument(
        "--as",
        dest="actor",
        default=default,
        metavar="ACTOR",
        help=described(
            "who is acting, recorded on every event (e.g. commissioner:occg); default $OBC_LEDGER_ACTOR or 'system'"
        ),
    )
    parser.add_argument(
        "--token",
        dest="token",
        default=default,
        metavar="TOKEN",
        help=described(
            "prove who is acting with a token from `obc-ledger token issue` (or $OBC_LEDGER_TOKEN): "
            "the actor is the token's, and its id is recorded on every event as the principal"
        ),
    )
    parser.add_argument(
        "--log-level",
        dest="log_level",
        default=default,
        choices=LOG_LEVELS,
        type=str.lower,
        help=described(
            "diagnostics on stderr, e.g. a consumer's partition assignments at 'info' "
            "(default 'warning', or $OBC_LEDGER_LOG_LEVEL)"
        ),
    )


class _LazyCommands(argparse._SubParsersAction):
    """The top-level sub-parsers: a command's arguments are added the first time argparse reaches it."""

    def __call__(self, parser: Any, namespace: Any, values: Any, option_string: Any = None) -> None:
        name = values[0] if values else None
        if name in COMMANDS and isinstance(parser, RootParser):
            parser.load(name)
        super().__call__(parser, namespace, values, option_string)


class RootParser(_Parser):
    """``obc-ledger``: the table's commands, each configured on first use; their handlers kept here."""

    commands: Any
    handlers: dict[str, Any]  # command -> handler(args, ctx) (context.Handler)

    def load(self, name: str) -> None:
        """Import command ``name``'s module and add its arguments (once)."""
        if name in self.handlers:
            return
        help_text, target = COMMANDS[name]
        configure = resolve(target)
        p = self.commands.choices[name]
        if name not in GROUPS:
            p.description = help_text
            _global_options(p, suppress=True)
        self.handlers[name] = configure(p, self.command)
        for path, leaf in _leaves(p, name):
            finish(leaf, path)
        environ = getattr(self, "_obc_environ", None)
        if environ is not None:
            _apply_env(p, environ)

    def load_all(self) -> None:
        for name in COMMANDS:
            self.load(name)

    def command(self, name: str, help_text: str, parent: Any) -> argparse.ArgumentParser:
        """An action of a group command (``contract register``), with the global options."""
        p = parent.add_parser(name, help=help_text, description=help_text)
        _global_options(p, suppress=True)
        return p

    def handler(self, args: argparse.Namespace) -> Any:
        found = getattr(args, "handler", None)  # an extension's own (set_defaults(handler=...))
        return found if found is not None else self.handlers[args.command]


def add_command(subparsers: Any, name: str, help_text: str) -> argparse.ArgumentParser:
    """A command of its own for an extension module's ``add_parsers(subparsers)`` (table.EXTENSIONS):
    its help, its description and the global options, as the table's commands have. Give it its
    handler with ``parser.set_defaults(handler=fn)``, ``fn(args, ctx) -> exit status``."""
    p = subparsers.add_parser(name, help=help_text, description=help_text)
    _global_options(p, suppress=True)
    finish(p, name)  # the global-options note (its examples: set p.epilog before adding arguments)
    return p


def _leaves(parser: argparse.ArgumentParser, path: str) -> list[tuple[str, argparse.ArgumentParser]]:
    """(command path, parser) of every runnable command under ``parser`` (``contract register``, …)."""
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        return [(path, parser)]
    return [leaf for name, child in subs[0].choices.items() for leaf in _leaves(child, f"{path} {name}")]


def build_parser(*, lazy: bool = False) -> RootParser:
    """The parser; ``lazy`` (what ``obc-ledger`` itself uses) leaves each command's module unimported
    until the command is reached."""
    parser = RootParser(
        prog="obc-ledger", description="Event-sourced contract ledger for outcomes-based commissioning."
    )
    parser.handlers = {}
    parser.add_argument("--version", action="version", version=f"obc-ledger {__version__}")
    _global_options(parser, suppress=False)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser, action=_LazyCommands)
    sub.required = True
    parser.commands = sub
    for name, (help_text, _) in COMMANDS.items():
        sub.add_parser(name, help=help_text)
    for module in EXTENSIONS:
        importlib.import_module(module).add_parsers(sub)
    if not lazy:
        parser.load_all()
    return parser


def env_name(action: argparse.Action) -> str:
    """The environment variable that supplies an option's default: OBC_LEDGER_<DEST>."""
    return ENV_PREFIX + action.dest.upper()


def option_actions(parser: argparse.ArgumentParser) -> list[tuple[str, argparse.Action]]:
    """(command path, option) for every option of every command, recursively (every command loaded)."""
    if isinstance(parser, RootParser):
        parser.load_all()
    return _options_of(parser)


def _options_of(parser: argparse.ArgumentParser) -> list[tuple[str, argparse.Action]]:
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
        items: list[Any] = [v for v in value.split(",") if v] if many else [value]
        if action.type is not None and callable(action.type):
            convert: Callable[[str], Any] = action.type
            try:
                items = [convert(v) for v in items]
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


FROM_ENV = "_obc_from_env"  # the namespace's {dest: variable} of the options its environment supplied


def from_environment(namespace: argparse.Namespace) -> dict[str, str]:
    """The options whose value came from an ``OBC_LEDGER_*`` variable (not the command line): dest -> variable."""
    found = getattr(namespace, FROM_ENV, None)
    return dict(found) if isinstance(found, dict) else {}


def _resolve_env(namespace: argparse.Namespace) -> None:
    taken = dict(getattr(namespace, FROM_ENV, None) or {})
    for dest, value in list(vars(namespace).items()):
        if isinstance(value, _FromEnv):
            setattr(namespace, dest, value.resolve())
            taken[dest] = env_name(value.action)
    setattr(namespace, FROM_ENV, taken)


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


def apply_env_defaults(parser: argparse.ArgumentParser, environ: Mapping[str, str] | None = None) -> None:
    """Every option may also be given as an environment variable; the command line always wins.

    The copies of the global options on each command (default ``SUPPRESS``) are left alone: given
    after the command they set the value, else the main parser's default (the variable) holds.
    Commands loaded later (lazily) get theirs when they are loaded.
    """
    environ = os.environ if environ is None else environ
    parser._obc_environ = environ  # type: ignore[attr-defined]
    _apply_env(parser, environ)


def _apply_env(parser: argparse.ArgumentParser, environ: Mapping[str, str]) -> None:
    for _, action in _options_of(parser):
        value = environ.get(env_name(action))
        if value is None or action.default is argparse.SUPPRESS:
            continue
        action.default = _FromEnv(action, value)
        action.required = False
        _fresh_when_given(action)

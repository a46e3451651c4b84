"""The command table: every command listed by --help without importing its module; a command's
module imported only when it runs or its help is asked for; extension modules (add_parsers)."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import types

import pytest

from ledger.entrypoints.cli import parser as cli_parser
from ledger.entrypoints.cli import table
from ledger.entrypoints.cli.main import main

PROBE = """
import contextlib, io, json, sys
from ledger.entrypoints.cli.main import main
with contextlib.redirect_stdout(io.StringIO()) as out:
    try:
        main(sys.argv[1:])
    except SystemExit:
        pass
print(json.dumps({"out": out.getvalue(), "modules": sorted(m for m in sys.modules if m.startswith(
    ("ledger.entrypoints.cli.commands.", "ledger.bootstrap", "projections", "consumers", "eventsourcing")))}))
"""


def _probe(*argv: str) -> dict:
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, *argv], capture_output=True, text=True, timeout=120, check=True
    )
    return json.loads(proc.stdout.splitlines()[-1])


def test_help_lists_every_command_and_imports_none_of_them():
    seen = _probe("--help")
    assert all(f"    {name}" in seen["out"] for name in table.COMMANDS)
    assert seen["modules"] == [], "--help imported command modules or the wiring"


def test_a_commands_help_imports_its_own_module_only():
    seen = _probe("payments", "--help")
    assert "examples:" in seen["out"]
    commands = [m for m in seen["modules"] if m.startswith("ledger.entrypoints.cli.commands.")]
    assert commands == ["ledger.entrypoints.cli.commands.views"]


def test_every_table_entry_resolves_to_a_configure_function_returning_a_handler():
    parser = cli_parser.build_parser()
    assert set(parser.handlers) == set(table.COMMANDS)
    assert all(callable(h) for h in parser.handlers.values())


def test_an_extension_module_adds_its_own_command(monkeypatch, capsys):
    module = types.ModuleType("obc_test_extension")

    def add_parsers(subparsers: argparse._SubParsersAction) -> None:
        p = cli_parser.add_command(subparsers, "hello", "say hello")
        p.add_argument("name")
        p.set_defaults(handler=lambda args, ctx: print(f"hello {args.name}") or 0)

    module.add_parsers = add_parsers  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "obc_test_extension", module)
    monkeypatch.setattr(cli_parser, "EXTENSIONS", ("obc_test_extension",))
    assert main(["hello", "world"]) == 0
    assert capsys.readouterr().out == "hello world\n"
    assert main(["hello", "world", "--db", "sqlite:///x.db"]) == 0, "the global options, after the command"


def test_an_unknown_command_is_a_usage_error(capsys):
    assert main(["no-such-command"]) == 2
    assert "invalid choice" in capsys.readouterr().err


@pytest.mark.parametrize("name", sorted(table.COMMANDS))
def test_each_command_has_a_one_line_help(name):
    help_text, target = table.COMMANDS[name]
    assert help_text and "\n" not in help_text and ":" in target


GLOBAL_DESTS = {"db", "json", "projections_db", "actor", "token", "log_level", "help"}


def _leaves(parser: argparse.ArgumentParser, path: str = ""):
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        yield path, parser
        return
    for name, child in subs[0].choices.items():
        yield from _leaves(child, f"{path} {name}".strip())


def test_every_command_describes_each_argument_and_gives_an_example():
    missing = []
    for path, leaf in _leaves(cli_parser.build_parser()):
        for action in leaf._actions:
            if action.dest in GLOBAL_DESTS:
                continue
            if not action.help or action.help == argparse.SUPPRESS:
                missing.append(f"{path}: {action.dest} has no description")
        if f"examples:\n  obc-ledger {path}" not in leaf.format_help():
            missing.append(f"{path}: no example")
    assert not missing, "\n".join(missing)


def test_the_global_options_are_documented_once_not_in_each_command():
    root = cli_parser.build_parser()
    described = "where the read models live"
    assert described in root.format_help()
    for path, leaf in _leaves(root):
        text = leaf.format_help()
        assert described not in text, f"{path} repeats the global options"
        assert "obc-ledger --help" in text, f"{path} does not say where the global options are"

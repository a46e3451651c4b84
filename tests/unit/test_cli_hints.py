"""The use cases speak of the domain; the CLI adds its flags to their errors (ledger/entrypoints/cli/hints.py)."""

import ast
import re
from pathlib import Path

from ledger.domain.errors import InvalidCommand, LedgerError
from ledger.entrypoints.cli.hints import HINTS, hint, with_hint

ROOT = Path(__file__).resolve().parents[2]
FLAG = re.compile(r"(?<![\w-])--[a-z][a-z-]+")


def test_no_use_case_or_aggregate_message_names_a_flag():
    files = [
        *sorted((ROOT / "ledger" / "usecases").glob("*.py")),
        ROOT / "ledger" / "domain" / "aggregates.py",
    ]
    named = []
    for path in files:
        tree = ast.parse(path.read_text())
        docstrings = {
            id(n.body[0].value)
            for n in ast.walk(tree)
            if isinstance(n, (ast.Module, ast.ClassDef, ast.FunctionDef))
            and n.body
            and isinstance(n.body[0], ast.Expr)
            and isinstance(n.body[0].value, ast.Constant)
        }
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
                named += [f"{path.name}:{node.lineno}: {m}" for m in FLAG.findall(node.value)]
    assert named == []


def test_the_cli_adds_the_flag_to_the_domain_message():
    error = InvalidCommand("'x' is not a provider party to c", code="unknown_party")
    assert hint(error) == HINTS["unknown_party"] and "--party" in with_hint(error)
    assert with_hint(LedgerError("plain", code="something_else")) == "plain"

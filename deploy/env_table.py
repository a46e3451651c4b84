"""The table of every environment variable the CLI takes, generated from its parser.

    python -m deploy.env_table        # prints the Markdown table pasted into deploy/README.md

Every option of every command can come from ``OBC_LEDGER_<DEST>`` (ledger.entrypoints.cli.main.env_name;
the option on the command line wins). Variables are listed once, with every option and
command that reads them. ``EXTRAS`` are read outside the parser.
"""

from __future__ import annotations

import argparse
from collections import defaultdict

from ledger.entrypoints.cli.main import build_parser, env_name, option_actions

EXTRAS = {
    "OBC_LEDGER_DEBUG": ("—", "all", "—", "set to 1 to print a Python traceback on an internal error"),
    "OBC_LEDGER_OIDC_CLIENT_SECRET": (
        "—",
        "serve",
        "—",
        "a confidential OIDC client's secret (sent to the token endpoint; environment only, never printed)",
    ),
    "OBC_LEDGER_OIDC_AUTHORIZATION_URL": (
        "—",
        "serve",
        "the discovery document's",
        "the issuer's authorization endpoint, when it publishes no discovery document",
    ),
    "OBC_LEDGER_OIDC_TOKEN_URL": (
        "—",
        "serve",
        "the discovery document's",
        "the issuer's token endpoint, when it publishes no discovery document",
    ),
    "OBC_LEDGER_OIDC_ACTOR_MAP": (
        "—",
        "serve",
        "—",
        "a JSON file mapping the OIDC actor claim's values to actors",
    ),
    "OBC_LEDGER_MAX_UPLOAD_BYTES": ("—", "serve", "268435456", "the largest upload body the service accepts"),
    "OBC_LEDGER_LOG_WALKS_PER_MINUTE": (
        "—",
        "serve",
        "20",
        "each principal's chain walks and as-of replays a minute (0: no limit); past it 429 `rate_limited`",
    ),
    "OBC_LEDGER_REFUSALS_PER_MINUTE": (
        "—",
        "serve",
        "60",
        "each principal's refused reads recorded a minute (0: no limit); past it a read that would be "
        "refused is answered 429 `rate_limited`, the first of the run recorded",
    ),
    "OBC_LEDGER_CHROMIUM": (
        "—",
        "report --pdf",
        "chromium on the PATH",
        "the headless Chromium that prints the PDF",
    ),
}
GLOBAL = "(global)"
# Meanings for options whose help text is missing or differs from command to command.
MEANINGS = {
    "OBC_LEDGER_ALL_VERSIONS": "every version of each submission, superseded ones too",
    "OBC_LEDGER_CONTRACT": "only this contract",
    "OBC_LEDGER_NOTE": "a note kept with the change or resolution",
    "OBC_LEDGER_PERIOD": "only this period (YYYY-MM or YYYY-Qn)",
    "OBC_LEDGER_POLL": "seconds between polls of the event log while following (default 1.0)",
    "OBC_LEDGER_REJECTED": "resolve the dispute as rejected (1/true/yes/on)",
    "OBC_LEDGER_UPHELD": "resolve the dispute as upheld (1/true/yes/on)",
    "OBC_LEDGER_TOPIC": "`produce`: topic to send to (default ledger.records); "
    "`publish-decisions`: topic to publish to (default ledger.decisions)",
    "OBC_LEDGER_OUT": "`demo`: directory for its generated files (default ./demo-output); `report`: the HTML file",
    "OBC_LEDGER_TOPICS": "topics to consume, comma-separated in the variable (default ledger.records)",
    "OBC_LEDGER_YEAR": "contract year (1 is the first); where optional, only this year",
}


def variables(parser: argparse.ArgumentParser | None = None) -> dict[str, dict[str, set[str]]]:
    """Variable -> {"options": {...}, "commands": {...}, "defaults": {...}, "help": {...}}."""
    found: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for path, action in option_actions(parser or build_parser()):
        entry = found[env_name(action)]
        entry["options"].add("/".join(action.option_strings))
        entry["commands"].add(path or GLOBAL)
        if action.default not in (None, False, "", argparse.SUPPRESS):
            entry["defaults"].add(str(action.default))
        if action.help and action.help != argparse.SUPPRESS:
            entry["help"].add(f"`{path}`: " * bool(path) + " ".join(action.help.split()))
        entry["with_help" if action.help else "without_help"].add(path)
    return found


def _commands(commands: set[str]) -> str:
    if GLOBAL in commands:
        return "every command"
    return ", ".join(f"`{c}`" for c in sorted(commands))


def _meaning(entry: dict[str, set[str]]) -> str:
    """The help text; prefixed by its command when commands differ in help (or lack it)."""
    texts = {h.split(": ", 1)[1] if h.startswith("`") else h for h in entry["help"]}
    if len(texts) == 1 and not entry["without_help"]:
        return texts.pop()
    return "; ".join(sorted(entry["help"]))


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def markdown() -> str:
    rows = ["| Variable | Option | Commands | Default | Meaning |", "| --- | --- | --- | --- | --- |"]
    for name, entry in sorted(variables().items()):
        options = ", ".join(f"`{o}`" for o in sorted(entry["options"]))
        default = ", ".join(f"`{d}`" for d in sorted(entry["defaults"])) or "—"
        meaning = MEANINGS.get(name) or _meaning(entry)
        rows.append(
            f"| `{name}` | {options} | {_commands(entry['commands'])} | {default} | {_cell(meaning)} |"
        )
    for name, (option, commands, default, meaning) in sorted(EXTRAS.items()):
        rows.append(f"| `{name}` | {option} | {commands} | {default} | {_cell(meaning)} |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(markdown())

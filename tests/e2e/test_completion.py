"""Shell completion (argcomplete) of commands and options through the installed `obc-ledger`."""

import os
import subprocess

from tests.support.cli import OBC_LEDGER


def _complete(line: str) -> set[str]:
    """What the shell would offer: argcomplete answers on fd 8 (and writes debug output to fd 9)."""
    env = dict(os.environ, _ARGCOMPLETE="1", _ARGCOMPLETE_IFS="\n", COMP_LINE=line, COMP_POINT=str(len(line)))
    proc = subprocess.run(
        ["bash", "-c", f"'{OBC_LEDGER}' 8>&1 9>/dev/null"],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    return {word.strip() for word in proc.stdout.split("\n")} - {""}


def test_commands_and_options_complete_in_the_shell():
    assert {"contract", "consume", "completeness"} <= _complete("obc-ledger co")
    assert "--max-line-bytes" in _complete("obc-ledger ingest data.jsonl --max")

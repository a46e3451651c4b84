"""Run the `obc-ledger` CLI in-process (fast) or as a real subprocess, against one database."""

from __future__ import annotations

import io
import json
import sqlite3
import subprocess
import sys
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ledger.entrypoints.cli.main import main
from ledger.usecases import services_for

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "ledger" / "examples"
OBC_LEDGER = Path(sys.executable).with_name("obc-ledger")
# A killed or stopped consumer's partitions are handed on within the session (Tansu's first join
# also waits about half of it); an --until-idle consume exits only once it has read to the end of
# every partition it owns, so IDLE_S only waits for records still arriving.
SESSION_MS = 3000
IDLE_S = 0.75


def consume_args(bootstrap: str, topic: str, *extra: str, idle: str = str(IDLE_S)) -> list[str]:
    """`obc-ledger consume` until the topic is idle, in the group named after the topic, as --json."""
    return [
        "consume",
        "--bootstrap",
        bootstrap,
        "--topic",
        topic,
        "--group",
        topic,
        "--until-idle",
        idle,
        "--session-timeout-ms",
        str(SESSION_MS),
        "--json",
        *extra,
    ]


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


class Cli:
    def __init__(self, db_url: str) -> None:
        self.db_url = db_url

    def __call__(self, *args: str) -> Result:
        out, err = io.StringIO(), io.StringIO()
        with redirect_stdout(out), redirect_stderr(err):
            code = main(["--db", self.db_url, *map(str, args)])
        return Result(code, out.getvalue(), err.getvalue())

    def ok(self, *args: str) -> Result:
        result = self(*args)
        assert result.code == 0, f"obc-ledger {' '.join(map(str, args))} failed ({result.code}): {result.err}"
        return result

    def refused(self, *args: str) -> Result:
        """A command that ran but refused some of its input: `ingest` exits 3 when any record was refused."""
        result = self(*args)
        assert result.code == 3, (
            f"obc-ledger {' '.join(map(str, args))} exited {result.code}, not 3: {result.err}"
        )
        return result

    def subprocess(self, *args: str, timeout: float = 120) -> Result:
        proc = subprocess.run(
            [str(OBC_LEDGER), "--db", self.db_url, *map(str, args)],
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        return Result(proc.returncode, proc.stdout, proc.stderr)


def worked_example_ledger(url: str) -> Any:
    """A ledger at ``url`` holding the worked example: contract, every record, year 1 closed."""
    from ledger.usecases.application import Ledger

    app = Ledger.from_url(url)
    services_for(app).registration.register_contract((EXAMPLES / "worked-example.yaml").read_text())
    services_for(app).ingest.ingest_lines(
        (EXAMPLES / "worked-example-data.jsonl").read_text().splitlines(), "example.jsonl"
    )
    services_for(app).settlement.close_year("beds-msk", 1)
    return app


def stored_states(db_url: str, topic_part: str = "") -> list[dict[str, Any]]:
    """The stored state of every event of a SQLite ledger whose topic contains ``topic_part``, in order."""
    with sqlite3.connect(db_url.removeprefix("sqlite:///")) as conn:
        rows = conn.execute("SELECT topic, state FROM stored_events ORDER BY rowid").fetchall()
    return [json.loads(state) for topic, state in rows if topic_part in topic]

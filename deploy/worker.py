"""One ``obc-ledger`` process of the local cluster, configured only by its environment."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

STOP_GRACE_S = 20.0  # SIGTERM: a consumer finishes and commits its batch, then leaves the group


def obc_ledger_argv() -> list[str]:
    """The ``obc-ledger`` console script of this interpreter's environment."""
    script = Path(sys.executable).parent / "obc-ledger"
    return [str(script)] if script.exists() else [sys.executable, "-m", "ledger.entrypoints.cli"]


def worker_env(settings: dict[str, str]) -> dict[str, str]:
    """This process's environment without any OBC_LEDGER_* of the caller's, plus ``settings``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OBC_LEDGER_")}
    return env | settings


@dataclass
class Worker:
    """One ``obc-ledger`` process; its stdout (a JSON report at exit) and stderr go to files."""

    name: str
    args: list[str]
    env: dict[str, str]
    logs: Path
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def out(self) -> Path:
        return self.logs / f"{self.name}.out"

    @property
    def err(self) -> Path:
        return self.logs / f"{self.name}.err"

    def start(self) -> Worker:
        with open(self.out, "wb") as out, open(self.err, "wb") as err:
            self.proc = subprocess.Popen(
                obc_ledger_argv() + self.args,
                env=worker_env(self.env),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                start_new_session=True,
            )  # a terminal Ctrl-C is ours to handle
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        if self.running():
            self.proc.send_signal(signal.SIGKILL)  # type: ignore[union-attr]
            self.proc.wait()  # type: ignore[union-attr]

    def stop(self, grace: float = STOP_GRACE_S) -> None:
        self.terminate()
        self.wait_stopped(grace)

    def terminate(self) -> None:
        """SIGTERM: finish the batch in hand, save it, leave the group, print the report."""
        if self.running():
            self.proc.send_signal(signal.SIGTERM)  # type: ignore[union-attr]

    def wait_stopped(self, grace: float = STOP_GRACE_S) -> None:
        """Wait for a terminated worker; SIGKILL it after ``grace`` seconds (it then prints no report)."""
        if self.proc is None:
            return
        try:
            self.proc.wait(grace)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def log_tail(self, lines: int = 15) -> str:
        return (
            "\n".join(self.err.read_text(errors="replace").splitlines()[-lines:]) if self.err.exists() else ""
        )

    def report(self) -> dict[str, Any] | None:
        """The JSON report it printed when it stopped (None if it was killed)."""
        try:
            return json.loads(self.out.read_text())
        except (OSError, ValueError):
            return None

    def failure(self) -> str:
        code = self.proc.returncode if self.proc else None
        tail = self.err.read_text(errors="replace")[-2000:] if self.err.exists() else ""
        return f"{self.name} (pid {self.pid}) exited with {code}: {tail.strip()}"

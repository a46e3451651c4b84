"""A real ``obc-ledger serve`` on a loopback port, for the API and browser tests."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from ledger.adapters.tokens import TokenStore

OBC_LEDGER = Path(sys.executable).with_name("obc-ledger")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Service:
    url: str
    db_url: str
    process: subprocess.Popen[bytes]
    log: Path

    def token(self, actor: str, name: str | None = None, expires: Any = None) -> str:
        """A fresh bearer token for ``actor`` (issued in the service's own database)."""
        _, token = TokenStore(self.db_url).issue(actor, name or actor, expires)
        return token

    def client(self, token: str | None = None, **kwargs: Any) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=60, **kwargs)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)


def start_service(db_url: str, log: Path, env: dict[str, str] | None = None, workers: int = 1) -> Service:
    port = free_port()
    handle = open(log, "wb")  # noqa: SIM115 - the server's stderr, read when a test fails
    process = subprocess.Popen(
        [str(OBC_LEDGER), "--db", db_url, "serve", "--port", str(port), "--workers", str(workers)],
        stdout=handle,
        stderr=subprocess.STDOUT,
        env={**os.environ, **(env or {})},
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"obc-ledger serve exited {process.returncode}: {log.read_text()[-2000:]}")
        try:
            if httpx.get(url + "/healthz", timeout=2).status_code == 200:
                return Service(url, db_url, process, log)
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    process.kill()
    raise RuntimeError(f"obc-ledger serve did not answer in 60 s: {log.read_text()[-2000:]}")

"""Where the ledger keeps its events: a database URL turned into eventsourcing settings.

``sqlite:///path/to/file.db`` (the embedded default) or
``postgresql://user:password@host:port/dbname[?schema=name]``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from ledger.domain.errors import ConfigurationError

DEFAULT_DB = "sqlite:///obc-ledger.db"
DB_ENV = "OBC_LEDGER_DB"


# user:password@ in a URL's authority (or at the start of text that parses as no URL): up to the last "@"
_USERINFO_PASSWORD = re.compile(r"^((?:[A-Za-z][A-Za-z0-9+.-]*://)?[^/@:]*):[^/]*@")
_QUERY_PASSWORD = re.compile(r"([?&;]password=)[^&#;]*", re.IGNORECASE)


def shown_url(url: str) -> str:
    """A database URL as an error message may show it: its password (in the user info or a ``password=``
    query parameter) replaced by ``***``, however malformed the rest of the URL is."""
    return _QUERY_PASSWORD.sub(r"\1***", _USERINFO_PASSWORD.sub(r"\1:***@", str(url)))


def database_url(explicit: str | None = None) -> str:
    return explicit or os.environ.get(DB_ENV) or DEFAULT_DB


def persistence_env(url: str) -> dict[str, str]:
    """eventsourcing environment for a database URL (process recorder: events + tracking)."""
    if url.startswith("sqlite://"):
        path = url[len("sqlite:///") :] if url.startswith("sqlite:///") else ""
        if not path:
            raise ConfigurationError(
                f"{shown_url(url)!r}: expected sqlite:///relative/path.db or sqlite:////abs/path.db",
                code="invalid_db_url",
            )
        if path != ":memory:":
            parent = Path(path).expanduser().resolve().parent
            if not parent.is_dir():
                raise ConfigurationError(
                    f"{shown_url(url)!r}: directory {parent} does not exist", code="invalid_db_url"
                )
            path = str(Path(path).expanduser())
        return {
            "PERSISTENCE_MODULE": "eventsourcing.sqlite",
            "SQLITE_DBNAME": path if path != ":memory:" else "file::memory:?mode=memory&cache=shared",
            "SQLITE_LOCK_TIMEOUT": "30",
            "APPLICATION_RECORDER_TOPIC": "ledger.adapters.store:SQLiteLedgerRecorder",
            "SINGLE_ROW_TRACKING": "t",
        }
    parts = urlsplit(url)
    scheme = parts.scheme.split("+", 1)[0]
    if scheme in ("postgresql", "postgres"):
        query = parse_qs(parts.query)
        dbname = unquote(parts.path.lstrip("/"))
        host = parts.hostname or query.get("host", ["127.0.0.1"])[0]
        if not dbname:
            raise ConfigurationError(
                f"{shown_url(url)!r}: the database name is missing", code="invalid_db_url"
            )
        env = {
            "PERSISTENCE_MODULE": "eventsourcing.postgres",
            "POSTGRES_DBNAME": dbname,
            "POSTGRES_HOST": host,
            "POSTGRES_PORT": str(parts.port or query.get("port", ["5432"])[0]),
            "POSTGRES_USER": unquote(parts.username or query.get("user", ["postgres"])[0]),
            "POSTGRES_PASSWORD": unquote(parts.password or query.get("password", [""])[0]),
            "POSTGRES_CONNECT_TIMEOUT": "10",
            "POSTGRES_LOCK_TIMEOUT": "30",
            "APPLICATION_RECORDER_TOPIC": "ledger.adapters.store_postgres:PostgresLedgerRecorder",
            "SINGLE_ROW_TRACKING": "t",
        }
        if "schema" in query:
            env["POSTGRES_SCHEMA"] = query["schema"][0]
        return env
    raise ConfigurationError(
        f"{shown_url(url)!r}: unsupported database URL (use sqlite:///file.db or postgresql://…)",
        code="invalid_db_url",
    )

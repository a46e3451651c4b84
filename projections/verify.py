"""``verify --read-models``: the live read models compared, row by row, with a rebuild from the events.

The read models are derived data that anyone with write access to their database can
edit (``update instalment_parties set amount = …``), and ``payments``, ``statement``
and ``reconcile`` read them. This rebuilds every table in a scratch SQLite file from
the (verified) event log, up to the live models' position, and compares each table by
primary key: a row only live, a row only from the events, or a column that differs,
each reported with its table, key, live value and value from the events.
"""

from __future__ import annotations

import shutil
import tempfile
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import select

from . import schema as t
from .bootstrap import Projections


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, Decimal) or isinstance(b, Decimal):
        try:
            return Decimal(a) == Decimal(
                b
            )  # 1.0 and 1.00 are one amount; PostgreSQL and SQLite differ in scale
        except (TypeError, ValueError, ArithmeticError):
            return False
    return bool(a == b)


def _text(value: Any) -> Any:
    return str(value) if isinstance(value, Decimal) else value


def _rows(engine: Any, table: Any) -> dict[tuple[Any, ...], tuple[Any, ...]]:
    at = [list(table.columns).index(c) for c in table.primary_key.columns]
    with engine.connect() as conn:
        return {tuple(r[i] for i in at): tuple(r) for r in conn.execute(select(table))}


ATTEMPTS = 10


def verify_read_models(live: Any, *, limit: int = 10_000, attempts: int = ATTEMPTS) -> dict[str, Any]:
    """Compare ``live`` (a :class:`projections.bootstrap.Projections`) with a rebuild from its ledger's events.

    Another process (the service, a consumer) may project into the live models while they are read:
    a comparison is kept only when their position did not move while it ran (each projection commits
    its rows and its position together), else the scratch catches up to the new position and the
    tables are compared again — at most ``attempts`` times, then ``unsettled`` says so (no verdict)."""
    live.projector.run()  # caught up first: a difference is then a difference, not lag
    position = live.projector.position()
    folder = Path(tempfile.mkdtemp(prefix="obc-ledger-verify-"))
    unsettled = None
    try:
        scratch = Projections(live.app, f"sqlite:///{folder / 'scratch.db'}")
        for attempt in range(1, attempts + 1):
            scratch.projector.run(upto=position)
            compared, tables, differences = _compare(live, scratch, limit)
            moved = live.projector.position()
            if moved == position:
                break
            position = moved
            if attempt == attempts:
                unsettled = (
                    f"the live read models moved during each of {attempts} comparisons (another process "
                    f"is projecting into them): no verdict; run again when writes pause"
                )
                differences = []
        scratch.engine.dispose()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    out = {
        "ok": not differences and unsettled is None,
        "position": position,
        "rows_compared": compared,
        "tables": tables,
        "differences": differences,
    }
    if unsettled is not None:
        out["unsettled"] = unsettled
    return out


def _compare(live: Any, scratch: Any, limit: int) -> tuple[int, dict[str, int], list[dict[str, Any]]]:
    """Every read model table, live against the scratch rebuild: (rows compared, rows per table,
    differences — at most ``limit``)."""
    differences: list[dict[str, Any]] = []
    tables: dict[str, int] = {}
    compared = 0
    for table in t.READ_MODELS:
        mine, theirs = _rows(live.engine, table), _rows(scratch.engine, table)
        tables[table.name] = len(theirs)
        compared += len(mine.keys() | theirs.keys())
        names = [c.name for c in table.columns]
        odd = [
            k for k in mine.keys() | theirs.keys() if mine.get(k) != theirs.get(k)
        ]  # tuples: the fast path
        for key in sorted(odd, key=repr):
            if len(differences) >= limit:
                break
            shown = dict(zip((c.name for c in table.primary_key.columns), map(_text, key), strict=True))
            a, b = mine.get(key), theirs.get(key)
            if a is None or b is None:
                differences.append(
                    {
                        "table": table.name,
                        "key": shown,
                        "column": None,
                        "live": None if a is None else dict(zip(names, map(_text, a), strict=True)),
                        "from_events": None if b is None else dict(zip(names, map(_text, b), strict=True)),
                    }
                )
                continue
            for column, x, y in zip(names, a, b, strict=True):
                if not _same(x, y):
                    differences.append(
                        {
                            "table": table.name,
                            "key": shown,
                            "column": column,
                            "live": _text(x),
                            "from_events": _text(y),
                        }
                    )
    return compared, tables, differences

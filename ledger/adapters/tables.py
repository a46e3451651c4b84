"""Text tables for people, through ``rich``: a header row, every id whole, money with thousands separators.

Used by ``payments``, ``accruals`` and ``report``; the rest of the CLI moves to it
with the house-style change. Output is plain text (no colour, no terminal codes),
so it is the same in a terminal, a pipe or a test.
"""

from __future__ import annotations

import io
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from decimal import Decimal
from typing import Any, TypeVar

from rich import box
from rich.console import Console
from rich.table import Table

T = TypeVar("T")


def money(value: Any) -> str:
    return "—" if value is None or value == "" else f"{Decimal(value):,.2f}"


def table(
    columns: Sequence[tuple[str, str]],
    rows: Iterable[Mapping[str, Any]],
    *,
    money_columns: Iterable[str] = (),
    title: str | None = None,
) -> str:
    """``columns`` is (key, header); money columns are right-aligned with separators; nothing is cut."""
    money_keys = set(money_columns)
    t = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, title=title, title_justify="left")
    for key, header in columns:
        t.add_column(header, justify="right" if key in money_keys else "left", no_wrap=True)
    for row in rows:
        t.add_row(
            *[
                money(row.get(k)) if k in money_keys else ("—" if row.get(k) is None else str(row.get(k)))
                for k, _ in columns
            ]
        )
    out = io.StringIO()
    Console(
        file=out,
        width=10_000,
        color_system=None,
        force_terminal=False,
        highlight=False,
        emoji=False,
        markup=False,
    ).print(t)
    return "\n".join(line.rstrip() for line in out.getvalue().splitlines()).strip("\n")


def progress(items: Sequence[T], description: str) -> Iterator[T]:
    """Iterate with a progress bar on stderr when stderr is a terminal; silently otherwise."""
    if not sys.stderr.isatty():
        yield from items
        return
    from rich.progress import track  # rich's progress module is loaded only when a bar is drawn

    yield from track(items, description=description, console=Console(file=sys.stderr), transient=True)

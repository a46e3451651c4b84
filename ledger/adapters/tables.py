"""Text tables for people, through ``rich``: a header row, every id whole, money with thousands separators.

Used by ``payments``, ``accruals`` and ``report``; the rest of the CLI moves to it
with the house-style change. Output is plain text (no colour, no terminal codes),
so it is the same in a terminal, a pipe or a test.
"""

from __future__ import annotations

import io
import os
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
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


LARGE_FILE = 4 * 1024 * 1024  # bytes: a smaller file is read before a bar would be worth drawing


@contextmanager
def meter(description: str, total: int | None) -> Iterator[Callable[[int], None]]:
    """``advance(n)`` for a progress bar on stderr when stderr is a terminal (silent otherwise).

    Advances are gathered and drawn about 200 times over ``total``, so a caller may advance by one
    per event without slowing the work."""
    if not sys.stderr.isatty():
        yield _ignore
        return
    from rich.progress import Progress  # rich's progress module is loaded only when a bar is drawn

    step = max(1, (total or 0) // 200)
    pending = [0]
    with Progress(console=Console(file=sys.stderr), transient=True) as bar:
        task = bar.add_task(description, total=total)

        def advance(n: int) -> None:
            pending[0] += n
            if pending[0] >= step:
                bar.advance(task, pending[0])
                pending[0] = 0

        yield advance


def _ignore(_n: int) -> None:
    pass


def reading(items: Iterable[T], handle: Any, description: str) -> Iterator[T]:
    """``items`` as read from the file ``handle``, with a bar of the bytes read on stderr: for a large
    regular file, on a terminal; otherwise ``items`` as they are."""
    try:
        total = os.fstat(handle.fileno()).st_size
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):  # stdin, a pipe, no file
        total = 0
    if total < LARGE_FILE or not sys.stderr.isatty():
        yield from items
        return
    with meter(description, total) as advance:
        at = handle.tell()
        for n, item in enumerate(items, start=1):
            yield item
            if n % 1000 == 0:
                now = handle.tell()
                advance(now - at)
                at = now


def progress(items: Sequence[T], description: str) -> Iterator[T]:
    """Iterate with a progress bar on stderr when stderr is a terminal; silently otherwise."""
    if not sys.stderr.isatty():
        yield from items
        return
    from rich.progress import track  # rich's progress module is loaded only when a bar is drawn

    yield from track(items, description=description, console=Console(file=sys.stderr), transient=True)

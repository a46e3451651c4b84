"""The cyclic garbage collector's pace during bulk work (ingest, consume, rebuild, verify).

Reference counting frees almost every object the ledger makes; the cyclic collector only finds
cycles. At CPython's default pace (a young collection every 700 allocations, a full one every
100) a bulk ingest spends much of its time in the collector traversing objects that are alive —
the batch in flight, the cached aggregates — and finding nothing (measured: 10–15% of an ingest in
paired runs, a third of a batch's save with the input held in memory; README "Performance").
Within :func:`bulk_pace` young collections run every 50,000 allocations and full ones rarely:
cycles (an exception's traceback, say) are still collected, only in larger steps. Nested and
concurrent uses (threads of the web service) share one setting, restored when the last ends.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

BULK_THRESHOLDS = (50_000, 20, 100)

_lock = threading.Lock()
_depth = 0
_saved: tuple[int, int, int] | None = None


@contextmanager
def bulk_pace() -> Iterator[None]:
    """Collect cycles at the bulk pace while the block runs (never slower than the caller set)."""
    global _depth, _saved
    with _lock:
        if _depth == 0:
            _saved = gc.get_threshold()
            gc.set_threshold(*(max(a, b) for a, b in zip(_saved, BULK_THRESHOLDS, strict=True)))
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0 and _saved is not None:
                gc.set_threshold(*_saved)
                _saved = None

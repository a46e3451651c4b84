"""The command-line hint for an error code: which flag fixes it (the use cases never name flags).

``hint(error)`` returns one line to print under the error, or None. The table is filled by the
use-case split (issue 10, H-B); until then it is empty.
"""

from __future__ import annotations

from ledger.domain.errors import LedgerError

HINTS: dict[str, str] = {}


def hint(error: LedgerError) -> str | None:
    return HINTS.get(error.code)

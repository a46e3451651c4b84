"""Exit statuses of ``obc-ledger`` and the usage mistake; :mod:`.main` maps every failure to one."""

from __future__ import annotations

EXIT_OK = 0
EXIT_ERROR = 1  # a LedgerError (one line, its code), a storage fault, an infrastructure failure
EXIT_USAGE = 2
EXIT_REFUSED = 3  # ingest (and ingest --check): some record was (or would be) refused
EXIT_INTERRUPTED = 130  # 128 + SIGINT
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE: the reader of our output went away (`| head`)


class UsageError(Exception):
    """A usage mistake: one line, exit status 2."""

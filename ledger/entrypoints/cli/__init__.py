"""The ``obc-ledger`` command line."""

from ledger.entrypoints.cli.main import main

__all__ = ["main"]

"""The HTTP service and web view (``obc-ledger serve``): an entry point beside the CLI."""

from ledger.entrypoints.web.app import create_app

__all__ = ["create_app"]

"""obc-ledger: an event-sourced contract ledger for outcomes-based commissioning."""

__version__ = "0.1.0"

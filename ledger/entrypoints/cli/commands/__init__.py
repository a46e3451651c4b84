"""The ``obc-ledger`` commands, one module per area; each is loaded only when its command runs
(see ``ledger/entrypoints/cli/table.py``)."""

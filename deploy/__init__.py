"""How obc-ledger runs beyond one machine: compose/Kubernetes files, and a local cluster.

Not part of the installed package: run its modules from the repository root,
e.g. ``python -m deploy.local_cluster`` (see deploy/README.md).
"""

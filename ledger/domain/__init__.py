"""The domain: contract terms, records, payment rules and the aggregates that hold them.

Imports nothing from the use cases, the adapters, the entry points, ``projections`` or ``consumers``.
"""

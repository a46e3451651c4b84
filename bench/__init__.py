"""Benchmarks for obc-ledger. They print figures; they never assert timings.

    python -m bench.ingest        # ingest throughput, ceiling, memory
    python -m bench.close_year    # close_year and statement latency

See bench/README.md.
"""

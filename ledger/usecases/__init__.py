"""Use cases: what a commissioner, a provider, an auditor or an operator asks the ledger to do."""

"""The command-line words for a ledger error: the use cases speak of the domain, the CLI adds its flags."""

from __future__ import annotations

from ledger.domain.errors import LedgerError

HINTS: dict[str, str] = {
    "invalid_period": "pay --through PERIOD",
    "period_outside_term": "pay --through PERIOD",
    "year_closed": "`restate ID YEAR` recomputes a closed year; `contract vary ID FILE --restate` records "
    "a variation into closed years",
    "years_needed": "whatif ID --schedule-of-year Z --years A-B",
    "variation_needed": "whatif ID VARIATION.yaml, or whatif ID --schedule-of-year Z --years A-B",
    "years_reversed": "--years A-B with A <= B",
    "reason_needed": "dispute raise … --reason TEXT",
    "adjustment_not_upheld": "--adjust AMOUNT only with --upheld",
    "unknown_party": "--party P",
}


def hint(error: LedgerError) -> str | None:
    """The flags to look at for ``error``, or None."""
    return HINTS.get(error.code)


def with_hint(error: LedgerError) -> str:
    """The error's message with its hint, as the CLI prints it."""
    extra = hint(error)
    return error.message if extra is None else f"{error.message} ({extra})"

"""The contract definition: parsed and validated as a whole into immutable values.

Three parts, one idea each:

- :mod:`~ledger.domain.definition.types`: the value types (:class:`ContractDefinition`
  and the terms it holds), with the few questions they answer about themselves;
- :mod:`~ledger.domain.definition.reader`: :func:`parse_definition` takes the YAML
  document (as loaded by :mod:`ledger.adapters.yamlio`) and either returns a
  :class:`ContractDefinition` or raises :class:`~ledger.domain.errors.ValidationFailed`
  listing *every* problem with its path (e.g. ``indicators[2].scoring.full_at``). Nothing is
  registered when any is wrong;
- :mod:`~ledger.domain.definition.storage`: :func:`to_document` gives the canonical
  JSON-safe form that is stored in the ``Registered`` event, and ``from_stored`` turns it
  back into the reader's input; :func:`from_document` (in the reader) reads that form
  again into an equal definition.

Import from this package (``from ledger.domain.definition import X``), not the modules.
"""

from ledger.domain.definition.reader import _Reader, from_document, parse_definition
from ledger.domain.definition.storage import to_document
from ledger.domain.definition.types import (
    AGGREGATIONS,
    ID_PATTERN,
    KEY_PATTERN,
    MAX_TERM_YEARS,
    MAX_WHOLE,
    RULES,
    UNITS,
    Band,
    BudgetTerms,
    Capitation,
    ContractDefinition,
    HealthGainEntry,
    Indicator,
    Measure,
    Party,
    RateCard,
    RateOutcome,
    RiskShareTerms,
    ScheduleEntry,
    Scoring,
    Segment,
    Threshold,
    Tier,
    baseline_for,
    degenerate_sliding_scales,
)

__all__ = [
    "AGGREGATIONS",
    "ID_PATTERN",
    "KEY_PATTERN",
    "MAX_TERM_YEARS",
    "MAX_WHOLE",
    "RULES",
    "UNITS",
    "Band",
    "BudgetTerms",
    "Capitation",
    "ContractDefinition",
    "HealthGainEntry",
    "Indicator",
    "Measure",
    "Party",
    "RateCard",
    "RateOutcome",
    "RiskShareTerms",
    "ScheduleEntry",
    "Scoring",
    "Segment",
    "Threshold",
    "Tier",
    "_Reader",  # the variations reader (ledger/domain/variations.py) reuses its checks and messages
    "baseline_for",
    "degenerate_sliding_scales",
    "from_document",
    "parse_definition",
    "to_document",
]

"""The canonical stored form of a definition, both ways: the JSON-safe document kept in
the ``Registered`` event (:func:`to_document`), and that document made readable again
(:func:`from_stored`). :func:`ledger.domain.definition.reader.from_document` reads it back
into a definition equal to the one stored.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from decimal import Decimal
from typing import Any


def to_document(value: Any) -> Any:
    """JSON-safe copy: Decimal → text, date → ISO text, keys → text."""
    if isinstance(value, dict):
        return {str(k): to_document(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_document(v) for v in value]
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, date):
        return value.isoformat()
    return value


def from_stored(document: Mapping[str, Any]) -> dict[str, Any]:
    """The stored canonical form made readable again: ISO dates back to dates and the year
    keys of ``budget.historical_spend`` back to whole numbers (the reader's input form)."""
    doc = dict(document)
    contract = dict(doc.get("contract", {}))
    if isinstance(contract.get("start"), str):
        contract["start"] = date.fromisoformat(contract["start"])
    doc["contract"] = contract
    budget = doc.get("budget")
    if isinstance(budget, dict) and isinstance(budget.get("historical_spend"), dict):
        budget = dict(budget)
        budget["historical_spend"] = {
            int(k) if str(k).isdigit() else k: v for k, v in budget["historical_spend"].items()
        }
        doc["budget"] = budget
    return doc

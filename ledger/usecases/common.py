"""What every use case shares: the clock's format, bounded YAML documents, batching."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any, TypeVar

from ledger.adapters.yamlio import YamlRefused, load_yaml
from ledger.domain.errors import LedgerError
from ledger.domain.variations import InvalidVariation, Variation, parse_variation

T = TypeVar("T")
RETRIES = 8


def utc_now() -> datetime:
    return datetime.now(UTC)


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def document(text: str, what: str) -> Any:
    """A YAML document (contract or variation), bounded (ledger.adapters.yamlio); one-line errors, never a traceback."""
    try:
        return load_yaml(text)
    except YamlRefused as exc:
        raise LedgerError(f"the {what} file is refused: {exc}", code=exc.code) from None
    except Exception as exc:  # yaml.YAMLError and friends
        raise LedgerError(
            f"the {what} file is not valid YAML: {exc}".replace("\n", " "), code="invalid_yaml"
        ) from None


def variation_of(text: str, contract_id: str) -> Variation:
    """A variation document parsed and checked to be for ``contract_id``."""
    variation = parse_variation(document(text, "variation"))
    if variation.contract_id != contract_id:
        raise InvalidVariation(
            [
                (
                    "variation.contract_id",
                    f"{variation.contract_id!r} is not the contract being varied ({contract_id!r})",
                )
            ]
        )
    return variation


def batched(items: Iterable[T], size: int) -> Iterator[list[T]]:
    batch: list[T] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch

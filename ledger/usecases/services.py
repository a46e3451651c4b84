"""The use cases over one event store, wired together (``ledger.bootstrap`` builds them)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ledger.usecases.access import Access
from ledger.usecases.disputes import Disputes
from ledger.usecases.ingest import Ingest
from ledger.usecases.registration import Registration
from ledger.usecases.settlement import Settling

if TYPE_CHECKING:
    from ledger.usecases.application import Ledger


@dataclass(frozen=True)
class Services:
    store: Ledger
    access: Access
    registration: Registration
    ingest: Ingest
    settlement: Settling
    disputes: Disputes


def services_for(store: Ledger) -> Services:
    """Every use case over ``store`` (its clock is the store's, read at each decision)."""
    access = Access(store)
    settlement = Settling(store, access)
    return Services(
        store=store,
        access=access,
        registration=Registration(store, access, settlement),
        ingest=Ingest(store, access),
        settlement=settlement,
        disputes=Disputes(store, access, settlement),
    )

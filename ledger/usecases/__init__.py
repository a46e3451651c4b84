"""Use cases: the event store application (:class:`Ledger`) and one class per use case over it."""

from ledger.usecases.services import Services, services_for

__all__ = ["Services", "services_for"]

"""A record's provider signature on the wire: the Kafka header ``obc-signature``.

The consumer copies the header's value into the decoded record's ``signature`` field, so the
record passes the same signature check as a file's or an HTTP upload's
(ledger.usecases.signatures.check_signatures); other headers stay unread.
"""

from __future__ import annotations

from typing import Any

from ledger.domain.signatures import KAFKA_HEADER, SIGNATURE_FIELD
from ledger.usecases.signatures import signature_header


def with_signature(record: dict[str, Any], headers: Any) -> dict[str, Any]:
    """``record`` with the value of its message's first ``obc-signature`` header, if any."""
    for name, value in headers or ():
        if name == KAFKA_HEADER:
            text = signature_header(value)
            if text is not None:
                record[SIGNATURE_FIELD] = text
            break
    return record

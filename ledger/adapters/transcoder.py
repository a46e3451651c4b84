"""The event store's JSON transcoder with one encoder made once.

eventsourcing's ``JSONTranscoder.encode`` calls ``json.JSONEncoder.encode``, which builds a new C
encoder and a dict of the objects it has seen (the circular-reference check) for every event: a third
of an event's encoding time. :class:`LedgerTranscoder` makes the same C encoder once — the same
``default`` (the registered transcodings), separators and ``ensure_ascii=False`` — without the
circular check (an event's state is never circular), so the bytes are the library's own
(tests/unit/test_transcoder.py compares them on every kind of value an event holds). Decoding is the
library's, but for decimals: :class:`SharedDecimalAsStr` reads a small one back as one shared
object (``ledger.domain.numbers.shared_decimal``), as ingest makes them, so a year stream loaded
from its snapshot holds them once too.
"""

from __future__ import annotations

from json import encoder as json_encoder
from typing import Any

from eventsourcing.persistence import DecimalAsStr, JSONTranscoder

from ledger.domain.numbers import shared_decimal

_MAKE: Any = getattr(json_encoder, "c_make_encoder", None)  # (not in typeshed's json.encoder)


class LedgerTranscoder(JSONTranscoder):
    def __init__(self) -> None:
        super().__init__()
        self._chunks = (
            None
            if _MAKE is None  # an interpreter without the C encoder: the library's path
            else _MAKE(
                None, self._encode_obj, json_encoder.encode_basestring, None, ":", ",", False, False, True
            )
        )

    def encode(self, obj: Any) -> bytes:
        if self._chunks is None or type(obj) is not dict:
            return super().encode(obj)
        return "".join(self._chunks(obj, 0)).encode("utf8")


class SharedDecimalAsStr(DecimalAsStr):
    """The library's ``decimal_str`` transcoding (same name, same text); small values read back shared."""

    def decode(self, data: str) -> Any:
        return shared_decimal(data)

"""The grammar of every identifier the ledger stores: printable, bounded, shown safely.

Applied at every door (JSON lines, Avro, contract YAML, CLI arguments, Kafka headers),
so a read model never receives an id it cannot store and nothing printed can move a
terminal's cursor, hide text (zero-width characters) or reverse it (bidi overrides).
"""

from __future__ import annotations

import unicodedata

from ledger.domain.errors import InvalidCommand

# The widths the read models store (projections/schema.py): parties and contracts 64,
# record ids, indicator keys and case references 128.
PARTY_ID_LENGTH = 64
RECORD_ID_LENGTH = 128

_FORBIDDEN_CATEGORIES = {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"}


def id_problem(value: object, *, max_length: int = RECORD_ID_LENGTH) -> str | None:
    """Why ``value`` is not a valid id, or None when it is."""
    if not isinstance(value, str):
        return f"must be text (got {type(value).__name__})"
    if not value:
        return "must not be empty"
    if len(value) > max_length:
        return f"is {len(value):,} characters long (at most {max_length})"
    if value != value.strip():
        return f"must not start or end with white space (got {safe(value)})"
    if value.isascii() and value.isprintable():
        # Fast path, same verdict: the only ASCII characters of a forbidden category are the Cc
        # controls U+0000-U+001F and U+007F, exactly the ASCII characters str.isprintable() rejects,
        # and the only ASCII Zs is the space, which is allowed (tests/unit/test_grammar.py checks all 128).
        return None
    for position, char in enumerate(value, start=1):
        category = unicodedata.category(char)
        if category in _FORBIDDEN_CATEGORIES or (category == "Zs" and char != " "):
            kind = {
                "Cc": "a control character",
                "Cf": "a format (bidi or zero-width) character",
                "Cs": "a lone surrogate",
                "Co": "a private-use character",
                "Cn": "an unassigned character",
                "Zl": "a line separator",
                "Zp": "a paragraph separator",
            }.get(category, "an unusual space")
            return f"contains {kind} U+{ord(char):04X} at position {position} (got {safe(value)})"
    return None


def safe(text: object, limit: int = 60) -> str:
    """``text`` quoted for one line of output: non-printable characters escaped, long text cut."""
    shown = text if isinstance(text, str) else str(text)
    cut = len(shown) > limit
    body = repr(shown[:limit])
    return body + (f"… ({len(shown):,} characters)" if cut else "")


def printable(text: str) -> str:
    """``text`` with every non-printable character (controls, bidi, zero-width) escaped as \\uXXXX."""
    if text.isprintable():
        return text
    return "".join(
        c
        if c.isprintable() or c == " "
        else (
            f"\\x{ord(c):02x}"
            if ord(c) < 0x100
            else f"\\u{ord(c):04x}"
            if ord(c) < 0x10000
            else f"\\U{ord(c):08x}"
        )
        for c in text
    )


NOTE_LENGTH = 2000  # a note, reason or other free text recorded with an event


def text_problem(value: object, *, max_length: int = NOTE_LENGTH) -> str | None:
    """Why ``value`` is not acceptable free text (one line, printable, bounded), or None."""
    if not isinstance(value, str):
        return f"must be text (got {type(value).__name__})"
    if len(value) > max_length:
        return f"is {len(value):,} characters long (at most {max_length:,})"
    for position, char in enumerate(value, start=1):
        if not char.isprintable() and char != " ":
            return f"contains a non-printable character U+{ord(char):04X} at position {position}"
    return None


def check_note(value: object, name: str) -> None:
    """Raise an ``invalid_text`` error naming ``name`` unless ``value`` is acceptable free text."""
    problem = text_problem(value)
    if problem is not None:
        raise InvalidCommand(f"{name}: {problem}", code="invalid_text")

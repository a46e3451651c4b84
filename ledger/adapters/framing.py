"""Lines of a provider's file, framed from bytes: encoding and size judged per line.

A JSON-lines file is read as bytes, one line at a time, never more than the line
limit in memory. Each line is either text to parse or a refusal with its line number:
invalid UTF-8, a byte-order mark, a line longer than the limit. A refused line is kept
(the bytes as far as the limit, their length and sha256 in the message) and the rest of
the file goes on.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

from ledger.domain.records import Refusal

MAX_LINE_BYTES = 1024 * 1024  # default; `--max-line-bytes` / OBC_LEDGER_MAX_LINE_BYTES
_READ = 64 * 1024
BOM = b"\xef\xbb\xbf"


def max_line_bytes() -> int:
    value = os.environ.get("OBC_LEDGER_MAX_LINE_BYTES")
    return int(value) if value and value.isdigit() and int(value) > 0 else MAX_LINE_BYTES


@dataclass(frozen=True)
class Line:
    """One non-blank line (or spreadsheet row): ``text`` to parse, a decoded record ``obj``
    (CSV, xlsx), or ``refusal`` with the ``raw`` text kept; ``source`` overrides the
    session's (e.g. an xlsx file's sheet); ``blank`` marks an unfilled template row."""

    number: int
    text: str | None
    refusal: Refusal | None = None
    raw: str = ""
    obj: Any = None
    source: str | None = None
    blank: bool = False


def _refused(number: int, code: str, message: str, data: bytes, length: int, digest: str) -> Line:
    raw = data.decode("utf-8", errors="backslashreplace")
    return Line(number, None, Refusal(code, None, f"{message} ({length:,} bytes, sha256 {digest})"), raw)


def read_lines(stream: BinaryIO, limit: int | None = None) -> Iterator[Line]:
    """Frame ``stream``'s bytes into lines; blank lines are skipped, line numbers kept."""
    limit = limit or max_line_bytes()
    number = 0
    while True:
        data = stream.readline(limit + 1)
        if not data:
            return
        number += 1
        if len(data) > limit and not data.endswith(b"\n"):
            digest, length, first = hashlib.sha256(data), len(data), data[:limit]
            while not data.endswith(b"\n"):  # consume the rest of the line without keeping it
                data = stream.readline(_READ)
                if not data:
                    break
                body = data.rstrip(b"\r\n")  # the length and digest are the line's, not its ending's
                digest.update(body)
                length += len(body)
            yield _refused(
                number,
                "line_too_long",
                f"the line is longer than {limit:,} bytes; the first {limit:,} are kept",
                first,
                length,
                digest.hexdigest(),
            )
            continue
        body = data.rstrip(b"\r\n")
        if not body.strip():
            continue
        yield frame_bytes(number, body)


def frame_bytes(number: int, body: bytes) -> Line:
    """One line's bytes (no line ending) as a :class:`Line`."""
    if body.startswith(BOM):
        return _refused(
            number,
            "invalid_encoding",
            "the line starts with a UTF-8 byte-order mark (U+FEFF); save the file as UTF-8 without BOM",
            body,
            len(body),
            hashlib.sha256(body).hexdigest(),
        )
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        return _refused(
            number,
            "invalid_encoding",
            f"not valid UTF-8 at byte {exc.start + 1} (0x{body[exc.start]:02x})",
            body,
            len(body),
            hashlib.sha256(body).hexdigest(),
        )
    return Line(number, text)


def text_lines(lines: Iterable[str], limit: int | None = None) -> Iterator[Line]:
    """Lines already decoded (an API caller's strings) framed the same way."""
    limit = limit or max_line_bytes()
    for number, text in enumerate(lines, start=1):
        text = text.rstrip("\r\n")
        if not text.strip():
            continue
        body: bytes | None
        try:
            body = text.encode("utf-8")
        except UnicodeEncodeError:
            body = text.encode("utf-8", errors="surrogateescape") if _escaped(text) else None
            if body is None:
                raw = text.encode("utf-8", errors="backslashreplace")
                yield _refused(
                    number,
                    "invalid_encoding",
                    "the line contains a lone surrogate: not valid Unicode",
                    raw,
                    len(raw),
                    hashlib.sha256(raw).hexdigest(),
                )
                continue
        if len(body) > limit:
            yield _refused(
                number,
                "line_too_long",
                f"the line is longer than {limit:,} bytes; the first {limit:,} are kept",
                body[:limit],
                len(body),
                hashlib.sha256(body).hexdigest(),
            )
            continue
        yield frame_bytes(number, body)


def _escaped(text: str) -> bool:
    """True when every surrogate in ``text`` is a byte smuggled in by ``surrogateescape``."""
    return all(not 0xD800 <= ord(c) <= 0xDFFF or 0xDC80 <= ord(c) <= 0xDCFF for c in text)

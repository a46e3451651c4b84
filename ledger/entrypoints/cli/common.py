"""Small helpers the command modules share: printing data or text, files, argument types."""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from ledger.adapters.yamlio import MAX_YAML_BYTES
from ledger.domain.errors import InvalidCommand, LedgerError


def emit(args: argparse.Namespace, data: Any, text: Callable[[], str]) -> None:
    """``data`` as JSON with --json, else ``text()``."""
    if getattr(args, "json", False):
        print(json.dumps(data, indent=2))
    else:
        print(text())


def to_stderr(args: argparse.Namespace, data: dict[str, Any], lines: list[str]) -> None:
    """A failure report on stderr: ``data`` as JSON with --json, else ``lines``."""
    if getattr(args, "json", False):
        print(json.dumps(data), file=sys.stderr)
    else:
        for line in lines:
            print(line, file=sys.stderr)


def examples(p: argparse.ArgumentParser, *lines: str) -> None:
    """An ``examples:`` epilog under a command's help."""
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.epilog = "examples:\n" + "\n".join(f"  {line}" for line in lines)


def utc(stamp: Any) -> Any:
    """ISO-8601 UTC with a ``Z``, as every timestamp the CLI prints."""
    if not isinstance(stamp, str):
        return stamp
    return re.sub(r"\.\d+(?=Z$)", "", stamp.replace("+00:00", "Z"))  # to the second, as decisions are


def read_document(path: Path) -> str:
    """A YAML document's text: at most MAX_YAML_BYTES read (a huge file is refused, not parsed), UTF-8."""
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_YAML_BYTES + 1)
    except OSError as exc:
        raise LedgerError(f"cannot read {path}: {exc.strerror}", code="file_not_found") from None
    if len(data) > MAX_YAML_BYTES:
        raise LedgerError(
            f"{path} is larger than {MAX_YAML_BYTES:,} bytes; a contract document is far smaller",
            code="document_too_large",
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise LedgerError(
            f"{path} is not valid UTF-8 at byte {exc.start + 1} (0x{data[exc.start]:02x})",
            code="invalid_encoding",
        ) from None


def yaml_text(document: Any) -> str:
    return yaml.safe_dump(document, sort_keys=False, allow_unicode=True).rstrip("\n")


def _positive_int(text: str) -> int:
    if not (text.isascii() and text.isdigit()) or len(text) > 12 or int(text) == 0:
        raise argparse.ArgumentTypeError(f"must be a whole number from 1 to 999999999999 (got {text[:20]!r})")
    return int(text)


positive_int = _positive_int


def year_range(text: str | None) -> tuple[int, int] | None:
    if text is None:
        return None
    first, sep, last = text.partition("-")
    try:
        return (int(first), int(last)) if sep else (int(first), int(first))
    except ValueError:
        raise InvalidCommand(f"--years {text!r}: give A-B (e.g. 1-2) or one year") from None

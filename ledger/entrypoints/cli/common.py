"""Small helpers the command modules share: printing data or text, files, argument types."""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
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


@contextmanager
def output_file(
    path: str | Path, *, source: str | Path | None = None, newline: str | None = None
) -> Iterator[Any]:
    """A text file written whole or not at all: into a temporary file beside ``path``, renamed over it
    only when the block ends without an error (a failure leaves ``path`` as it was; a link at ``path``
    is replaced, not followed). ``path`` naming the very file ``source`` is refused (``same_file``):
    writing it would empty the input before it is read."""
    target = Path(path)
    if source is not None and str(source) != "-" and target.exists():
        try:
            same = os.path.samefile(source, target)
        except OSError:
            same = False
        if same:
            raise LedgerError(
                f"--out {target} is the input file itself; write to another file", code="same_file"
            )
    try:
        fd, temporary = tempfile.mkstemp(
            dir=target.parent or Path("."), prefix=f".{target.name}.", suffix=".tmp"
        )
    except OSError as exc:
        raise LedgerError(f"cannot write {target}: {exc.strerror}", code="cannot_write") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline=newline) as handle:
            yield handle
        os.chmod(temporary, 0o666 & ~_umask())
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


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

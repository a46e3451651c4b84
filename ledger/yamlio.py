"""YAML reading with numbers taken from their text: YAML floats become Decimal, never float."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

import yaml


class DecimalSafeLoader(yaml.SafeLoader):
    """SafeLoader whose floats are :class:`~decimal.Decimal` built from the source text."""


def _construct_decimal(loader: yaml.SafeLoader, node: yaml.Node) -> Decimal | str:
    text = loader.construct_scalar(node).replace("_", "")  # type: ignore[arg-type]
    lowered = text.lower().lstrip("+-")
    if lowered in (".inf", ".nan"):
        return text  # left as text so validation names it as not a number
    try:
        return Decimal(text)
    except InvalidOperation:
        return text


DecimalSafeLoader.add_constructor("tag:yaml.org,2002:float", _construct_decimal)


def load_yaml(text: str) -> Any:
    return yaml.load(text, Loader=DecimalSafeLoader)  # noqa: S506 - SafeLoader subclass

"""Reading the demo contract definitions shipped in this package.

YAML floats are read as :class:`~decimal.Decimal` from their source text, never
through ``float``; quoted numbers stay strings, as the contract format allows.
"""

from __future__ import annotations

from decimal import Decimal
from importlib import resources
from typing import Any

import yaml

DEMO_CONTRACTS = ("oxon-mh", "cheshire-amh")


class DecimalLoader(yaml.SafeLoader):
    """A SafeLoader whose floats are Decimal built from the text (``1_000.5`` → 1000.5)."""


def _construct_decimal(loader: yaml.SafeLoader, node: yaml.Node) -> Decimal:
    text = str(loader.construct_scalar(node)).replace("_", "").strip()  # type: ignore[arg-type]
    sign = -1 if text.startswith("-") else 1
    body = text.lstrip("+-").lower()
    if body == ".inf":
        return Decimal("Infinity") * sign
    if body == ".nan":
        return Decimal("NaN")
    if ":" in body:  # YAML 1.1 sexagesimal, e.g. 190:20:30.15
        total = Decimal(0)
        for part in body.split(":"):
            total = total * 60 + Decimal(part)
        return total * sign
    return Decimal(text)


DecimalLoader.add_constructor("tag:yaml.org,2002:float", _construct_decimal)


def load_yaml(text: str) -> Any:
    return yaml.load(text, Loader=DecimalLoader)  # noqa: S506 - a SafeLoader subclass


def load_definition(name: str) -> dict:
    """The demo contract ``name`` (``oxon-mh`` or ``cheshire-amh``) as a plain document."""
    filename = name if name.endswith(".yaml") else f"{name}.yaml"
    text = resources.files("ledger.demo").joinpath(filename).read_text(encoding="utf-8")
    document = load_yaml(text)
    if not isinstance(document, dict):
        raise ValueError(f"{filename} is not a contract definition (a YAML mapping)")
    return document

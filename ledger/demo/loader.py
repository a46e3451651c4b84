"""Reading the demo contract definitions shipped in this package.

YAML floats are read as :class:`~decimal.Decimal` from their source text, never
through ``float``; quoted numbers stay strings, as the contract format allows.
"""

from __future__ import annotations

from importlib import resources

from ledger.adapters.yamlio import load_yaml

DEMO_CONTRACTS = ("oxon-mh", "cheshire-amh")


def load_definition(name: str) -> dict:
    """The demo contract ``name`` (``oxon-mh`` or ``cheshire-amh``) as a plain document."""
    filename = name if name.endswith(".yaml") else f"{name}.yaml"
    text = resources.files("ledger.demo").joinpath(filename).read_text(encoding="utf-8")
    document = load_yaml(text)
    if not isinstance(document, dict):
        raise ValueError(f"{filename} is not a contract definition (a YAML mapping)")
    return document

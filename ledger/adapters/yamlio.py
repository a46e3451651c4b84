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


MAX_YAML_BYTES = 1024 * 1024  # a contract or variation document
MAX_YAML_NODES = 100_000  # nodes once aliases are expanded (an "alias bomb" expands to billions)
MAX_YAML_DEPTH = 64


class YamlRefused(ValueError):
    """A document refused before it is built: too large, too deep, or aliases expanding too far."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def load_yaml(text: str, *, max_bytes: int = MAX_YAML_BYTES, max_nodes: int = MAX_YAML_NODES) -> Any:
    """One YAML document with floats as Decimal; bounded in size, depth and alias expansion.

    The node graph is composed first (aliases are references, so this is small) and its
    expanded size counted with memoisation before any Python object is built.
    """
    size = len(text.encode("utf-8", errors="surrogatepass"))
    if size > max_bytes:
        raise YamlRefused("document_too_large", f"the document is {size:,} bytes (at most {max_bytes:,})")
    loader = DecimalSafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_expansion(node, max_nodes)
        return loader.construct_document(node)
    finally:
        loader.dispose()


def _check_expansion(root: yaml.Node, max_nodes: int) -> None:
    sizes: dict[int, int] = {}
    aliases = 0

    def count(node: yaml.Node, depth: int) -> int:
        nonlocal aliases
        if depth > MAX_YAML_DEPTH:
            raise YamlRefused("document_too_deep", f"the document nests deeper than {MAX_YAML_DEPTH} levels")
        known = sizes.get(id(node))
        if known is not None:  # a node seen before is an alias (or a shared anchor): expanded again
            aliases += 1
            return known
        total = 1
        if isinstance(node, yaml.SequenceNode):
            total += sum(count(child, depth + 1) for child in node.value)
        elif isinstance(node, yaml.MappingNode):
            total += sum(count(k, depth + 1) + count(v, depth + 1) for k, v in node.value)
        if total > max_nodes:
            raise YamlRefused(
                "alias_limit" if aliases else "document_too_large",
                f"the document expands to more than {max_nodes:,} nodes"
                + (" through its aliases (&anchor / *alias)" if aliases else ""),
            )
        sizes[id(node)] = total
        return total

    count(root, 0)

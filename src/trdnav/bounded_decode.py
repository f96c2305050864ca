"""Decoding untrusted YAML and JSON with bounds: nesting depth, alias expansion, duplicate keys.

``yaml.safe_load`` and ``json.loads`` accept input that is valid but hostile: ten thousand nested
brackets (a ``RecursionError`` deep in the parser), a "billion laughs" of YAML aliases (a small
file that expands to 10⁹ nodes for whatever walks it), a number of 5,000 digits (Python refuses to
convert it with a ``ValueError``), or a key given twice (the second silently wins: in a clinical
record that hides data). Each is a :class:`DecodeRefused` here, with a message a person can act
on; the callers turn it into their own error with the file or field.
"""

from __future__ import annotations

import json
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

MAX_DEPTH = 64  # a history is ~5 levels deep; a FHIR Bundle ~12
MAX_NODES = 1_000_000  # after alias expansion: ~100× the largest real export


class DecodeRefused(ValueError):
    """Valid syntax refused for its shape; ``str()`` says why."""


def _too_deep() -> DecodeRefused:
    return DecodeRefused(f"nested more than {MAX_DEPTH} levels deep")


class _BoundedLoader(yaml.SafeLoader):
    """SafeLoader that bounds depth and expanded size and refuses duplicate keys."""

    _depth = 0

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        self._depth += 1
        if self._depth > MAX_DEPTH:
            raise _too_deep()
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def get_single_data(self) -> Any:
        node = self.get_single_node()
        if node is None:
            return None
        _check_expansion(node)
        return self.construct_document(node)


def _check_expansion(root: Node) -> None:
    """Refuse a recursive alias or an expansion above :data:`MAX_NODES` (memoised: O(nodes))."""
    sizes: dict[int, int] = {}
    open_: set[int] = set()

    def size(node: Node, depth: int) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in open_:
            raise DecodeRefused("a YAML alias refers to the node that contains it")
        if depth > MAX_DEPTH:
            raise _too_deep()
        open_.add(key)
        total = 1
        if isinstance(node, SequenceNode):
            total += sum(size(child, depth + 1) for child in node.value)
        elif isinstance(node, MappingNode):
            seen: set[str] = set()
            for k, v in node.value:
                if isinstance(k, ScalarNode):
                    if k.value in seen:
                        line = k.start_mark.line + 1
                        raise DecodeRefused(f"the key {k.value!r} is given twice (line {line})")
                    seen.add(k.value)
                total += size(k, depth + 1) + size(v, depth + 1)
        open_.discard(key)
        if total > MAX_NODES:
            raise DecodeRefused(
                f"YAML aliases expand to more than {MAX_NODES:,} values (an alias bomb?)"
            )
        sizes[key] = total
        return total

    size(root, 0)


def load_yaml(text: str) -> Any:
    """``yaml.safe_load`` with the bounds above.

    Raises ``yaml.YAMLError`` (syntax) or :class:`DecodeRefused` (shape).
    """
    try:
        return yaml.load(text, Loader=_BoundedLoader)  # noqa: S506 - a SafeLoader subclass
    except RecursionError:
        raise _too_deep() from None
    except ValueError as exc:
        if isinstance(exc, DecodeRefused):
            raise
        raise _unreadable(exc) from None


def _check_depth(data: Any) -> None:
    stack: list[tuple[Any, int]] = [(data, 0)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise _too_deep()
        if isinstance(value, dict):
            stack.extend((v, depth + 1) for v in value.values())
        elif isinstance(value, list):
            stack.extend((v, depth + 1) for v in value)


def _unreadable(exc: ValueError) -> DecodeRefused:
    if "digits" in str(exc):  # Python's limit on int("9" * 5000)
        return DecodeRefused("a number has more than 4,300 digits")
    return DecodeRefused(f"a value cannot be read: {exc}")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise DecodeRefused(f"the key {k!r} is given twice")
        out[k] = v
    return out


def load_json(text: str) -> Any:
    """``json.loads`` with the bounds above.

    Raises ``json.JSONDecodeError`` (syntax) or :class:`DecodeRefused` (shape).
    """
    try:
        data = json.loads(text, object_pairs_hook=_no_duplicates)
    except RecursionError:
        raise _too_deep() from None
    except json.JSONDecodeError:
        raise
    except ValueError as exc:
        if isinstance(exc, DecodeRefused):
            raise
        raise _unreadable(exc) from None
    _check_depth(data)
    return data

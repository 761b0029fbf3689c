"""Stripe's form encoding (``metadata[key]=v``, ``line_items[0][quantity]=1``) read back into JSON-like data."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl

__all__ = ["decode_form"]

_KEY = re.compile(r"([^\[\]]+)|\[([^\[\]]*)\]")


def decode_form(text: str) -> dict[str, Any]:
    """``a[b][0][c]=1`` as ``{"a": {"b": [{"c": "1"}]}}``; values stay strings (as Stripe receives them)."""
    root: dict[str, Any] = {}
    for raw_key, value in parse_qsl(text, keep_blank_values=True):
        *path, last = [first or second for first, second in _KEY.findall(raw_key)] or [raw_key]
        node = root
        for part in path:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):  # a key given both as a value and as an object: the object wins
                child = node[part] = {}
            node = child
        node[last] = value
    decoded: dict[str, Any] = _lists(root)
    return decoded


def _lists(node: Any) -> Any:
    """Objects whose keys are all ``0``, ``1``... as lists, in index order."""
    if not isinstance(node, dict):
        return node
    converted = {key: _lists(value) for key, value in node.items()}
    if converted and all(key.isdigit() for key in converted):
        return [converted[key] for key in sorted(converted, key=int)]
    return converted

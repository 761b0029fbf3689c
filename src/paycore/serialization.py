"""One ``cattrs`` converter for paycore's records, and the JSON wire format it gives.

Money is ``{"minor_units": 1250, "currency": "EUR"}``; datetimes are ISO 8601
strings with their offset; enums are their values; mappings and tuples become
dicts and lists. Adapters that store records as JSON and the idempotency stores
(which keep results as JSON) use :data:`converter`, so a record survives any
round trip exactly.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from types import MappingProxyType
from typing import Any, TypeVar

import cattrs

from paycore.money import Money

__all__ = ["converter", "dumps", "loads", "structure", "unstructure"]

T = TypeVar("T")

converter = cattrs.Converter()
"""The converter for every paycore record (``Payment``, ``Refund``, ``PaymentEvent``...)."""

converter.register_unstructure_hook(Money, lambda money: {"minor_units": money.minor_units, "currency": money.currency})
converter.register_structure_hook(
    Money, lambda data, _: data if isinstance(data, Money) else Money(data["minor_units"], data["currency"])
)
converter.register_unstructure_hook(datetime, lambda value: value.isoformat())
converter.register_structure_hook(
    datetime, lambda value, _: value if isinstance(value, datetime) else datetime.fromisoformat(value)
)
converter.register_unstructure_hook(MappingProxyType, lambda value: {k: value[k] for k in value})
converter.register_structure_hook_func(lambda cls: cls == Mapping[str, Any], lambda value, _: dict(value))


def unstructure(record: Any) -> Any:
    """A record as plain JSON-ready data."""
    return converter.unstructure(record)


def structure(data: Any, cls: type[T]) -> T:
    """Plain data back into a ``cls`` record."""
    return converter.structure(data, cls)


def dumps(record: Any) -> str:
    """A record as compact JSON text."""
    return json.dumps(converter.unstructure(record), separators=(",", ":"), sort_keys=True)


def loads(text: str | bytes, cls: type[T]) -> T:
    """JSON text back into a ``cls`` record."""
    return converter.structure(json.loads(text), cls)

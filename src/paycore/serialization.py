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
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Any, Final, TypeVar

import cattrs
import cattrs.gen

from paycore.calls import CallState, ProviderCall
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

_LEGACY_CALL_LEASE: Final = timedelta(seconds=120)
"""The lease a provider call stored before calls had ids is read with (the old default lease)."""

_structure_call = cattrs.gen.make_dict_structure_fn(ProviderCall, converter)


def _structure_provider_call(data: Any, _: Any) -> ProviderCall:
    """A stored provider call; one written before calls had an identity is read as a legacy call."""
    if isinstance(data, ProviderCall):
        return data
    if "id" not in data:
        started = converter.structure(data["started_at"], datetime)
        data = {
            "id": "call_legacy",
            "operation": data["operation"],
            "started_at": data["started_at"],
            "lease_until": (started + _LEGACY_CALL_LEASE).isoformat(),
            "amount": data.get("amount"),
            "refund_id": data.get("refund_id"),
            "state": CallState.UNKNOWN.value if data.get("unknown") else CallState.SUBMITTING.value,
        }
    return _structure_call(data, ProviderCall)


converter.register_structure_hook(ProviderCall, _structure_provider_call)


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

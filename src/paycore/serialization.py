"""One ``cattrs`` converter for paycore's records, and the JSON wire format it gives.

Money is ``{"minor_units": 1250, "currency": "EUR"}``; datetimes are ISO 8601
strings with their offset; enums are their values; mappings and tuples become
dicts and lists, and the frozen JSON documents records keep (:mod:`paycore.frozen`)
plain dicts and lists again (a ``Mapping[str, Any]`` is read back frozen).
Adapters that store records as JSON and the idempotency stores (which keep
results as JSON) use :data:`converter`, so a record survives any
round trip exactly. The converter is built when first used, so importing
paycore does not import ``cattrs``.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final, TypeVar

from paycore.calls import CallState, ProviderCall
from paycore.frozen import FrozenDict, FrozenList, freeze_object, thaw
from paycore.money import Money

if TYPE_CHECKING:
    import cattrs

__all__ = ["converter", "dumps", "loads", "structure", "unstructure", "unstructure_compact"]

T = TypeVar("T")

converter: cattrs.Converter
"""The converter for every paycore record (``Payment``, ``Refund``, ``PaymentEvent``...)."""

_LEGACY_CALL_LEASE: Final = timedelta(seconds=120)
"""The lease a provider call stored before calls had ids is read with (the old default lease)."""


@functools.cache
def _converters() -> tuple[cattrs.Converter, cattrs.Converter]:
    """The converter, and a copy that leaves out fields holding their default; built once."""
    import cattrs
    import cattrs.gen

    built = cattrs.Converter()
    built.register_unstructure_hook(Money, lambda money: {"minor_units": money.minor_units, "currency": money.currency})
    built.register_structure_hook(
        Money, lambda data, _: data if isinstance(data, Money) else Money(data["minor_units"], data["currency"])
    )
    built.register_unstructure_hook(datetime, lambda value: value.isoformat())
    built.register_structure_hook(
        datetime, lambda value, _: value if isinstance(value, datetime) else datetime.fromisoformat(value)
    )
    built.register_unstructure_hook(MappingProxyType, lambda value: {k: value[k] for k in value})
    built.register_unstructure_hook(FrozenDict, thaw)
    built.register_unstructure_hook(FrozenList, thaw)
    # A field declared Mapping[str, Any]: thawed whole, as cattrs before 24 does not unstructure Any by its class.
    built.register_unstructure_hook_func(lambda cls: cls == Mapping[str, Any], lambda value: thaw(dict(value)))
    built.register_structure_hook_func(lambda cls: cls == Mapping[str, Any], lambda value, _: freeze_object(value))
    structure_call = cattrs.gen.make_dict_structure_fn(ProviderCall, built)

    def structure_provider_call(data: Any, _: Any) -> ProviderCall:
        """A stored provider call; one written before calls had an identity is read as a legacy call."""
        if isinstance(data, ProviderCall):
            return data
        if "id" not in data:
            started = built.structure(data["started_at"], datetime)
            data = {
                "id": "call_legacy",
                "operation": data["operation"],
                "started_at": data["started_at"],
                "lease_until": (started + _LEGACY_CALL_LEASE).isoformat(),
                "amount": data.get("amount"),
                "refund_id": data.get("refund_id"),
                "state": CallState.UNKNOWN.value if data.get("unknown") else CallState.SUBMITTING.value,
            }
        return structure_call(data, ProviderCall)

    built.register_structure_hook(ProviderCall, structure_provider_call)
    return built, built.copy(omit_if_default=True)


def __getattr__(name: str) -> Any:
    if name == "converter":
        return _converters()[0]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def unstructure(record: Any) -> Any:
    """A record as plain JSON-ready data."""
    return _converters()[0].unstructure(record)


def unstructure_compact(record: Any) -> Any:
    """A record as plain data without the fields that hold their default; :func:`structure` restores them.

    The idempotency runner keeps results this way: a stored result is a third smaller.
    """
    return _converters()[1].unstructure(record)


def structure(data: Any, cls: type[T]) -> T:
    """Plain data back into a ``cls`` record."""
    return _converters()[0].structure(data, cls)


def dumps(record: Any) -> str:
    """A record as compact JSON text."""
    return json.dumps(unstructure(record), separators=(",", ":"), sort_keys=True)


def loads(text: str | bytes, cls: type[T]) -> T:
    """JSON text back into a ``cls`` record."""
    return structure(json.loads(text), cls)

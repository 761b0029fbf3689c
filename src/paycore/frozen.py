"""Immutable JSON values: what a record keeps of a caller's or a provider's JSON document.

A payment's ``metadata`` and ``provider_state``, a refund's ``metadata`` and a
next action's ``fields`` are JSON documents. Records are shared (the memory
stores keep and return the very objects, a replay returns the first result), so
each document is frozen all the way down when a record is built: an object
becomes a :class:`FrozenDict`, an array (a ``list`` or a ``tuple``) a
:class:`FrozenList`, and strings, numbers, booleans and ``None`` stay as they
are. :func:`freeze` does it; :func:`thaw` gives back plain dicts and lists.

Both types equal the plain values they were made of, either way round
(``FrozenDict({"tags": ["vip"]}) == {"tags": ["vip"]}`` and
``["vip"] == FrozenList(["vip"])``), so a document reads and compares as the
JSON a store loads back. Both hash (consistently with their equality), pickle,
copy and deep-copy (as themselves: there is nothing to copy), and ``json``
writes them as objects and arrays. Every change is refused with a
``TypeError`` (``FrozenDict``) or an ``AttributeError`` (``FrozenList``, a
``tuple``, has no method that changes it); ``dict(value)``, ``value.copy()``
and ``list(value)`` give a changeable shallow copy.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final, NoReturn

__all__ = ["EMPTY", "FrozenDict", "FrozenList", "freeze", "freeze_object", "thaw"]


def _refused(value: object) -> NoReturn:
    raise TypeError(f"a {type(value).__name__} is read-only: copy it (dict(value)) to change the copy")


class FrozenDict(dict[str, Any]):
    """A JSON object that cannot change: a ``dict`` whose values are frozen too (see :func:`freeze`).

    Built like a ``dict`` (``FrozenDict({"a": [1]})``, ``FrozenDict(a=1)``); it
    equals a ``dict`` with equal items, and hashes by its items.
    """

    __slots__ = ()

    def __new__(cls, *args: Any, **kwargs: Any) -> FrozenDict:
        """A frozen copy of ``dict(*args, **kwargs)``, its values frozen by :func:`freeze`."""
        built = dict.__new__(cls)
        _fill(built, {key: freeze(value) for key, value in dict(*args, **kwargs).items()})
        return built

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        """Filled by ``__new__``: calling ``__init__`` again changes nothing."""

    def __hash__(self) -> int:  # type: ignore[override]  # dict sets __hash__ to None
        return hash(frozenset(self.items()))

    def __reduce__(self) -> tuple[Any, ...]:
        return _rebuilt_dict, (dict(self),)

    def __copy__(self) -> FrozenDict:
        return self

    def __deepcopy__(self, memo: object) -> FrozenDict:
        return self

    @classmethod
    def fromkeys(cls, keys: Iterable[str], value: Any = None) -> FrozenDict:  # type: ignore[override]
        """A frozen object mapping each of ``keys`` to ``value``."""
        return cls(dict.fromkeys(keys, value))

    def __setitem__(self, key: str, value: Any) -> NoReturn:
        _refused(self)

    def __delitem__(self, key: str) -> NoReturn:
        _refused(self)

    def __ior__(self, other: Any) -> NoReturn:  # type: ignore[misc]
        _refused(self)

    def clear(self) -> NoReturn:
        """Refused: a ``FrozenDict`` cannot change (``TypeError``)."""
        _refused(self)

    def pop(self, *args: Any) -> NoReturn:
        """Refused: a ``FrozenDict`` cannot change (``TypeError``)."""
        _refused(self)

    def popitem(self) -> NoReturn:
        """Refused: a ``FrozenDict`` cannot change (``TypeError``)."""
        _refused(self)

    def setdefault(self, *args: Any) -> NoReturn:
        """Refused: a ``FrozenDict`` cannot change (``TypeError``)."""
        _refused(self)

    def update(self, *args: Any, **kwargs: Any) -> NoReturn:
        """Refused: a ``FrozenDict`` cannot change (``TypeError``)."""
        _refused(self)


_fill: Final = dict.update
"""``dict.update`` itself, which fills a ``FrozenDict`` as it is built (its own ``update`` refuses)."""


class FrozenList(tuple[Any, ...]):
    """A JSON array that cannot change: a ``tuple`` whose items are frozen too (see :func:`freeze`).

    It equals a ``list`` (and a ``tuple``) with equal items, either way round,
    hashes as a ``tuple``, and shows as a list.
    """

    __slots__ = ()

    def __new__(cls, items: Iterable[Any] = ()) -> FrozenList:
        """A frozen array of ``items``, each frozen by :func:`freeze`."""
        return tuple.__new__(cls, [freeze(item) for item in items])

    def __eq__(self, other: object) -> bool:
        if isinstance(other, list):
            other = tuple(other)
        return tuple.__eq__(self, other)

    def __ne__(self, other: object) -> bool:
        equal = self.__eq__(other)
        return equal if equal is NotImplemented else not equal

    __hash__ = tuple.__hash__

    def __copy__(self) -> FrozenList:
        return self

    def __deepcopy__(self, memo: object) -> FrozenList:
        return self

    def __repr__(self) -> str:
        return repr(list(self))


def _rebuilt_dict(items: dict[str, Any]) -> FrozenDict:
    """A pickled :class:`FrozenDict` read back (an empty one is :data:`EMPTY`)."""
    return FrozenDict(items) if items else EMPTY


EMPTY: Final = FrozenDict()
"""The empty frozen object, shared by every record that keeps no document."""


def freeze(value: Any) -> Any:
    """``value`` frozen all the way down: a mapping as a :class:`FrozenDict`, a ``list`` or ``tuple`` as a
    :class:`FrozenList`, anything else (a string, a number, ``None``) as it is. Frozen values are returned as
    they are, not copied."""
    kind = type(value)
    if kind is str or kind is FrozenDict or kind is FrozenList or kind is int or value is None:
        return value
    if isinstance(value, Mapping):
        return FrozenDict(value) if value else EMPTY
    if isinstance(value, list | tuple):
        return FrozenList(value)
    return value


def freeze_object(value: Mapping[str, Any] | None) -> FrozenDict:
    """``value`` (``None``: empty) as a :class:`FrozenDict`: itself if it is one, :data:`EMPTY` if empty."""
    if type(value) is FrozenDict:
        return value
    return FrozenDict(value) if value else EMPTY


def thaw(value: Any) -> Any:
    """A frozen value as plain JSON data again: :class:`FrozenDict` as ``dict``, :class:`FrozenList` as
    ``list``, all the way down (a plain ``dict`` or ``list`` is thawed too)."""
    if isinstance(value, dict):
        return {key: thaw(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [thaw(item) for item in value]
    return value

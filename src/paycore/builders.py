"""Records built without ``__init__``: compiled constructors for paycore's hot, frozen records.

A frozen attrs class sets each field through a call (its ``__setattr__`` refuses
plain stores), and runs its defaults and factories. Where a record is built on
every operation and has nothing to check (no converter, validator or post-init
to run), :func:`compile_builder` gives a constructor that fills in a plain
slotted draft and turns it into the record, its fields given by keyword;
:func:`compile_replace` does what ``attrs.evolve`` does, as straight-line code.
A record built either way equals the one its class would build.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import attrs

__all__ = ["compile_builder", "compile_replace"]

R = TypeVar("R", bound=attrs.AttrsInstance)
T = TypeVar("T", bound=attrs.AttrsInstance)


def _draft(cls: type) -> type | None:
    """A plain class with the slots of ``cls`` (a frozen slotted attrs class), in which a record is filled in.

    Filling its slots are plain attribute stores (a frozen class's setter is a call
    each); the draft then becomes a ``cls`` by ``__class__`` assignment, which Python
    allows only between classes of one layout. ``None`` where this Python refuses it
    (before 3.12, for classes with a ``__weakref__`` slot, as attrs makes them).
    """
    slots = cls.__dict__["__slots__"]
    assert cls.__bases__ == (object,), f"{cls.__name__} must derive from object alone"
    assert "__dict__" not in slots, f"{cls.__name__} must have no __dict__"
    draft = type(f"_{cls.__name__}Draft", (), {"__slots__": slots})
    probe: Any = object.__new__(draft)
    try:
        probe.__class__ = cls
    except TypeError:
        return None
    return draft


def _compile(cls: type, name: str, parameters: str, values: dict[str, str], namespace: dict[str, Any]) -> Any:
    """``def name(parameters)`` building a ``cls`` whose field ``f`` is the expression ``values[f]``."""
    fields = attrs.fields(cls)
    assert all(f.init and f.validator is None for f in fields), f"a {cls.__name__} field has a validator to run"
    assert not hasattr(cls, "__attrs_post_init__"), f"{cls.__name__} has a post-init to run"
    assert set(values) == {f.name for f in fields}
    assert "built_" not in values
    draft = _draft(cls)
    namespace.update(_new=object.__new__, _draft=draft, _cls=cls)
    lines = [f"def {name}({parameters}):", f"    built_ = _new({'_cls' if draft is None else '_draft'})"]
    for field, value in values.items():
        if draft is None:  # each field through its slot's setter (which a frozen class's __setattr__ cannot block)
            namespace[f"_set_{field}"] = cls.__dict__[field].__set__
            lines.append(f"    _set_{field}(built_, {value})")
        else:
            lines.append(f"    built_.{field} = {value}")
    lines += ["    return built_"] if draft is None else ["    built_.__class__ = _cls", "    return built_"]
    exec("\n".join(lines), namespace)
    return namespace[name]


def compile_builder(cls: type[T]) -> Callable[..., T]:
    """A constructor of ``cls`` taking its fields by keyword, without running ``__init__``.

    Only for a frozen slotted attrs class whose fields have no converter, no
    validator and no post-init to run: the record built equals ``cls(**fields)``.
    A field with a plain default may be left out and gets that default; one whose
    default is worked out (a factory, a method) must be given.
    """
    fields = attrs.fields(cls)
    assert not any(f.converter for f in fields), f"a {cls.__name__} field has a converter to run"
    namespace: dict[str, Any] = {}
    parameters = []
    for f in fields:
        # attrs.Factory is a class, which its stubs type as a function.
        if f.default is attrs.NOTHING or isinstance(f.default, attrs.Factory):  # type: ignore[arg-type]
            parameters.append(f.name)
        else:
            namespace[f"_default_{f.name}"] = f.default
            parameters.append(f"{f.name}=_default_{f.name}")
    names = [f.name for f in fields]
    build: Callable[..., T] = _compile(cls, "build", "*, " + ", ".join(parameters), {n: n for n in names}, namespace)
    return build


def compile_replace(cls: type[R]) -> Callable[[R, dict[str, Any]], R]:
    """``attrs.evolve`` for ``cls``, as straight-line code over its fields (no loop, no per-field lookups).

    The unchanged fields are shared, and only a changed field with a converter
    is converted: a stored record's fields are valid already, and running
    ``__init__`` again would only copy its read-only mappings once more.
    """
    namespace: dict[str, Any] = {}
    values: dict[str, str] = {}
    for f in attrs.fields(cls):
        changed = f"changes[{f.name!r}]"
        if callable(f.converter):
            namespace[f"_convert_{f.name}"] = f.converter
            changed = f"_convert_{f.name}({changed})"
        values[f.name] = f"{changed} if {f.name!r} in changes else record.{f.name}"
    replace: Callable[[R, dict[str, Any]], R] = _compile(cls, "replace", "record, changes", values, namespace)
    return replace

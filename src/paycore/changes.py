"""``Change``: the one way a payment is modified, event by event.

A change starts from a stored payment, fires state-machine triggers, sets
fields and flags, and appends one :class:`~paycore.records.PaymentEvent` per
change. :meth:`Change.result` gives the next version to store (or ``None`` when
nothing changed), so "every change appends an event" holds by construction.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

import attrs

from paycore import fsm
from paycore.money import Money
from paycore.records import Payment, PaymentEvent, Refund, event_id
from paycore.status import FraudStatus, PaymentStatus, ReviewReason

__all__ = ["Change", "compile_builder", "replace_refund"]

R = TypeVar("R", Payment, Refund)
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
    """A constructor of ``cls`` taking every field by keyword, without running ``__init__``.

    Only for a frozen slotted attrs class whose fields have no converter, no
    validator and no post-init to run: the record built equals ``cls(**fields)``.
    """
    fields = attrs.fields(cls)
    assert not any(f.converter for f in fields), f"a {cls.__name__} field has a converter to run"
    names = [f.name for f in fields]
    build: Callable[..., T] = _compile(cls, "build", "*, " + ", ".join(names), {n: n for n in names}, {})
    return build


def _compile_replace(cls: type[R]) -> Callable[[R, dict[str, Any]], R]:
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


_replace = _compile_replace(Payment)
"""``_replace(payment, changes)``: the payment with ``changes`` (field names to values), as ``attrs.evolve``."""
replace_refund = _compile_replace(Refund)
"""``replace_refund(refund, changes)``: the refund with ``changes`` (field names to values), as ``attrs.evolve``."""
_event = compile_builder(PaymentEvent)
"""``PaymentEvent(**fields)``, with every field given."""


class Change:
    """Changes to one payment, applied in memory, committed by the flow in one write.

    Field changes accumulate and the payment is copied once, when it is next
    read or when :meth:`result` builds the version to store: a transition
    costs one copy of the payment, not one per field and event.
    """

    def __init__(self, payment: Payment, *, cause: str, now: datetime, provider_event_id: str | None = None) -> None:
        self.original = payment
        self.cause = cause
        self.now = now
        self.provider_event_id = provider_event_id
        self.events: list[PaymentEvent] = []
        self._changes: dict[str, Any] = {}
        self._current: Payment | None = payment
        self._status = payment.status
        self._event_count = payment.event_count

    @property
    def payment(self) -> Payment:
        """The payment as changed so far."""
        if self._current is None:
            self._current = _replace(self.original, {**self._changes, "event_count": self._event_count})
        return self._current

    @property
    def status(self) -> PaymentStatus:
        """The payment's status as changed so far."""
        return self._status

    def set(self, **fields: Any) -> None:
        """Set fields other than ``status`` (which only :meth:`fire` changes)."""
        if "status" in fields:
            raise TypeError("status is changed only by fire(), through the state machine")
        changes, original = self._changes, self.original
        for name, value in fields.items():
            current = changes[name] if name in changes else getattr(original, name)
            # None against a record differs without the record's (Python-level) ``__ne__``.
            if current is not value and (current is None or value is None or current != value):
                changes[name] = value
                self._current = None

    def value(self, name: str) -> Any:
        """Field ``name`` of the payment as changed so far (without copying the payment)."""
        changes = self._changes
        return changes[name] if name in changes else getattr(self.original, name)

    def event(
        self,
        kind: str,
        *,
        from_status: str | None = None,
        to_status: str | None = None,
        amount: Money | None = None,
        refund_id: str | None = None,
        message: str = "",
    ) -> None:
        """Append an event describing a change made in this unit of work."""
        original = self.original
        self._event_count = sequence = self._event_count + 1
        self.events.append(
            _event(
                id=event_id(original.id, sequence),
                payment_id=original.id,
                sequence=sequence,
                kind=kind,
                cause=self.cause,
                tenant=original.tenant,
                from_status=from_status,
                to_status=to_status,
                amount=amount,
                refund_id=refund_id,
                provider_event_id=self.provider_event_id,
                message=message,
                at=self.now,
            )
        )
        self._current = None

    def can(self, trigger: str) -> bool:
        """True when ``trigger`` may fire from the current status."""
        return fsm.allowed(self._status, trigger)

    def fire(self, trigger: str, *, amount: Money | None = None, message: str = "") -> None:
        """Move the status through the state machine and record it; refuses invalid moves."""
        before = self._status
        after = fsm.fire(before, trigger)
        self._changes["status"] = self._status = after
        # ``_value_``: a member's value without the ``Enum.value`` property's Python-level call.
        before_value, after_value = before._value_, after._value_
        self.event("status_changed", from_status=before_value, to_status=after_value, amount=amount, message=message)

    def flag(self, reason: ReviewReason, message: str) -> None:
        """Flag the payment for an operator's review, with why."""
        self.set(needs_review=True, review_reason=reason, review_message=message)
        self.event("flagged_for_review", message=f"{reason.value}: {message}")

    def set_fraud(self, status: FraudStatus, message: str) -> None:
        """Record a fraud verdict; ``review``/``rejected`` also flag the payment."""
        before: FraudStatus = self.value("fraud_status")
        if status == before and message == self.value("fraud_message"):
            return
        self.set(fraud_status=status, fraud_message=message)
        self.event("fraud_status_changed", from_status=before.value, to_status=status.value, message=message)
        if status in (FraudStatus.REVIEW, FraudStatus.REJECTED):
            self.flag(ReviewReason.FRAUD, message or f"fraud status {status.value}")

    @property
    def changed(self) -> bool:
        """True when anything was changed."""
        return bool(self.events) or bool(self._changes)

    def result(self) -> Payment | None:
        """The next version of the payment to store, or ``None`` when nothing changed."""
        if not self.changed:
            return None
        return _replace(
            self.original,
            {
                **self._changes,
                "version": self.original.version + 1,
                "updated_at": self.now,
                "event_count": self._event_count,
            },
        )

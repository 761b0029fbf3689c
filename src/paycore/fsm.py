"""The payment state machine: the one place that decides which status follows which.

It is defined once with ``transitions`` (:data:`MACHINE`), a single shared
machine with no per-payment model: building a ``transitions.Machine`` for each
payment would cost more than the rest of a webhook's work. The machine is built
the first time a transition is asked for (importing paycore does not load
``transitions``) and compiled into a ``(status, trigger) -> status`` table, so
a transition costs a dict lookup.

Statuses only move forward (see :data:`RANK`). A provider's confirmation of
money after the payment expired, failed or was canceled here is the one way out
of those statuses (``confirm_late``), and the flow flags such payments for review.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Final

from paycore.errors import InvalidTransition
from paycore.status import PaymentStatus as S

if TYPE_CHECKING:
    from transitions import Machine

__all__ = [
    "CAPTURED",
    "CLOSED",
    "OPEN",
    "RANK",
    "TRANSITIONS",
    "TRIGGERS",
    "allowed",
    "fire",
    "machine",
    "mermaid",
    "next_status",
]

OPEN: Final = frozenset({S.PENDING, S.PROCESSING})
"""Not yet decided: created here, or sent and awaiting the customer or a confirmation."""
CLOSED: Final = frozenset({S.EXPIRED, S.CANCELED, S.FAILED})
"""Ended without money: only a provider's late confirmation leads out (``confirm_late``)."""
CAPTURED: Final = frozenset({S.SUCCEEDED, S.PARTIALLY_REFUNDED, S.REFUNDED})
"""Money was captured (some or all of it may have been refunded since)."""

_OPEN = sorted(OPEN)
_CLOSED = sorted(CLOSED)
_REFUNDABLE = [S.SUCCEEDED, S.PARTIALLY_REFUNDED]

TRANSITIONS: Final[tuple[tuple[str, list[S] | S, S], ...]] = (
    ("send", S.PENDING, S.PROCESSING),
    ("authorize", _OPEN, S.AUTHORIZED),
    ("succeed", _OPEN, S.SUCCEEDED),
    ("capture", S.AUTHORIZED, S.SUCCEEDED),
    ("fail", [*_OPEN, S.AUTHORIZED], S.FAILED),
    ("cancel", [*_OPEN, S.AUTHORIZED], S.CANCELED),
    ("expire", [*_OPEN, S.AUTHORIZED], S.EXPIRED),
    ("confirm_late", _CLOSED, S.SUCCEEDED),
    ("refund_partially", _REFUNDABLE, S.PARTIALLY_REFUNDED),
    ("refund_fully", _REFUNDABLE, S.REFUNDED),
)
"""``(trigger, sources, destination)`` rows: the whole definition."""


@functools.cache
def machine() -> Machine:
    """The shared ``transitions`` machine (:data:`MACHINE`); it holds the graph, not any payment's state."""
    from transitions import Machine

    return Machine(
        model=None,
        states=[status.value for status in S],
        transitions=[
            {
                "trigger": trigger,
                "source": [s.value for s in sources] if isinstance(sources, list) else sources.value,
                "dest": dest.value,
            }
            for trigger, sources, dest in TRANSITIONS
        ],
        initial=S.PENDING.value,
        auto_transitions=False,
    )


def __getattr__(name: str) -> Machine:
    if name == "MACHINE":
        return machine()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


TRIGGERS: Final = frozenset(trigger for trigger, _, _ in TRANSITIONS)
"""Every trigger name the machine knows."""

_TABLE: dict[tuple[S, str], S] = {}
"""``(status, trigger) -> status``, compiled from the machine on first use (:func:`_table`)."""


def _table() -> dict[tuple[S, str], S]:
    global _TABLE
    if not _TABLE:
        table: dict[tuple[S, str], S] = {}
        for trigger, event in machine().events.items():
            for source, transitions in event.transitions.items():
                (transition,) = transitions
                table[S(source), trigger] = S(str(transition.dest))
        _TABLE = table  # one assignment: a concurrent reader sees no table or the whole one
    return _TABLE


RANK: Final[Mapping[S, int]] = MappingProxyType(
    {
        S.PENDING: 0,
        S.PROCESSING: 1,
        S.AUTHORIZED: 2,
        S.FAILED: 3,
        S.EXPIRED: 3,
        S.CANCELED: 3,
        S.SUCCEEDED: 4,
        S.PARTIALLY_REFUNDED: 5,
        S.REFUNDED: 6,
    }
)
"""How far along a status is. Every transition goes to a higher rank (or, for a
further partial refund, stays put), so no sequence of updates, however ordered,
moves a payment backwards."""


def next_status(status: S, trigger: str) -> S | None:
    """The status ``trigger`` leads to from ``status``, or ``None`` if it may not fire."""
    return (_TABLE or _table()).get((status, trigger))


def allowed(status: S, trigger: str) -> bool:
    """True when ``trigger`` may fire from ``status``.

    The flow asks it before an operation too: ``allowed(status, "capture")``,
    ``allowed(status, "cancel")``, ``allowed(status, "refund_partially")`` (any refund).
    """
    return (status, trigger) in (_TABLE or _table())


def fire(status: S, trigger: str) -> S:
    """The status ``trigger`` leads to; :class:`InvalidTransition` if it may not fire."""
    destination = (_TABLE or _table()).get((status, trigger))
    if destination is None:
        if trigger not in TRIGGERS:
            raise InvalidTransition(f"unknown trigger {trigger!r}; known: {sorted(TRIGGERS)}")
        sources = sorted(s.value for (s, t) in _TABLE if t == trigger)
        raise InvalidTransition(f"cannot {trigger} a payment that is {status.value}; only from {', '.join(sources)}")
    return destination


def mermaid() -> str:
    """The machine as a Mermaid ``stateDiagram-v2``, drawn from :data:`MACHINE` itself."""
    lines = ["stateDiagram-v2", f"    [*] --> {S.PENDING.value}"]
    for trigger, event in machine().events.items():
        for source, transitions in event.transitions.items():
            for transition in transitions:
                lines.append(f"    {source} --> {transition.dest}: {trigger}")
    for status in S:
        if status.is_final:
            lines.append(f"    {status.value} --> [*]")
    return "\n".join(lines) + "\n"

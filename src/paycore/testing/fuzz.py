"""Hypothesis strategies for fuzzing what a provider parses: JSON values, and values that have broken parsers.

A provider package's webhook fuzz starts from the event its gateway really
sends, signs it again once broken, and checks that paycore refuses it with a
:class:`~paycore.errors.PaycoreError` and changes nothing. These are the values
it breaks events with; each package adds the ids and spellings of its own
gateway (``pi_`` ids, ``cos-`` sessions)::

    from paycore.testing.fuzz import TRICKY_VALUES, json_values

    junk = json_values([*TRICKY_VALUES, "pi_\\udfff", "pi_\\n1"])

Needs hypothesis (``pip install paycore[test]``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final

from hypothesis import strategies as st

from paycore.errors import PaycoreError

if TYPE_CHECKING:
    from paycore.providers import Provider

__all__ = ["TRICKY_VALUES", "json_scalars", "json_values", "provider_refusal"]

TRICKY_VALUES: Final[tuple[Any, ...]] = (
    "\ud800",  # a lone surrogate: not encodable as UTF-8
    "\x00",
    "\u202e",  # right-to-left override
    "",
    " ",
    "x" * 256,
    "x" * 5000,
    "succeeded",
    "XOF",
    "EUR",
    "ZZZ",
    -1,
    0,
    10**19,
    2**63,
    10**40,
    1.5,
    float("nan"),
    float("inf"),
    True,
    False,
    None,
    [],
    {},
)
"""Values that have broken parsers: a lone surrogate, control characters, empty and huge strings, a status and
currencies where an id belongs, numbers past a ``BIGINT``, NaN, booleans (which are ints in Python), empties."""


def json_scalars(tricky: Sequence[Any] = TRICKY_VALUES) -> st.SearchStrategy[Any]:
    """A JSON scalar (``null``, a boolean, an integer up to 2**70, any float, short text) or one of ``tricky``."""
    return st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(2**70), max_value=2**70),
        st.floats(allow_nan=True, allow_infinity=True),
        st.text(max_size=12),
        st.sampled_from(list(tricky)),
    )


def json_values(tricky: Sequence[Any] = TRICKY_VALUES) -> st.SearchStrategy[Any]:
    """Any JSON value, small (at most 8 leaves): :func:`json_scalars` in lists and objects."""
    return st.recursive(
        json_scalars(tricky),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
        max_leaves=8,
    )


async def provider_refusal(provider: Provider, body: bytes, headers: Mapping[str, str]) -> PaycoreError | None:
    """How ``provider`` itself answers a delivery (``verify_webhook`` then ``parse_webhook``, without the flow's
    safety nets): the :class:`~paycore.errors.PaycoreError` it refuses it with, or ``None`` when it reads it.
    Any other exception propagates: a fuzz fails on it."""
    lowered = {name.lower(): value for name, value in headers.items()}
    try:
        await provider.verify_webhook(body, lowered)
        await provider.parse_webhook(body, lowered)
    except PaycoreError as error:
        return error
    return None

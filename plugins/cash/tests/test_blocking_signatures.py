"""``BlockingCashDrawers`` cannot drift from ``CashDrawers``: one twin per async method, same signature."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import pytest

from paycore.flow import PaymentFlow
from paycore_cash.blocking import BlockingCashDrawers
from paycore_cash.drawers import CashDrawers
from paycore_cash.sales import refund_cash, take_cash

KNOWN_DRIFT: dict[str, str] = {}
"""Twins missing or loose, by name: each is a strict xfail, so fixing one turns its test red until removed here."""


def _without_first(function: Callable[..., Any], first: str) -> inspect.Signature:
    """The signature with annotations evaluated, without its first parameter ``first``."""
    # Names a module imports for type checking only (PaymentFlow in sales.py) are given here.
    signature = inspect.signature(function, eval_str=True, locals={"PaymentFlow": PaymentFlow})
    parameters = list(signature.parameters.values())
    assert parameters[0].name == first
    return signature.replace(parameters=parameters[1:])


def _public_async_methods(cls: type) -> list[str]:
    return sorted(name for name, _ in inspect.getmembers(cls, inspect.iscoroutinefunction) if not name.startswith("_"))


def _case(name: str) -> Any:
    if name in KNOWN_DRIFT:
        return pytest.param(name, marks=pytest.mark.xfail(strict=True, reason=KNOWN_DRIFT[name]))
    return name


@pytest.mark.parametrize("name", [_case(name) for name in _public_async_methods(CashDrawers)])
def test_every_async_method_of_the_drawers_has_a_blocking_twin_with_its_signature(name: str) -> None:
    original = _without_first(getattr(CashDrawers, name), "self")
    twin = getattr(BlockingCashDrawers, name, None)
    assert twin is not None, f"BlockingCashDrawers lacks {name}{original}"
    assert not inspect.iscoroutinefunction(twin)
    assert _without_first(twin, "self") == original


def test_the_blocking_take_cash_has_the_signature_of_take_cash_on_a_flow() -> None:
    assert _without_first(BlockingCashDrawers.take_cash, "self") == _without_first(take_cash, "flow")


def test_the_blocking_refund_cash_has_the_signature_of_refund_cash_on_a_flow() -> None:
    assert _without_first(BlockingCashDrawers.refund_cash, "self") == _without_first(refund_cash, "flow")


def test_the_blocking_drawers_have_no_method_beyond_the_drawers_take_cash_and_refund_cash() -> None:
    def public(cls: type) -> set[str]:
        return {name for name, member in inspect.getmembers(cls, callable) if not name.startswith("_")}

    assert public(BlockingCashDrawers) - public(CashDrawers) == {"take_cash", "refund_cash"}

"""``BlockingPaymentFlow`` cannot drift from ``PaymentFlow``: one twin per async method, same signature.

Annotations are compared evaluated, as a type checker reads them: in the
namespace of the module that defines the method, with the names that module
imports for type checking only (``paycore.flow`` imports the types of its
signatures that way, so that importing it does not load the machinery behind them).
"""

from __future__ import annotations

import ast
import inspect
import sys
from collections.abc import Callable
from typing import Any

import pytest

from paycore.blocking import BlockingPaymentFlow
from paycore.flow import PaymentFlow

FACADE_LIFECYCLE = frozenset({"open", "close", "run", "from_config", "around_call"})
"""The facade's own members: its event loop's lifecycle, running any coroutine, its constructor, and what a
subclass may wrap each call in."""
ASYNC_LIFECYCLE = {"aclose": "close"}
"""Async lifecycle methods and the facade method that does their job."""


def _public_async_methods(cls: type) -> dict[str, Callable[..., Any]]:
    return {
        name: member
        for name, member in inspect.getmembers(cls, inspect.iscoroutinefunction)
        if not name.startswith("_")
    }


def _public_methods(cls: type) -> set[str]:
    return {name for name, member in inspect.getmembers(cls, callable) if not name.startswith("_")}


def _type_checking_namespace(module_name: str) -> dict[str, Any]:
    """The module's globals plus what it imports under ``if TYPE_CHECKING:``, imported here."""
    module = sys.modules[module_name]
    namespace = dict(vars(module))
    for node in ast.parse(inspect.getsource(module)).body:
        if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING":
            exec(compile(ast.Module(body=node.body, type_ignores=[]), module_name, "exec"), namespace)
    return namespace


def _without_self(function: Callable[..., Any]) -> inspect.Signature:
    """The signature with annotations evaluated, without ``self`` (or ``cls`` of a bound classmethod)."""
    home = inspect.unwrap(function).__module__
    signature = inspect.signature(function, eval_str=True, globals=_type_checking_namespace(home))
    parameters = [parameter for parameter in signature.parameters.values() if parameter.name != "self"]
    return signature.replace(parameters=parameters)


FLOW_METHODS = sorted(set(_public_async_methods(PaymentFlow)) - set(ASYNC_LIFECYCLE))


@pytest.mark.parametrize("name", FLOW_METHODS)
def test_every_async_method_of_the_flow_has_a_blocking_twin_with_its_signature(name: str) -> None:
    original = _without_self(getattr(PaymentFlow, name))
    twin = getattr(BlockingPaymentFlow, name, None)
    assert twin is not None, f"BlockingPaymentFlow lacks {name}{original}"
    assert not inspect.iscoroutinefunction(twin), f"BlockingPaymentFlow.{name} must block, not return a coroutine"
    assert _without_self(twin) == original


def test_the_twins_cover_the_whole_flow() -> None:
    assert {"create_payment", "refund", "capture", "cancel", "handle_webhook", "expire_stale"} <= set(FLOW_METHODS)


@pytest.mark.parametrize(("async_name", "blocking_name"), sorted(ASYNC_LIFECYCLE.items()))
def test_async_lifecycle_methods_have_a_blocking_counterpart_with_their_signature(
    async_name: str, blocking_name: str
) -> None:
    assert _without_self(getattr(BlockingPaymentFlow, blocking_name)) == _without_self(getattr(PaymentFlow, async_name))


def test_the_blocking_flow_has_no_method_the_flow_lacks() -> None:
    extra = _public_methods(BlockingPaymentFlow) - _public_methods(PaymentFlow) - FACADE_LIFECYCLE
    assert extra == set()


def test_the_blocking_from_config_takes_every_argument_of_the_flows_plus_its_backend() -> None:
    flow_parameters = dict(_without_self(PaymentFlow.from_config).parameters)
    blocking_parameters = dict(_without_self(BlockingPaymentFlow.from_config).parameters)
    backend = blocking_parameters.pop("backend")
    assert blocking_parameters == flow_parameters
    assert (backend.kind, backend.default) == (inspect.Parameter.KEYWORD_ONLY, "asyncio")

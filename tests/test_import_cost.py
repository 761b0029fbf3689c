"""Importing the flow loads only what every flow needs; the rest loads on first use.

A command-line tool or a serverless function pays paycore's import on every
start, so the modules only some paths need (TOML files, the state machine's
builder, hashing for idempotency keys, the CLI's argument parser) are imported
by the code that uses them. ``from paycore import PaymentFlow`` defines the
flow's class only: what a flow runs on (its actions, storage contracts,
configuration, plugins, records and money with attrs, anyio and pluggy) is imported when the first
flow is built, and ``import paycore`` alone imports none of its modules.
"""

from __future__ import annotations

import ast
import subprocess
import sys

import pytest

DEFERRED = ("transitions", "tomllib", "secrets", "hashlib", "argparse", "random", "pathlib")
"""Loaded on first use by the paths that need them (not by importing the flow)."""

MACHINERY = (
    "anyio",
    "pluggy",
    "json",
    "attrs",
    "paycore.money",
    "paycore.records",
    "paycore.actions",
    "paycore.config",
    "paycore.plugins",
    "paycore.storage",
    "paycore.idempotency",
    "paycore.flow_parts",
)
"""What a flow runs on: loaded when the first flow is built, not by importing the flow."""

BUILD_A_FLOW = (
    "from paycore import PaymentFlow; import paycore_memory.plugin; "
    "PaymentFlow.from_config(None, plugins=[paycore_memory.plugin], entry_points=False, environ={})"
)


def _modules_after(statement: str) -> set[str]:
    code = f"import sys; {statement}; print(sorted(sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(ast.literal_eval(done.stdout.splitlines()[-1]))


@pytest.fixture(scope="module")
def after_importing_the_flow() -> set[str]:
    return _modules_after("from paycore import PaymentFlow")


@pytest.fixture(scope="module")
def after_building_a_flow() -> set[str]:
    return _modules_after(BUILD_A_FLOW)


@pytest.mark.parametrize("module", DEFERRED + MACHINERY)
def test_importing_the_flow_does_not_load(module: str, after_importing_the_flow: set[str]) -> None:
    assert module not in after_importing_the_flow


@pytest.mark.parametrize("module", MACHINERY)
def test_building_a_flow_loads_what_it_runs_on(module: str, after_building_a_flow: set[str]) -> None:
    assert module in after_building_a_flow


def test_importing_paycore_loads_none_of_its_modules() -> None:
    loaded = _modules_after("import paycore")
    assert {name for name in loaded if name.startswith("paycore.")} == set()
    assert "attrs" not in loaded


def test_a_name_paycore_exports_loads_its_module_when_first_asked_for() -> None:
    loaded = _modules_after("import paycore; assert paycore.Money.of('5', 'EUR').currency == 'EUR'")
    assert "paycore.money" in loaded
    assert "paycore.flow" not in loaded


def test_every_name_paycore_exports_can_be_imported_from_it() -> None:
    loaded = _modules_after("from paycore import *; assert PaymentFlow and BlockingPaymentFlow and hookimpl")
    assert {"paycore.flow", "paycore.blocking", "paycore.hookspecs", "paycore.records"} <= loaded


def test_the_state_machine_loads_when_a_transition_is_first_asked_for() -> None:
    loaded = _modules_after(
        "from paycore import fsm; from paycore.status import PaymentStatus as S; "
        "assert fsm.fire(S.PENDING, 'send') is S.PROCESSING"
    )
    assert "transitions" in loaded

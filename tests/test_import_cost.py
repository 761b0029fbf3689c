"""Importing the flow loads only what every flow needs; the rest loads on first use.

A command-line tool or a serverless function pays paycore's import on every
start, so the modules only some paths need (TOML files, the state machine's
builder, hashing for idempotency keys, the CLI's argument parser) are imported
by the code that uses them.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

DEFERRED = ("transitions", "tomllib", "secrets", "hashlib", "argparse", "random", "pathlib")


def _modules_after(statement: str) -> set[str]:
    code = f"import json, sys; {statement}; print(json.dumps(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(json.loads(done.stdout))


@pytest.mark.parametrize("module", DEFERRED)
def test_importing_the_flow_does_not_load(module: str) -> None:
    assert module not in _modules_after("from paycore import PaymentFlow")


def test_the_state_machine_loads_when_a_transition_is_first_asked_for() -> None:
    loaded = _modules_after(
        "from paycore import fsm; from paycore.status import PaymentStatus as S; "
        "assert fsm.fire(S.PENDING, 'send') is S.PROCESSING"
    )
    assert "transitions" in loaded

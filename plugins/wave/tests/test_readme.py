"""The README's state table and simulator example are what the code does."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path
from typing import Any

import pytest

from paycore.status import Outcome, PaymentStatus
from paycore_wave.sessions import CHECKOUT_STATUSES, PAYMENT_STATUSES, outcome_of

README = Path(__file__).resolve().parents[1] / "README.md"


def _state_rows() -> list[tuple[str, str, str]]:
    section = README.read_text().split("## How Wave's states map to paycore", 1)[1]
    return re.findall(r"^\| (any|`\w+`) \| ([^|]+) \| `(\w+)`", section, flags=re.MULTILINE)


def _values(cell: str, every: tuple[str, ...]) -> list[str]:
    if cell.strip() == "any":
        return list(every)
    named = re.findall(r"`(\w+)`", cell)
    if cell.strip().startswith("not "):
        return [value for value in every if value not in named]
    return named


def test_the_state_table_covers_every_documented_pair_with_the_outcome_the_provider_reports() -> None:
    covered: dict[tuple[str, str], Outcome] = {}
    for checkout_cell, payment_cell, outcome in _state_rows():
        for checkout_status in _values(checkout_cell, CHECKOUT_STATUSES):
            for payment_status in _values(payment_cell, PAYMENT_STATUSES):
                covered.setdefault((checkout_status, payment_status), Outcome[outcome])
    assert set(covered) == {(c, p) for c in CHECKOUT_STATUSES for p in PAYMENT_STATUSES}
    for (checkout_status, payment_status), outcome in covered.items():
        assert outcome_of(checkout_status, payment_status) is outcome, (checkout_status, payment_status)


@pytest.mark.anyio
async def test_the_simulator_example_takes_a_payment_to_succeeded() -> None:
    section = README.read_text().split("## The simulator", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, flags=re.DOTALL)
    assert code is not None
    lines = code.group(1).splitlines()
    imports = "\n".join(line for line in lines if line.startswith(("import ", "from ")))
    body = "\n".join(line for line in lines if not line.startswith(("import ", "from ")))
    source = f"{imports}\n\nasync def example():\n{textwrap.indent(body, '    ')}\n    return flow, checkout\n"
    namespace: dict[str, Any] = {}
    exec(compile(source, str(README), "exec"), namespace)
    flow, checkout = await namespace["example"]()
    payment = await flow.repository.get(checkout.payment.id)
    assert payment.status is PaymentStatus.SUCCEEDED

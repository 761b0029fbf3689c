"""The README's scenario table and in-process example are what the code does."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path
from typing import Any

import pytest

from paycore.status import PaymentStatus
from paycore_dummy import Scenario, scenario_for, unregister_gateway

README = Path(__file__).resolve().parents[1] / "README.md"


def test_the_scenario_table_matches_the_amounts_that_trigger_each_scenario() -> None:
    rows = re.findall(r"^\| `(\d\d)` \| `(\w+)` \|", README.read_text(), flags=re.MULTILINE)
    assert len(rows) == len(Scenario) - 1
    for digits, name in rows:
        assert scenario_for(5000 + int(digits)) is Scenario(name)
    assert scenario_for(5000) is Scenario.SUCCESS


def test_every_scenario_name_in_the_table_is_accepted_in_metadata() -> None:
    section = README.read_text().split("## Scenarios", 1)[1]
    rows = re.findall(r"^\| [^|]+ \| `(\w+)` \|", section, flags=re.MULTILINE)
    names = [name for name in rows if name != "dummy_scenario"]  # the header names the metadata key
    assert sorted(names) == sorted(s.value for s in Scenario)
    for name in names:
        assert scenario_for(5000, {"dummy_scenario": name}) is Scenario(name)


@pytest.mark.anyio
async def test_the_in_process_example_takes_a_payment_to_succeeded() -> None:
    section = README.read_text().split("## In-process mode", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, flags=re.DOTALL)
    assert code is not None
    lines = code.group(1).splitlines()
    imports = "\n".join(line for line in lines if line.startswith(("import ", "from ")))
    body = "\n".join(line for line in lines if not line.startswith(("import ", "from ")))
    source = f"{imports}\n\nasync def example():\n{textwrap.indent(body, '    ')}\n    return flow, checkout\n"
    namespace: dict[str, Any] = {}
    exec(compile(source, str(README), "exec"), namespace)
    try:
        flow, checkout = await namespace["example"]()
    finally:
        unregister_gateway("local")
    # Leaving the gateway let its webhook land; the closed flow's in-memory repository still answers.
    payment = await flow.repository.get(checkout.payment.id)
    assert payment.status is PaymentStatus.SUCCEEDED

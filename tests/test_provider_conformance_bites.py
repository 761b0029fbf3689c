"""The provider conformance suite fails a broken provider: it is run here against broken copies of FakeProvider.

Each run puts the genuine ``FakeProvider`` beside a broken copy in one test
module, runs the suite's tests about the broken behaviour on both, and checks
that they pass on the genuine one and fail on the copy.
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

_PREAMBLE = """
import json

from paycore import hookimpl
from paycore.testing import FakeProvider
from test_provider_conformance import FakeConformance


class Plugin:
    def __init__(self, provider):
        self.provider = provider

    @hookimpl
    def paycore_register_providers(self, register):
        register(self.provider)


class TestGenuine(FakeConformance):
    pass
"""

ACCEPTS_ANY_SIGNATURE = (
    _PREAMBLE
    + """

class AcceptsAnySignature(FakeProvider):
    name = "accepts_any_signature"

    async def verify_webhook(self, body, headers):
        pass


class TestBroken(FakeConformance):
    provider_type = "accepts_any_signature"
    extra_plugins = (Plugin(AcceptsAnySignature),)
"""
)

ACCEPTS_NEGATIVE_REFUNDS = (
    _PREAMBLE
    + '''

class AcceptsNegativeRefunds(FakeProvider):
    """Reads a refund of -1000 as a refund of 1000 instead of refusing the report."""

    name = "accepts_negative_refunds"

    async def parse_webhook(self, body, headers):
        data = json.loads(body)
        for refund in data.get("refunds", ()):
            refund["minor_units"] = abs(refund["minor_units"])
        return await super().parse_webhook(json.dumps(data).encode(), headers)


class TestBroken(FakeConformance):
    provider_type = "accepts_negative_refunds"
    extra_plugins = (Plugin(AcceptsNegativeRefunds),)
'''
)


def _outcomes(pytester: pytest.Pytester, source: str, selection: str) -> dict[tuple[str, str], set[str]]:
    """Run the tests of ``source`` that ``selection`` (``-k``) picks; ``{(class, test): outcomes}``."""
    pytester.syspathinsert(Path(__file__).parent)
    pytester.makepyfile(test_suite_copy=source)
    recorder = pytester.inline_run("-p", "no:cacheprovider", "-p", "no:django", "-k", selection)
    outcomes: dict[tuple[str, str], set[str]] = {}
    for report in recorder.getreports("pytest_runtest_logreport"):
        if report.when == "call" or report.outcome != "passed":
            _, klass, test = report.nodeid.split("::")
            outcomes.setdefault((klass, test.partition("[")[0]), set()).add(report.outcome)
    return outcomes


SIGNATURE_TESTS = (
    "test_a_delivery_with_a_flipped_byte_is_refused",
    "test_a_delivery_signed_with_the_wrong_secret_is_refused",
    "test_a_delivery_without_its_signature_is_refused",
)


def test_the_suite_fails_a_provider_that_accepts_any_signature(pytester: pytest.Pytester) -> None:
    outcomes = _outcomes(pytester, ACCEPTS_ANY_SIGNATURE, " or ".join(SIGNATURE_TESTS))
    for test in SIGNATURE_TESTS:
        assert outcomes[("TestGenuine", test)] == {"passed"}, test
        assert outcomes[("TestBroken", test)] == {"failed"}, test


def test_the_suite_fails_a_provider_that_accepts_negative_refund_amounts(pytester: pytest.Pytester) -> None:
    test = "test_a_report_with_a_negative_refund_amount_is_refused"
    outcomes = _outcomes(pytester, ACCEPTS_NEGATIVE_REFUNDS, test)
    assert outcomes[("TestGenuine", test)] == {"passed"}
    assert outcomes[("TestBroken", test)] == {"failed"}

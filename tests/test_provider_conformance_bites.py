"""The provider conformance suite fails a broken provider: it is run here against broken copies of FakeProvider.

Each run puts the genuine ``FakeProvider`` beside a broken copy in one test
module, runs the suite's tests about the broken behaviour on both, and checks
that they pass on the genuine one and fail on the copy.
"""

from __future__ import annotations

import pytest

from .conftest import SuiteOutcomes, run_suite_copy

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


def conformance_of(name, provider, **hooks):
    '''The suite's test class ``name`` for ``provider``, a copy of FakeProvider: FakeConformance with it.'''
    attributes = {"provider_type": provider.name, "extra_plugins": (Plugin(provider),), **hooks}
    return type(name, (FakeConformance,), attributes)


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


TestBroken = conformance_of("TestBroken", AcceptsAnySignature)
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


TestBroken = conformance_of("TestBroken", AcceptsNegativeRefunds)
'''
)


READS_PENDING_AS_PAID = (
    _PREAMBLE
    + '''
from attrs import evolve

from paycore.status import Outcome


class PendingReadAsPaid(FakeProvider):
    """check_status maps the gateway's "pending" to SUCCEEDED, with the payment's own amount."""

    name = "pending_read_as_paid"

    async def check_status(self, payment):
        update = await super().check_status(payment)
        if update.outcome is Outcome.PENDING:
            return evolve(update, outcome=Outcome.SUCCEEDED, captured=payment.amount)
        return update


TestBroken = conformance_of("TestBroken", PendingReadAsPaid)
'''
)


SIGNATURE_TESTS = (
    "test_a_delivery_with_a_flipped_byte_is_refused",
    "test_a_delivery_signed_with_the_wrong_secret_is_refused",
    "test_a_delivery_without_its_signature_is_refused",
)


def _fails_only_the_broken(outcomes: SuiteOutcomes, tests: tuple[str, ...]) -> None:
    """Each of ``tests`` passed the genuine provider and failed the broken one."""
    for test in tests:
        assert outcomes[("TestGenuine", test)] == {"passed"}, test
        assert outcomes[("TestBroken", test)] == {"failed"}, test


def test_the_suite_fails_a_provider_that_accepts_any_signature(pytester: pytest.Pytester) -> None:
    outcomes, _ = run_suite_copy(pytester, ACCEPTS_ANY_SIGNATURE, " or ".join(SIGNATURE_TESTS))
    _fails_only_the_broken(outcomes, SIGNATURE_TESTS)


def test_the_suite_fails_a_provider_that_accepts_negative_refund_amounts(pytester: pytest.Pytester) -> None:
    test = "test_a_report_with_a_negative_refund_amount_is_refused"
    outcomes, _ = run_suite_copy(pytester, ACCEPTS_NEGATIVE_REFUNDS, test)
    _fails_only_the_broken(outcomes, (test,))


POLL_TESTS = (
    "test_polling_a_payment_the_customer_has_not_paid_leaves_it_unpaid",
    "test_a_call_with_an_unknown_outcome_is_settled_by_asking_never_by_sending_again",
)


def test_the_suite_fails_a_provider_whose_poll_reads_pending_as_paid(pytester: pytest.Pytester) -> None:
    """Both the poll of a payment awaiting the customer and the poll after a lost answer fail the broken one."""
    outcomes, failures = run_suite_copy(pytester, READS_PENDING_AS_PAID, " or ".join(POLL_TESTS))
    _fails_only_the_broken(outcomes, POLL_TESTS)
    assert "a poll of a payment the customer has not paid (capture=True) made it succeeded" in failures
    assert "a poll made a payment the customer has not paid succeeded" in failures


REPORTS_THE_AMOUNT_ASKED = (
    _PREAMBLE
    + '''
from attrs import evolve


class ReportsTheAmountAsked(FakeProvider):
    """Reports the amount the payment asked for as captured, whatever the gateway moved."""

    name = "reports_the_amount_asked"

    async def parse_webhook(self, body, headers):
        updates = await super().parse_webhook(body, headers)
        return [
            evolve(u, captured=self.ledger[u.payment_id].amount) if u.captured is not None else u for u in updates
        ]


TestBroken = conformance_of("TestBroken", ReportsTheAmountAsked)
'''
)

READS_A_DECLINED_REFUND_AS_SUCCEEDED = (
    _PREAMBLE
    + '''
from attrs import evolve

from paycore.status import RefundStatus


class DeclinedRefundReadAsSucceeded(FakeProvider):
    """Answers SUCCEEDED to a refund the gateway declined."""

    name = "declined_refund_read_as_succeeded"

    async def refund(self, payment, refund):
        return evolve(await super().refund(payment, refund), status=RefundStatus.SUCCEEDED)


TestBroken = conformance_of("TestBroken", DeclinedRefundReadAsSucceeded)
'''
)

READS_A_LOST_REFUND_ANSWER_AS_NOT_SENT = (
    _PREAMBLE
    + '''
from paycore.errors import ProviderNotSent, ProviderOutcomeUnknown


class LostRefundAnswerReadAsNotSent(FakeProvider):
    """Takes a refund whose answer was lost (its connection reset after sending) for one never sent."""

    name = "lost_refund_answer_read_as_not_sent"

    async def refund(self, payment, refund):
        try:
            return await super().refund(payment, refund)
        except ProviderOutcomeUnknown as error:
            raise ProviderNotSent(str(error)) from None


async def make_next_call_unknown(self, flow):
    self.fake(flow).script("refund", "lost")  # the provider's own transport loses the answer


TestBroken = conformance_of("TestBroken", LostRefundAnswerReadAsNotSent, make_next_call_unknown=make_next_call_unknown)
'''
)

POLLS_WITHOUT_AMOUNTS = (
    _PREAMBLE
    + '''
from attrs import evolve


class PollsWithoutAmounts(FakeProvider):
    """Its polls say a paid payment succeeded, without saying what it captured."""

    name = "polls_without_amounts"

    async def check_status(self, payment):
        return evolve(await super().check_status(payment), captured=None)


TestBroken = conformance_of("TestBroken", PollsWithoutAmounts)
'''
)

PARSE_RAISES_ANYTHING = (
    _PREAMBLE
    + '''

class ParseRaisesAnything(FakeProvider):
    """Reads its bodies without a care: a body that is no report raises whatever json or a lookup raises."""

    name = "parse_raises_anything"

    async def parse_webhook(self, body, headers):
        json.loads(body)["payment_id"]
        return await super().parse_webhook(body, headers)


TestBroken = conformance_of("TestBroken", ParseRaisesAnything)
'''
)


@pytest.mark.parametrize(
    ("source", "test", "said"),
    [
        (
            REPORTS_THE_AMOUNT_ASKED,
            "test_a_payment_paid_short_is_never_recorded_as_paid_in_full",
            "captured, but the customer paid",
        ),
        (
            READS_A_DECLINED_REFUND_AS_SUCCEEDED,
            "test_a_refund_the_provider_declines_is_failed_and_refundable_again",
            "a refund the provider declined is succeeded",
        ),
        (
            READS_A_LOST_REFUND_ANSWER_AS_NOT_SENT,
            "test_a_refund_whose_answer_was_lost_is_never_sent_again",
            "the refund was sent to the provider twice",
        ),
        (
            POLLS_WITHOUT_AMOUNTS,
            "test_a_payment_whose_deliveries_were_lost_is_settled_by_a_poll",
            "the poll flagged the paid payment (amount_mismatch",
        ),
        (
            PARSE_RAISES_ANYTHING,
            "test_a_signed_delivery_the_provider_cannot_read_is_malformed",
            "raise MalformedWebhook",
        ),
    ],
    ids=["amount-asked", "declined-refund", "lost-refund-answer", "poll-without-amounts", "parse-raises"],
)
def test_the_suite_fails_a_provider_that_gets_a_failure_wrong(
    pytester: pytest.Pytester, source: str, test: str, said: str
) -> None:
    outcomes, failures = run_suite_copy(pytester, source, test)
    _fails_only_the_broken(outcomes, (test,))
    assert said in failures


LETS_INVALID_REPORT_THROUGH = (
    _PREAMBLE
    + '''
from paycore.errors import InvalidReport


class LetsInvalidReportThrough(FakeProvider):
    """Reads a body that is no report as docs/providers.md allows: InvalidReport (the flow: MalformedWebhook)."""

    name = "lets_invalid_report_through"

    async def parse_webhook(self, body, headers):
        if body.strip() in (b"{}", b"[]", b"null"):
            raise InvalidReport("no report in the body")
        return await super().parse_webhook(body, headers)


TestAllowed = conformance_of("TestAllowed", LetsInvalidReportThrough)
'''
)

POLLS_LAG_BEHIND = (
    _PREAMBLE
    + '''
import time

from attrs import evolve

from paycore.status import Outcome


class PollsLagBehind(FakeProvider):
    """Its status reads come from a replica half a second behind what it has sent."""

    name = "polls_lag_behind"
    settled_at = {}

    def settle(self, payment_id, outcome, **kwargs):
        self.settled_at[payment_id] = time.monotonic()
        return super().settle(payment_id, outcome, **kwargs)

    async def check_status(self, payment):
        update = await super().check_status(payment)
        if time.monotonic() - self.settled_at.get(payment.id, 0.0) < 0.5:
            return evolve(update, outcome=Outcome.PENDING, captured=None)
        return update


TestAllowed = conformance_of("TestAllowed", PollsLagBehind, poll_lag=2.0)
'''
)


@pytest.mark.parametrize(
    ("source", "test"),
    [
        (LETS_INVALID_REPORT_THROUGH, "test_a_signed_delivery_the_provider_cannot_read_is_malformed"),
        (POLLS_LAG_BEHIND, "test_a_payment_whose_deliveries_were_lost_is_settled_by_a_poll"),
    ],
    ids=["invalid-report", "polls-lag-behind"],
)
def test_the_suite_passes_a_provider_that_does_what_the_docs_allow(
    pytester: pytest.Pytester, source: str, test: str
) -> None:
    outcomes, failures = run_suite_copy(pytester, source, test)
    assert outcomes[("TestGenuine", test)] == {"passed"}
    assert outcomes[("TestAllowed", test)] == {"passed"}, failures

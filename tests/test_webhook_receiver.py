"""What ``handle_webhook`` accepts at the door, and what it does with a report of money without its amount:
refused there, unless the provider declares that its notifications never carry amounts (then it asks)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import attrs
import pytest

from paycore import Money, hookimpl
from paycore.errors import InvalidSignature, MalformedWebhook, PaymentNotFound, WebhookTooLarge
from paycore.flow import PaymentFlow
from paycore.hookspecs import ProviderRegistrar
from paycore.records import Payment, ProviderUpdate, RefundUpdate
from paycore.status import Outcome, PaymentStatus, RefundStatus, ReviewReason
from paycore.testing.fake import SIGNATURE_HEADER, FakeProvider, sign
from paycore.webhooks import money_without_amount

pytestmark = pytest.mark.anyio

XOF_5000 = Money.of("5000", "XOF")


async def _processing(flow: PaymentFlow, fake: FakeProvider) -> Payment:
    fake.script("initiate", "pending")
    return (await flow.create_payment(amount=XOF_5000, provider="fake", order_id="o")).payment


@pytest.mark.parametrize("body", ["{}", 12, None, ["x"]])
async def test_a_body_that_is_not_bytes_is_a_malformed_webhook(flow: PaymentFlow, body: Any) -> None:
    with pytest.raises(MalformedWebhook, match="must be bytes"):
        await flow.handle_webhook("fake", body, {})


async def test_a_bytes_like_body_is_accepted(flow: PaymentFlow, fake: FakeProvider) -> None:
    payment = await _processing(flow, fake)
    fake.settle(payment.id, Outcome.SUCCEEDED)
    body, headers = fake.webhook(payment.id)
    (after,) = await flow.handle_webhook("fake", memoryview(body), headers)
    assert after.status is PaymentStatus.SUCCEEDED


async def test_a_body_over_the_configured_limit_is_refused_before_verification(
    make_flow: Callable[..., PaymentFlow],
) -> None:
    async with make_flow(webhook_max_bytes=1024) as flow:
        fake = flow.provider("fake")
        assert isinstance(fake, FakeProvider)
        payment = await _processing(flow, fake)
        with pytest.raises(WebhookTooLarge, match="at most 1024 bytes"):
            await flow.handle_webhook("fake", b"{" + b" " * 2048 + b"}", {"x-fake-signature": "x"})
        assert await flow.get_payment(payment.id) == payment


async def test_a_provider_that_crashes_while_verifying_refuses_the_delivery(
    flow: PaymentFlow, fake: FakeProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def crash(body: bytes, headers: Any) -> None:
        raise OverflowError("int too large to convert to float")

    monkeypatch.setattr(fake, "verify_webhook", crash)
    with pytest.raises(InvalidSignature, match="could not be verified"):
        await flow.handle_webhook("fake", b"{}", {})


async def test_a_provider_that_crashes_while_parsing_cannot_read_the_delivery(
    flow: PaymentFlow, fake: FakeProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def crash(body: bytes, headers: Any) -> None:
        raise RecursionError("maximum recursion depth exceeded")

    async def accept(body: bytes, headers: Any) -> None:
        return None

    monkeypatch.setattr(fake, "verify_webhook", accept)
    monkeypatch.setattr(fake, "parse_webhook", crash)
    with pytest.raises(MalformedWebhook, match="could not be read"):
        await flow.handle_webhook("fake", b"{}", {})


def _unaccounted_reports(fake: FakeProvider, payment: Payment) -> list[tuple[bytes, dict[str, str]]]:
    """Signed reports of money moved whose amount is missing or zero: a payment, an authorization, a refund."""
    zero = Money.of("0", "XOF")
    reports = [
        fake.webhook(payment.id, outcome=Outcome.SUCCEEDED, amounts=False),
        fake.webhook(payment.id, outcome=Outcome.SUCCEEDED, captured=zero),
        fake.webhook(payment.id, outcome=Outcome.AUTHORIZED, amounts=False),
        fake.webhook(payment.id, outcome=Outcome.AUTHORIZED, authorized=zero),
        fake.webhook(payment.id, refunds=[RefundUpdate(RefundStatus.SUCCEEDED, "re_1", amount=zero)]),
    ]
    return reports


@pytest.mark.parametrize(
    ("update", "what"),
    [
        (ProviderUpdate(outcome=Outcome.SUCCEEDED, payment_id="pay_1"), "a payment"),
        (ProviderUpdate(outcome=Outcome.SUCCEEDED, payment_id="pay_1", captured=Money.of("0", "XOF")), "a payment"),
        (ProviderUpdate(outcome=Outcome.AUTHORIZED, payment_id="pay_1"), "an authorization"),
        (
            ProviderUpdate(payment_id="pay_1", refunds=(RefundUpdate(RefundStatus.SUCCEEDED, "re_1"),)),
            "a refund",
        ),
        (ProviderUpdate(outcome=Outcome.SUCCEEDED, payment_id="pay_1", captured=XOF_5000), None),
        (ProviderUpdate(outcome=Outcome.PENDING, payment_id="pay_1"), None),
        (ProviderUpdate(outcome=Outcome.FAILED, payment_id="pay_1"), None),
        (ProviderUpdate(payment_id="pay_1", refunds=(RefundUpdate(RefundStatus.PENDING, "re_1"),)), None),
    ],
)
def test_money_without_amount_names_what_a_report_moved_without_its_amount(
    update: ProviderUpdate, what: str | None
) -> None:
    assert money_without_amount(update) == what


async def test_a_signed_report_of_money_without_its_amount_is_malformed_and_changes_nothing(
    flow: PaymentFlow, fake: FakeProvider
) -> None:
    """Missing or zero, in a payment's, an authorization's or a refund's report: 400, no poll, nothing stored."""
    payment = await _processing(flow, fake)
    fake.settle(payment.id, Outcome.SUCCEEDED)
    events = await flow.list_events(payment.id)
    for body, headers in _unaccounted_reports(fake, payment):
        with pytest.raises(MalformedWebhook, match="without its amount"):
            await flow.handle_webhook("fake", body, headers)
    assert await flow.get_payment(payment.id) == payment
    assert await flow.list_events(payment.id) == events
    assert ("check_status", payment.id) not in fake.calls, "a report is refused, not confirmed by asking"
    body, headers = fake.webhook(payment.id)
    (after,) = await flow.handle_webhook("fake", body, headers)
    assert (after.status, after.captured_amount) == (PaymentStatus.SUCCEEDED, XOF_5000)


async def test_a_delivery_with_one_report_of_money_without_its_amount_applies_none_of_its_reports(
    flow: PaymentFlow, fake: FakeProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = await _processing(flow, fake), await _processing(flow, fake)
    fake.settle(first.id, Outcome.SUCCEEDED)
    fake.settle(second.id, Outcome.SUCCEEDED)
    parse = fake.parse_webhook

    async def both(body: bytes, headers: Any) -> list[Any]:
        [paid] = await parse(fake.webhook(first.id)[0], headers)
        [unaccounted] = await parse(fake.webhook(second.id, amounts=False)[0], headers)
        return [paid, unaccounted]

    monkeypatch.setattr(fake, "parse_webhook", both)
    body, headers = fake.webhook(first.id)
    with pytest.raises(MalformedWebhook):
        await flow.handle_webhook("fake", body, headers)
    assert await flow.get_payment(first.id) == first, "the well-formed report of the delivery is not applied either"
    assert await flow.get_payment(second.id) == second


def _one_event(fake: FakeProvider, monkeypatch: pytest.MonkeyPatch, *deliveries: tuple[bytes, Any]) -> None:
    """Make ``fake`` read any delivery as the reports of ``deliveries``, all under one event id (a batch)."""
    parse = fake.parse_webhook

    async def batch(body: bytes, headers: Any) -> list[Any]:
        reports = [report for delivery, _ in deliveries for report in await parse(delivery, headers)]
        return [attrs.evolve(report, provider_event_id="evt_batch_1") for report in reports]

    monkeypatch.setattr(fake, "parse_webhook", batch)


async def test_every_report_of_a_delivery_under_one_event_id_is_applied_once(
    flow: PaymentFlow, fake: FakeProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = await _processing(flow, fake), await _processing(flow, fake)
    fake.settle(first.id, Outcome.SUCCEEDED)
    fake.settle(second.id, Outcome.SUCCEEDED)
    _one_event(fake, monkeypatch, fake.webhook(first.id), fake.webhook(second.id))
    body, headers = fake.webhook(first.id)
    touched = await flow.handle_webhook("fake", body, headers)
    assert [(p.id, p.status) for p in touched] == [
        (first.id, PaymentStatus.SUCCEEDED),
        (second.id, PaymentStatus.SUCCEEDED),
    ]
    events = [len(await flow.list_events(p.id)) for p in (first, second)]
    await flow.handle_webhook("fake", body, headers)  # delivered again: nothing new
    assert [len(await flow.list_events(p.id)) for p in (first, second)] == events


async def test_a_payment_paid_and_refunded_in_one_delivery_takes_both_reports(
    flow: PaymentFlow, fake: FakeProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    payment = await _processing(flow, fake)
    fake.settle(payment.id, Outcome.SUCCEEDED)
    refunded = RefundUpdate(RefundStatus.SUCCEEDED, "re_dash_1", amount=Money.of("1000", "XOF"))  # made at the provider
    _one_event(fake, monkeypatch, fake.webhook(payment.id), fake.webhook(payment.id, refunds=[refunded]))
    body, headers = fake.webhook(payment.id)
    *_, after = await flow.handle_webhook("fake", body, headers)
    assert (after.status, after.refunded_amount) == (PaymentStatus.PARTIALLY_REFUNDED, Money.of("1000", "XOF"))


TENANTS = {"providers": {"fake": {"type": "fake", "webhook_secret": "whsec-test"}},
           "tenants": {"t1": {"providers": {"fake": {"type": "fake", "webhook_secret": "whsec-test"}}}}}  # fmt: skip


@pytest.mark.parametrize(
    "refused",
    [
        "an unknown payment",
        "another tenant's payment",
        "another payment's reference",
        "another payment's reference, found by its own",
    ],
)
async def test_a_delivery_with_one_refused_report_is_refused_whole_and_changes_nothing(
    make_flow: Callable[..., PaymentFlow], monkeypatch: pytest.MonkeyPatch, refused: str
) -> None:
    async with make_flow(TENANTS) as flow:
        fake, theirs = flow.provider("fake"), flow.provider("fake", tenant="t1")
        assert isinstance(fake, FakeProvider)
        assert isinstance(theirs, FakeProvider)
        first, second = await _processing(flow, fake), await _processing(flow, fake)
        theirs.script("initiate", "pending")
        other = (await flow.create_payment(amount=XOF_5000, provider="fake", order_id="o", tenant="t1")).payment
        paid = ProviderUpdate(
            outcome=Outcome.SUCCEEDED, payment_id=first.id, captured=XOF_5000, provider_event_id="evt_b"
        )

        def failed(**named: Any) -> ProviderUpdate:
            return ProviderUpdate(outcome=Outcome.FAILED, provider_event_id="evt_b", **named)

        second_report = {
            "an unknown payment": failed(payment_id="pay_none"),
            "another tenant's payment": failed(payment_id=other.id),
            "another payment's reference": failed(payment_id=second.id, external_id=first.external_id),
            "another payment's reference, found by its own": failed(
                external_id=second.external_id, references=(first.external_id,)
            ),
        }[refused]

        async def batch(body: bytes, headers: Any) -> list[ProviderUpdate]:
            return [paid, second_report]

        monkeypatch.setattr(fake, "parse_webhook", batch)
        body, headers = fake.webhook(first.id)
        with pytest.raises((PaymentNotFound, MalformedWebhook)):
            await flow.handle_webhook("fake", body, headers)
        assert [await flow.get_payment(p.id) for p in (first, second)] == [first, second], "nothing was applied"
        assert await flow.get_payment(other.id, tenant="t1") == other


class _WithoutUpdate:
    """A repository keeping to the required contract only (no ``update``): every write is read, decide, save."""

    def __init__(self) -> None:
        from paycore_memory.repository import MemoryRepository

        self._inner = MemoryRepository()

    def __getattr__(self, name: str) -> Any:
        if name in ("update", "list_with_calls"):
            raise AttributeError(name)
        return getattr(self._inner, name)


class _WithoutUpdatePlugin:
    @hookimpl
    def paycore_register_repositories(self, register: Any) -> None:
        register("without-update", lambda context: _WithoutUpdate())


async def test_an_event_id_seen_before_naming_another_tenants_payment_is_not_found(
    make_flow: Callable[..., PaymentFlow],
) -> None:
    config = {**TENANTS, "tenants": {"t2": TENANTS["tenants"]["t1"], **TENANTS["tenants"]}}
    async with make_flow(
        {**config, "repository": "without-update", "idempotency": "memory"}, plugins=(_WithoutUpdatePlugin(),)
    ) as flow:
        ours, theirs = flow.provider("fake", tenant="t2"), flow.provider("fake", tenant="t1")
        assert isinstance(ours, FakeProvider)
        assert isinstance(theirs, FakeProvider)
        ours.script("initiate", "pending")
        theirs.script("initiate", "pending")
        mine = (await flow.create_payment(amount=XOF_5000, provider="fake", order_id="m", tenant="t2")).payment
        other = (await flow.create_payment(amount=XOF_5000, provider="fake", order_id="o", tenant="t1")).payment
        ours.settle(mine.id, Outcome.SUCCEEDED)
        await flow.handle_webhook("fake", *ours.webhook(mine.id, event_id="evt_seen"), tenant="t2")
        theirs.settle(other.id, Outcome.SUCCEEDED)
        body, _ = theirs.webhook(other.id, event_id="evt_seen")  # signed with t2's secret, naming t1's payment
        with pytest.raises(PaymentNotFound):
            await flow.handle_webhook("fake", body, {SIGNATURE_HEADER: sign(body, "whsec-test")}, tenant="t2")
        assert await flow.get_payment(other.id, tenant="t1") == other


class QuietProvider(FakeProvider):
    """A fake provider whose gateway's notifications never carry amounts: the flow confirms them by polling."""

    name = "quiet"
    capabilities = attrs.evolve(FakeProvider.capabilities, webhook_amounts=False)


class QuietPlugin:
    """Registers :class:`QuietProvider` (type ``"quiet"``)."""

    @hookimpl
    def paycore_register_providers(self, register: ProviderRegistrar) -> None:
        register(QuietProvider)


@pytest.fixture
async def quiet_flow(make_flow: Callable[..., PaymentFlow]) -> AsyncIterator[tuple[PaymentFlow, QuietProvider]]:
    config = {"providers": {"quiet": {"type": "quiet", "webhook_secret": "whsec-test"}}}
    async with make_flow(config, plugins=(QuietPlugin(),)) as flow:
        quiet = flow.provider("quiet")
        assert isinstance(quiet, QuietProvider)
        quiet.script("initiate", "pending")
        yield flow, quiet


async def _quiet_processing(flow: PaymentFlow, quiet: QuietProvider) -> Payment:
    return (await flow.create_payment(amount=XOF_5000, provider="quiet", order_id="q")).payment


async def test_a_paid_report_without_its_amount_from_a_provider_whose_notices_carry_none_is_confirmed_by_asking(
    quiet_flow: tuple[PaymentFlow, QuietProvider],
) -> None:
    flow, quiet = quiet_flow
    payment = await _quiet_processing(flow, quiet)
    quiet.settle(payment.id, Outcome.SUCCEEDED, captured=Money.of("4000", "XOF"))
    body, headers = quiet.webhook(payment.id, amounts=False)
    (after,) = await flow.handle_webhook("quiet", body, headers)
    assert ("check_status", payment.id) in quiet.calls
    assert after.status is PaymentStatus.PROCESSING, "an underpaid transfer is never marked paid"
    assert after.review_reason is ReviewReason.AMOUNT_MISMATCH


async def test_a_paid_report_without_its_amount_is_paid_once_the_provider_names_the_amount(
    quiet_flow: tuple[PaymentFlow, QuietProvider],
) -> None:
    flow, quiet = quiet_flow
    payment = await _quiet_processing(flow, quiet)
    quiet.settle(payment.id, Outcome.SUCCEEDED)
    body, headers = quiet.webhook(payment.id, amounts=False)
    (after,) = await flow.handle_webhook("quiet", body, headers)
    assert after.status is PaymentStatus.SUCCEEDED
    assert after.captured_amount == XOF_5000
    assert not after.needs_review


@pytest.mark.parametrize("truth", [Outcome.FAILED, Outcome.EXPIRED, Outcome.NOT_FOUND])
async def test_a_paid_report_without_its_amount_that_the_provider_then_denies_only_flags_the_payment(
    quiet_flow: tuple[PaymentFlow, QuietProvider], truth: Outcome
) -> None:
    """The poll asked for the amount answers that the payment did not pay: two reports contradict each other,
    so neither ends the payment; an operator is asked to look."""
    flow, quiet = quiet_flow
    payment = await _quiet_processing(flow, quiet)
    body, headers = quiet.webhook(payment.id, outcome=Outcome.SUCCEEDED, amounts=False)
    if truth is Outcome.NOT_FOUND:
        del quiet.ledger[payment.id]
    else:
        quiet.settle(payment.id, truth)
    (after,) = await flow.handle_webhook("quiet", body, headers)
    assert ("check_status", payment.id) in quiet.calls
    assert after.status is PaymentStatus.PROCESSING
    assert after.needs_review
    assert after.review_reason is ReviewReason.AMOUNT_MISMATCH
    assert truth.value in after.review_message


async def test_a_report_naming_another_payments_reference_is_malformed_and_changes_nothing(
    flow: PaymentFlow, fake: FakeProvider
) -> None:
    first, second = await _processing(flow, fake), await _processing(flow, fake)
    assert second.external_id is not None
    fake.settle(first.id, Outcome.SUCCEEDED)
    body, _ = fake.webhook(first.id)
    forged = json.loads(body)
    forged["external_id"] = second.external_id  # signed by the provider, yet the reference is the other payment's
    raw = json.dumps(forged).encode()
    headers = {SIGNATURE_HEADER: sign(raw, fake.settings.secret("webhook_secret")), "content-type": "application/json"}
    events = await flow.list_events(first.id)
    with pytest.raises(MalformedWebhook, match="reference of another payment"):
        await flow.handle_webhook("fake", raw, headers)
    assert await flow.get_payment(first.id) == first
    assert await flow.get_payment(second.id) == second
    assert await flow.list_events(first.id) == events
    (paid,) = await flow.handle_webhook("fake", *fake.webhook(first.id))  # the genuine report still applies
    assert paid.status is PaymentStatus.SUCCEEDED


async def test_another_tenants_payment_is_reported_exactly_as_an_unknown_one(
    make_flow: Callable[..., PaymentFlow],
) -> None:
    tenants = {
        "chez-awa": {"providers": {"wave": {"type": "fake", "webhook_secret": "s1"}}},
        "le-baobab": {"providers": {"wave": {"type": "fake", "webhook_secret": "s2"}}},
    }
    async with make_flow(tenants=tenants) as flow:
        awa = flow.provider("wave", tenant="chez-awa")
        baobab = flow.provider("wave", tenant="le-baobab")
        assert isinstance(awa, FakeProvider)
        assert isinstance(baobab, FakeProvider)
        awa.script("initiate", "pending")
        theirs = (await flow.create_payment(amount=XOF_5000, provider="wave", order_id="o", tenant="chez-awa")).payment
        baobab.ledger[theirs.id] = awa.ledger[theirs.id]
        body, headers = baobab.webhook(theirs.id, outcome=Outcome.SUCCEEDED)
        with pytest.raises(PaymentNotFound) as foreign:
            await flow.handle_webhook("wave", body, headers, tenant="le-baobab")
        baobab.ledger["pay_nobody"] = awa.ledger[theirs.id]
        body, headers = baobab.webhook("pay_nobody", outcome=Outcome.SUCCEEDED)
        with pytest.raises(PaymentNotFound) as unknown:
            await flow.handle_webhook("wave", body, headers, tenant="le-baobab")
        assert str(foreign.value) == str(unknown.value).replace("pay_nobody", theirs.id)
        assert await flow.get_payment(theirs.id) == theirs


def test_each_report_under_one_event_id_gets_a_receipt_named_by_the_report_not_its_place() -> None:
    from paycore.webhooks import receipt_ids
    from paycore.wire import MAX_ID_LENGTH

    paid = ProviderUpdate(outcome=Outcome.SUCCEEDED, payment_id="pay_1", captured=XOF_5000, provider_event_id="e_1")
    refunded = attrs.evolve(paid, refunds=(RefundUpdate(RefundStatus.SUCCEEDED, "re_1", amount=XOF_5000),))
    alone = attrs.evolve(paid, provider_event_id="e_2")
    receipts = receipt_ids([paid, refunded, alone])
    assert receipts[2] == "e_2"  # one report to its event: the event id itself
    assert len({*receipts}) == 3
    assert receipt_ids([refunded, paid, alone]) == [receipts[1], receipts[0], "e_2"]  # in any order
    assert receipt_ids([paid, paid]) == [receipts[0], receipts[0]]  # the same report twice is one fact
    longest = [attrs.evolve(report, provider_event_id="e" * MAX_ID_LENGTH) for report in (paid, refunded)]
    assert all(len(receipt or "") <= MAX_ID_LENGTH for receipt in receipt_ids(longest))


async def test_a_new_fact_told_in_the_words_of_a_resolved_one_is_told_again(
    quiet_flow: tuple[PaymentFlow, QuietProvider], monkeypatch: pytest.MonkeyPatch
) -> None:
    flow, quiet = quiet_flow
    payment = await _quiet_processing(flow, quiet)
    quiet.settle(payment.id, Outcome.SUCCEEDED)
    quiet.poll_answer = "lost"  # the paid notice carries no amount, and asking fails: flagged
    body, headers = quiet.webhook(payment.id, amounts=False)
    (flagged,) = await flow.handle_webhook("quiet", body, headers)
    assert flagged.needs_review
    quiet.poll_answer = None
    await flow.refresh(payment.id)
    await flow.resolve_review(payment.id, note="checked: paid 5000")
    quiet.poll_answer = "lost"  # later: a refund made at the provider, its notice without amount, asking fails

    async def refund_notice(body: bytes, headers: Any) -> list[ProviderUpdate]:
        refunded = RefundUpdate(RefundStatus.SUCCEEDED, external_id="dash_re_1")
        return [ProviderUpdate(payment_id=payment.id, provider_event_id="evt_refund_1", refunds=(refunded,))]

    monkeypatch.setattr(quiet, "parse_webhook", refund_notice)
    (after,) = await flow.handle_webhook("quiet", body, headers)
    assert after.needs_review, "a refund paycore could not record is told, whatever was resolved before"
    kinds = [event.kind for event in await flow.list_events(payment.id)]
    assert kinds.count("amount_missing") == 2


async def test_a_report_naming_a_payment_by_the_reference_an_earlier_report_of_the_delivery_gives_it_is_applied(
    flow: PaymentFlow, fake: FakeProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    payment = await _processing(flow, fake)
    given = ProviderUpdate(
        outcome=Outcome.PENDING, payment_id=payment.id, external_id="fk_attempt_2", provider_event_id="evt_b"
    )
    paid = ProviderUpdate(
        outcome=Outcome.SUCCEEDED, external_id="fk_attempt_2", captured=XOF_5000, provider_event_id="evt_b"
    )

    async def batch(body: bytes, headers: Any) -> list[ProviderUpdate]:
        return [given, paid]

    monkeypatch.setattr(fake, "parse_webhook", batch)
    *_, after = await flow.handle_webhook("fake", *fake.webhook(payment.id))
    assert (after.id, after.status) == (payment.id, PaymentStatus.SUCCEEDED)

"""The admin's "Settle open payments as found at the provider…": ``flow.resolve_payment`` from the changelist.

The case it is for is mobile money's: a customer sent 8 000 XOF of a 10 000 XOF bill. The provider's report is
flagged (``amount_mismatch``) and leaves the payment processing; the operator records what the provider holds,
and the payment can then be refunded (its flag stays until the review is resolved). Every test runs through
Django's test client on SQLite, with the blocking flow on asyncio and on trio.
"""

from __future__ import annotations

from typing import Any

import admin_testing
import pytest
from admin_testing import (
    CHANGELIST,
    XOF_8000,
    act,
    action_names,
    confirm,
    fake,
    paid,
    paid_in_eur,
    select_all,
    staff_client,
    told,
)
from django.contrib import messages
from django.contrib.auth.models import User
from django.test import Client

from paycore.blocking import BlockingPaymentFlow
from paycore.money import Money
from paycore.status import Outcome, PaymentStatus, RefundStatus, ReviewReason

SETTLE = "settle_open_payments"
XOF_10000 = Money.of("10000", "XOF")
NOTE = "the customer sent 8 000; the rest was paid in cash"


# The shared fixtures, registered here under these names: the flow on asyncio and on trio, and its superuser.
flow = admin_testing.flow_on_each_backend
superuser_client = admin_testing.superuser_client


def processing(flow: BlockingPaymentFlow, amount: Money = XOF_10000) -> str:
    """A payment of ``amount`` the provider took as pending: open, awaiting its report."""
    fake(flow).script("initiate", "pending")
    payment = flow.create_payment(amount=amount, provider="fake", order_id="T7").payment
    assert payment.status is PaymentStatus.PROCESSING
    return payment.id


def underpaid(flow: BlockingPaymentFlow) -> str:
    """A 10 000 XOF payment of which the customer sent 8 000: the report is flagged, the payment left processing."""
    payment_id = processing(flow)
    fake(flow).settle(payment_id, Outcome.SUCCEEDED, captured=XOF_8000)
    (flagged,) = flow.handle_webhook("fake", *fake(flow).webhook(payment_id))
    assert (flagged.status, flagged.review_reason) == (PaymentStatus.PROCESSING, ReviewReason.AMOUNT_MISMATCH)
    return payment_id


def still_flagged(flow: BlockingPaymentFlow, payment_id: str) -> tuple[int, str]:
    """The warning that a payment settled is still flagged for review."""
    payment = flow.get_payment(payment_id)
    return (
        messages.WARNING,
        f"Payment {payment_id} was settled as {payment.status.value}, "
        f"but it still needs review: {payment.review_message} "
        "(Resolve the review of selected payments… clears it once checked).",
    )


def operator_events(flow: BlockingPaymentFlow, payment_id: str) -> list[tuple[str, str]]:
    """The events an operator's word recorded on the payment: kind and note."""
    return [(e.kind, e.message) for e in flow.list_events(payment_id) if e.cause == "operator"]


def test_the_page_lists_the_open_payments_and_names_the_others_skipped(
    flow: BlockingPaymentFlow, superuser_client: Client
) -> None:
    flagged, ended = underpaid(flow), paid(flow)
    page = act(superuser_client, SETTLE, flagged, ended)
    assert page.status_code == 200
    html = page.content.decode()
    assert [listed.id for listed in page.context["open_payments"]] == [flagged]
    assert XOF_10000.display() in html
    assert flow.get_payment(flagged).review_message in html
    assert f"No longer open, skipped: {ended} (succeeded)" in html
    assert "Amount held (XOF)" in html
    assert all(f'name="{field}"' in html for field in ("outcome", "amount", "note"))
    assert flow.get_payment(flagged).status is PaymentStatus.PROCESSING


def test_an_underpaid_payment_settled_as_succeeded_records_what_the_provider_holds_and_can_be_refunded(
    flow: BlockingPaymentFlow, superuser_client: Client
) -> None:
    payment_id = underpaid(flow)
    page = act(superuser_client, SETTLE, payment_id)
    response = confirm(superuser_client, page, CHANGELIST, outcome="succeeded", amount="8000", note=NOTE)
    assert told(response) == [
        (messages.SUCCESS, "Settled 1 payment(s) as succeeded."),
        still_flagged(flow, payment_id),
    ]
    payment = flow.get_payment(payment_id)
    assert (payment.status, payment.captured_amount, payment.review_reason) == (
        PaymentStatus.SUCCEEDED,
        XOF_8000,
        ReviewReason.AMOUNT_MISMATCH,
    )
    assert operator_events(flow, payment_id) == [("status_changed", NOTE)]
    act(superuser_client, "resolve_reviews", payment_id, apply="1", note="kept; the rest was paid in cash")
    assert not flow.get_payment(payment_id).needs_review
    refunded = act(superuser_client, "refund_payments", payment_id, apply="1", amount="", token="after")
    assert told(refunded) == [(messages.SUCCESS, "Refunded 1 payment(s).")]
    (refund,) = flow.get_payment(payment_id).refunds
    assert (refund.amount, refund.status) == (XOF_8000, RefundStatus.SUCCEEDED)


def test_a_blank_captured_amount_records_the_whole_amount(flow: BlockingPaymentFlow, superuser_client: Client) -> None:
    payment_id = processing(flow)
    page = act(superuser_client, SETTLE, payment_id)
    response = confirm(superuser_client, page, CHANGELIST, outcome="succeeded", amount="", note="in the dashboard")
    assert told(response) == [(messages.SUCCESS, "Settled 1 payment(s) as succeeded.")]
    assert flow.get_payment(payment_id).captured_amount == XOF_10000


def test_an_open_payment_settled_as_failed_took_no_money(flow: BlockingPaymentFlow, superuser_client: Client) -> None:
    payment_id = processing(flow)
    page = act(superuser_client, SETTLE, payment_id)
    response = confirm(superuser_client, page, CHANGELIST, outcome="failed", amount="", note="reversed by the bank")
    assert told(response) == [(messages.SUCCESS, "Settled 1 payment(s) as failed.")]
    payment = flow.get_payment(payment_id)
    assert (payment.status, payment.captured_amount, payment.needs_review) == (PaymentStatus.FAILED, None, False)
    assert operator_events(flow, payment_id) == [("status_changed", "reversed by the bank")]


def test_a_partial_authorization_settled_as_authorized_is_then_captured_from_the_admin(
    flow: BlockingPaymentFlow, superuser_client: Client
) -> None:
    fake(flow).script("initiate", "pending")
    payment_id = flow.create_payment(amount=XOF_10000, provider="fake", order_id="T8", capture=False).payment.id
    fake(flow).settle(payment_id, Outcome.AUTHORIZED)
    flow.handle_webhook("fake", *fake(flow).webhook(payment_id, authorized=XOF_8000))  # flagged: 8 000 of 10 000
    page = act(superuser_client, SETTLE, payment_id)
    response = confirm(superuser_client, page, CHANGELIST, outcome="authorized", amount="8000", note="held on the card")
    assert told(response) == [
        (messages.SUCCESS, "Settled 1 payment(s) as authorized."),
        still_flagged(flow, payment_id),
    ]
    held = flow.get_payment(payment_id)
    assert (held.status, held.authorized_amount, held.captured_amount) == (PaymentStatus.AUTHORIZED, XOF_8000, None)
    assert (messages.SUCCESS, "Captured 1 payment(s).") in told(act(superuser_client, "capture_payments", payment_id))
    assert flow.get_payment(payment_id).captured_amount == XOF_8000


@pytest.mark.parametrize(
    ("outcome", "typed", "said"),
    [
        ("succeeded", "8,000", "'8,000' is not an amount of XOF (not digits with at most one '.'): type digits"),
        ("succeeded", "8_000", "'8_000' is not an amount of XOF (not digits with at most one '.')"),
        ("succeeded", "8e3", "'8e3' is not an amount of XOF (not digits with at most one '.')"),
        ("succeeded", "\u0668\u0660\u0660\u0660", "'\u0668\u0660\u0660\u0660' is not an amount of XOF (not digits"),
        ("succeeded", "8000.5", "'8000.5' is not an amount of XOF (XOF has no minor unit)"),
        ("succeeded", "0", "An amount held is more than zero XOF; choose failed if none is."),
        ("authorized", "-8000", "'-8000' is not an amount of XOF (not digits with at most one '.')"),
        ("failed", "8000", "A failed payment holds nothing: leave the amount blank, or choose another outcome."),
    ],
)
def test_a_captured_amount_that_cannot_be_recorded_is_a_form_error_and_settles_nothing(
    flow: BlockingPaymentFlow, superuser_client: Client, outcome: str, typed: str, said: str
) -> None:
    payment_id = underpaid(flow)
    before = flow.get_payment(payment_id)
    page = act(superuser_client, SETTLE, payment_id)
    response = confirm(superuser_client, page, CHANGELIST, outcome=outcome, amount=typed, note=NOTE)
    assert response.status_code == 200
    (error,) = response.context["form"].errors["amount"]
    assert error.startswith(said)
    assert told(response) == []
    assert flow.get_payment(payment_id) == before


def test_a_captured_amount_for_payments_in_several_currencies_is_a_form_error(
    flow: BlockingPaymentFlow, superuser_client: Client
) -> None:
    xof, eur = processing(flow), processing(flow, Money.of("30.00", "EUR"))
    page = act(superuser_client, SETTLE, xof, eur)
    assert "The payments are in EUR and XOF: an amount can be typed only for payments of one currency." in (
        page.content.decode()
    )
    response = confirm(superuser_client, page, CHANGELIST, outcome="succeeded", amount="8000", note=NOTE)
    (error,) = response.context["form"].errors["amount"]
    assert error.startswith("The selected payments are in EUR and XOF, and an amount is in one currency")
    assert [flow.get_payment(p).status for p in (xof, eur)] == [PaymentStatus.PROCESSING] * 2
    response = confirm(superuser_client, page, CHANGELIST, outcome="succeeded", amount="", note=NOTE)
    assert told(response) == [(messages.SUCCESS, "Settled 2 payment(s) as succeeded.")]
    assert [flow.get_payment(p).captured_amount for p in (xof, eur)] == [XOF_10000, Money.of("30.00", "EUR")]


def test_more_than_the_payments_amount_is_refused_naming_the_payment(
    flow: BlockingPaymentFlow, superuser_client: Client
) -> None:
    payment_id = underpaid(flow)
    page = act(superuser_client, SETTLE, payment_id)
    response = confirm(superuser_client, page, CHANGELIST, outcome="succeeded", amount="12000", note=NOTE)
    ((level, text),) = told(response)
    assert level == messages.ERROR
    assert text.startswith(f"Not settled: {payment_id}: cannot record")
    assert flow.get_payment(payment_id).status is PaymentStatus.PROCESSING


def test_a_payment_not_open_is_skipped_and_named(flow: BlockingPaymentFlow, superuser_client: Client) -> None:
    flagged, ended = underpaid(flow), paid(flow)
    page = act(superuser_client, SETTLE, flagged, ended)
    response = confirm(superuser_client, page, CHANGELIST, outcome="succeeded", amount="8000", note=NOTE)
    assert told(response) == [
        (messages.SUCCESS, "Settled 1 payment(s) as succeeded."),
        still_flagged(flow, flagged),
        (messages.INFO, f"Skipped, no longer open: {ended} (succeeded)."),
    ]
    assert flow.get_payment(ended).captured_amount == Money.of("12500", "XOF")


def test_a_selection_without_an_open_payment_shows_no_page(flow: BlockingPaymentFlow, superuser_client: Client) -> None:
    ended, eur = paid(flow), paid_in_eur(flow)
    response = act(superuser_client, SETTLE, ended, eur)
    assert response.redirect_chain  # back to the list: no confirmation page
    skipped = ", ".join(sorted(f"{payment_id} (succeeded)" for payment_id in (ended, eur)))
    assert told(response) == [(messages.INFO, f"Nothing to settle. Skipped, no longer open: {skipped}.")]


def test_a_form_submitted_twice_settles_once_and_the_second_says_it_is_no_longer_open(
    flow: BlockingPaymentFlow, superuser_client: Client
) -> None:
    payment_id = underpaid(flow)
    page = act(superuser_client, SETTLE, payment_id)
    first = confirm(superuser_client, page, CHANGELIST, outcome="succeeded", amount="8000", note=NOTE)
    again = confirm(superuser_client, page, CHANGELIST, outcome="succeeded", amount="8000", note=NOTE)
    assert told(first)[0] == (messages.SUCCESS, "Settled 1 payment(s) as succeeded.")
    assert told(again) == [(messages.INFO, f"Skipped, no longer open: {payment_id} (succeeded).")]
    assert operator_events(flow, payment_id) == [("status_changed", NOTE)]
    assert flow.get_payment(payment_id).captured_amount == XOF_8000


def test_select_all_settles_only_the_payments_the_page_listed(
    flow: BlockingPaymentFlow, superuser_client: Client
) -> None:
    shown = [processing(flow), processing(flow)]
    page = select_all(superuser_client, SETTLE, shown[0])
    late = processing(flow)  # a customer starts paying while the operator reads the page
    response = confirm(superuser_client, page, CHANGELIST, outcome="failed", amount="", note="gone")
    assert told(response) == [(messages.SUCCESS, "Settled 2 payment(s) as failed.")]
    statuses = [flow.get_payment(payment_id).status for payment_id in [*shown, late]]
    assert statuses == [PaymentStatus.FAILED, PaymentStatus.FAILED, PaymentStatus.PROCESSING]


@pytest.mark.parametrize(
    "tampered",
    [
        {"select_across": "1"},  # "all that match the filter": a payment the page did not list
        {"_selected_action": ["pay\x00x"]},
    ],
    ids=["not-the-listed-payments", "nul-in-an-id"],
)
def test_a_tampered_selection_settles_nothing(
    flow: BlockingPaymentFlow, superuser_client: Client, tampered: dict[str, Any]
) -> None:
    listed, other = underpaid(flow), processing(flow)
    assert [payment.id for payment in act(superuser_client, SETTLE, listed).context["open_payments"]] == [listed]
    data = {"action": SETTLE, "_selected_action": [listed], "apply": "1", "outcome": "succeeded", "note": NOTE}
    if "_selected_action" in tampered:
        tampered = {"_selected_action": [listed, *tampered["_selected_action"]]}
    response = superuser_client.post(CHANGELIST, {**data, "amount": "", **tampered}, follow=True)
    ((level, text),) = told(response)
    assert level == messages.ERROR
    assert text.startswith("Nothing was done:")
    assert [flow.get_payment(p).status for p in (listed, other)] == [PaymentStatus.PROCESSING] * 2


def test_settling_open_payments_needs_the_review_and_the_refund_permissions(flow: BlockingPaymentFlow) -> None:
    payment_id = underpaid(flow)
    for codenames in [(), ("review_payment",), ("refund_payment",)]:
        client = staff_client(*codenames, "capture_payment", "cancel_payment", "refresh_payment")
        assert SETTLE not in action_names(client)
        response = act(client, SETTLE, payment_id, apply="1", outcome="succeeded", amount="", note=NOTE)
        assert response.status_code == 200
        assert flow.get_payment(payment_id).status is PaymentStatus.PROCESSING
        User.objects.filter(username="clerk").delete()
    allowed = staff_client("review_payment", "refund_payment")
    assert SETTLE in action_names(allowed)
    response = act(allowed, SETTLE, payment_id, apply="1", outcome="succeeded", amount="8000", note=NOTE)
    assert told(response)[0] == (messages.SUCCESS, "Settled 1 payment(s) as succeeded.")


@pytest.fixture(params=admin_testing.BACKENDS)
def quick_flow(transactional_db: None, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> Any:
    """The served flow, its provider calls timing out after 0.1 s and held for 0.3 s: a call's request is past
    arriving within half a second, so an operator may settle it."""
    quick = {"provider_timeout": 0.1, "idempotency_lease": 0.3}
    monkeypatch.setattr(admin_testing, "CONFIG", {**admin_testing.CONFIG, **quick})
    with admin_testing.served_flow(monkeypatch, request.param) as blocking:
        yield blocking


def test_an_authorized_payment_whose_provider_captured_another_amount_is_settled_as_captured(
    quick_flow: BlockingPaymentFlow, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Asked to capture 8 000 of a 10 000 XOF hold, the provider took all of it: the payment stays authorized,
    flagged, its capture in doubt (no capture or cancel is sent again), and the page did not offer it to settle."""
    import time

    from paycore.testing.fake import FakeProvider

    flow = quick_flow
    client = Client()
    client.force_login(User.objects.create_superuser("boss", "boss@example.com", "pw"))
    payment_id = flow.create_payment(amount=XOF_10000, provider="fake", order_id="T9", capture=False).payment.id
    takes_all = FakeProvider.capture
    monkeypatch.setattr(fake(flow), "capture", lambda paid, amount: takes_all(fake(flow), paid, paid.amount))
    in_doubt = flow.capture(payment_id, amount=XOF_8000)
    assert (in_doubt.status, in_doubt.review_reason) == (PaymentStatus.AUTHORIZED, ReviewReason.AMOUNT_MISMATCH)
    assert in_doubt.pending_call is not None
    time.sleep(0.6)  # the capture's request is past arriving at the provider
    page = act(client, SETTLE, payment_id)
    assert [listed.id for listed in page.context["open_payments"]] == [payment_id]
    done = confirm(client, page, CHANGELIST, outcome="succeeded", amount="10000", note="the dashboard shows all")
    assert (messages.SUCCESS, "Settled 1 payment(s) as succeeded.") in told(done)
    settled = flow.get_payment(payment_id)
    assert (settled.status, settled.captured_amount, settled.pending_call) == (PaymentStatus.SUCCEEDED, XOF_10000, None)
    assert fake(flow).calls.count(("capture", payment_id)) == 1

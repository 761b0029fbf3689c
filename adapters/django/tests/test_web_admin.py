"""The admin: payments are readable, nothing is editable, and actions go through the flow."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import admin_testing
import pytest
from admin_testing import (
    CHANGELIST,
    CONFIG,
    act,
    action_names,
    confirm,
    fake,
    flagged,
    hidden_fields,
    page_of,
    paid,
    paid_in_eur,
    pending_refund,
    select_all,
    served_flow,
    staff_client,
    told,
)
from django.contrib import messages
from django.contrib.auth.models import User
from django.test import Client, override_settings
from django.urls import path
from paycore_django_test_databases import SECOND_ALIAS, atomic_requests_on

import paycore.testing.fake
import paycore_django
from paycore.blocking import BlockingPaymentFlow
from paycore.money import Money
from paycore.records import RefundUpdate
from paycore.status import FraudStatus, Outcome, PaymentStatus, RefundStatus
from paycore_django.models import Payment as PaymentRow


def admin_urls() -> list[Any]:
    from django.contrib import admin

    return [path("admin/", admin.site.urls)]


urlpatterns = admin_urls()


@pytest.fixture
def flow(transactional_db: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[BlockingPaymentFlow]:
    """A blocking flow on the Django ORM, served as the process's flow to the admin."""
    with served_flow(monkeypatch) as blocking, override_settings(ROOT_URLCONF=__name__):
        yield blocking


superuser_client = admin_testing.superuser_client  # the shared fixture, registered here under its name


def test_the_list_shows_amounts_in_their_currency(flow: BlockingPaymentFlow, superuser_client: Client) -> None:
    payment_id = paid(flow)
    flow.refund(payment_id, amount=Money.of("2500", "XOF"))
    page = superuser_client.get(CHANGELIST)
    assert page.status_code == 200
    html = page.content.decode()
    assert payment_id in html
    assert Money.of("12500", "XOF").display() in html
    assert Money.of("2500", "XOF").display() in html


def test_search_finds_a_payment_by_order(flow: BlockingPaymentFlow, superuser_client: Client) -> None:
    payment_id = paid(flow)
    assert payment_id in superuser_client.get(CHANGELIST, {"q": "T4-17"}).content.decode()
    assert payment_id not in superuser_client.get(CHANGELIST, {"q": "T9-99"}).content.decode()


def test_no_field_of_a_payment_is_editable(flow: BlockingPaymentFlow, superuser_client: Client) -> None:
    payment_id = paid(flow)
    url = page_of(payment_id)
    page = superuser_client.get(url)
    assert page.status_code == 200
    html = page.content.decode()
    for field in ("status", "amount", "captured", "version", "needs_review"):
        assert f'name="{field}"' not in html
    posted = superuser_client.post(url, {"status": "refunded", "amount": "1", "captured": "0"})
    assert posted.status_code == 403
    row = PaymentRow.objects.get(pk=payment_id)
    assert (row.status, row.amount, row.captured) == ("succeeded", 12500, 12500)


def test_payments_can_be_neither_added_nor_deleted(flow: BlockingPaymentFlow, superuser_client: Client) -> None:
    payment_id = paid(flow)
    assert superuser_client.get(f"{CHANGELIST}add/").status_code == 403
    assert superuser_client.post(page_of(payment_id, "delete"), {"post": "yes"}).status_code == 403
    assert "delete_selected" not in action_names(superuser_client)
    assert PaymentRow.objects.filter(pk=payment_id).exists()


def test_events_and_refunds_are_shown_read_only(flow: BlockingPaymentFlow, superuser_client: Client) -> None:
    payment_id = paid(flow)
    refund = flow.refund(payment_id, amount=Money.of("2500", "XOF"))
    page = superuser_client.get(page_of(payment_id))
    assert page.status_code == 200
    html = page.content.decode()
    assert refund.id in html
    assert "refund_created" in html or "refund" in html
    assert 'name="refunds-0-amount"' not in html
    assert 'name="events-0-kind"' not in html


def test_capture_goes_through_the_flow(flow: BlockingPaymentFlow, superuser_client: Client) -> None:
    payment_id = paid(flow, capture=False)
    response = act(superuser_client, "capture_payments", payment_id)
    assert "Captured 1 payment(s)." in response.content.decode()
    payment = flow.get_payment(payment_id)
    assert payment.status is PaymentStatus.SUCCEEDED
    assert payment.captured_amount == Money.of("12500", "XOF")


def test_a_refused_action_names_the_payment_and_the_reason(flow: BlockingPaymentFlow, superuser_client: Client) -> None:
    payment_id = paid(flow)
    response = act(superuser_client, "capture_payments", payment_id)
    assert f"Not captured: {payment_id}" in response.content.decode()
    assert flow.get_payment(payment_id).status is PaymentStatus.SUCCEEDED


@pytest.mark.parametrize(
    ("action", "operation", "refused"),
    [("capture_payments", "capture", "Not captured"), ("cancel_payments", "cancel", "Not canceled")],
)
def test_a_declined_capture_or_cancel_is_told_declined_not_done(
    flow: BlockingPaymentFlow, superuser_client: Client, action: str, operation: str, refused: str
) -> None:
    payment_id = paid(flow, capture=False)
    fake(flow).script(operation, "decline")
    shown = told(act(superuser_client, action, payment_id))
    assert shown == [
        (messages.ERROR, f"{refused}: {payment_id}: the provider declined the {operation}; the payment is authorized.")
    ]
    assert flow.get_payment(payment_id).status is PaymentStatus.AUTHORIZED


@pytest.mark.parametrize(("action", "operation"), [("capture_payments", "capture"), ("cancel_payments", "cancel")])
def test_a_lost_answer_is_told_unknown_and_a_refresh_settles_it(
    flow: BlockingPaymentFlow, superuser_client: Client, action: str, operation: str
) -> None:
    payment_id = paid(flow, capture=False)
    fake(flow).script(operation, "lost")
    ((level, text),) = told(act(superuser_client, action, payment_id))
    assert level == messages.WARNING
    assert text.startswith(f"The {operation} of {payment_id} was sent, but its outcome is unknown")
    assert "it will be checked with the provider" in text
    assert told(act(superuser_client, "refresh_payments", payment_id)) == [
        (messages.SUCCESS, "Refreshed 1 payment(s).")
    ]
    settled = PaymentStatus.SUCCEEDED if operation == "capture" else PaymentStatus.CANCELED
    assert flow.get_payment(payment_id).status is settled


@pytest.mark.parametrize(
    ("answer", "level", "says"),
    [
        ("decline", messages.ERROR, "Not refunded: {id}: the provider declined the refund of 2 500 XOF."),
        ("pending", messages.WARNING, "The refund of 2 500 XOF of {id} was sent, awaiting the provider."),
        ("lost", messages.WARNING, "The refund of 2 500 XOF of {id} was sent, but its outcome is unknown"),
    ],
)
def test_a_refund_not_done_is_told_what_happened(
    flow: BlockingPaymentFlow, superuser_client: Client, answer: str, level: int, says: str
) -> None:
    payment_id = paid(flow)
    fake(flow).script("refund", answer)
    response = act(superuser_client, "refund_payments", payment_id, apply="1", amount="2500", token=answer)
    ((shown_level, text),) = told(response)
    assert shown_level == level
    assert text.startswith(says.format(id=payment_id))
    assert flow.get_payment(payment_id).refunded_amount == Money.of("0", "XOF")


def test_of_several_payments_only_those_done_are_counted(flow: BlockingPaymentFlow, superuser_client: Client) -> None:
    captured, declined = paid(flow, capture=False), paid(flow, capture=False)
    fake(flow).script("capture", "approve", "decline")  # the oldest is captured first
    shown = told(act(superuser_client, "capture_payments", captured, declined))
    assert shown[0] == (messages.SUCCESS, "Captured 1 payment(s).")
    assert shown[1][0] == messages.ERROR
    assert shown[1][1].startswith(f"Not captured: {declined}: the provider declined the capture")


def test_cancel_releases_an_authorization(flow: BlockingPaymentFlow, superuser_client: Client) -> None:
    payment_id = paid(flow, capture=False)
    act(superuser_client, "cancel_payments", payment_id)
    assert flow.get_payment(payment_id).status is PaymentStatus.CANCELED


def test_refund_asks_the_amount_first(flow: BlockingPaymentFlow, superuser_client: Client) -> None:
    payment_id = paid(flow)
    page = act(superuser_client, "refund_payments", payment_id)
    assert 'name="amount"' in page.content.decode()
    assert flow.get_payment(payment_id).refunds == ()


def test_refund_of_part_of_a_payment(flow: BlockingPaymentFlow, superuser_client: Client) -> None:
    payment_id = paid(flow)
    act(superuser_client, "refund_payments", payment_id, apply="1", amount="2500", reason="cold soup", token="t1")
    payment = flow.get_payment(payment_id)
    assert [(r.amount, r.status, r.reason) for r in payment.refunds] == [
        (Money.of("2500", "XOF"), RefundStatus.SUCCEEDED, "cold soup")
    ]
    assert payment.status is PaymentStatus.PARTIALLY_REFUNDED


def test_a_resubmitted_refund_form_refunds_once(flow: BlockingPaymentFlow, superuser_client: Client) -> None:
    payment_id = paid(flow)
    for _ in range(2):
        act(superuser_client, "refund_payments", payment_id, apply="1", amount="2500", token="same")
    assert len(flow.get_payment(payment_id).refunds) == 1


def test_a_refund_above_what_was_captured_is_refused(flow: BlockingPaymentFlow, superuser_client: Client) -> None:
    payment_id = paid(flow)
    response = act(superuser_client, "refund_payments", payment_id, apply="1", amount="20000", token="t2")
    assert f"Not refunded: {payment_id}" in response.content.decode()
    assert flow.get_payment(payment_id).refunds == ()


def test_an_amount_the_currency_cannot_hold_is_refused(flow: BlockingPaymentFlow, superuser_client: Client) -> None:
    payment_id = paid(flow)
    response = act(superuser_client, "refund_payments", payment_id, apply="1", amount="10.5", token="t3")
    assert "XOF" in response.content.decode()
    assert flow.get_payment(payment_id).refunds == ()


@pytest.mark.parametrize(
    ("typed", "said"),
    [
        ("1,000", "'1,000' is not an amount of XOF (not digits with at most one '.'): type digits and at most one"),
        ("12_50", "'12_50' is not an amount of XOF (not digits with at most one '.')"),
        ("1e3", "'1e3' is not an amount of XOF (not digits with at most one '.')"),
        ("+100", "'+100' is not an amount of XOF (not digits with at most one '.')"),
        ("\u0661\u0662\u0663", "'\u0661\u0662\u0663' is not an amount of XOF (not digits with at most one '.')"),
        ("10.5", "'10.5' is not an amount of XOF (XOF has no minor unit)"),
        ("10.000", "'10.000' is not an amount of XOF (XOF has no minor unit)"),  # ten thousand, never ten
        ("0", "A refund is more than zero XOF; leave it blank to refund all."),
        ("-2500", "'-2500' is not an amount of XOF (not digits with at most one '.')"),
    ],
)
def test_a_typed_amount_that_is_no_refund_of_the_currency_is_a_form_error_and_refunds_nothing(
    flow: BlockingPaymentFlow, superuser_client: Client, typed: str, said: str
) -> None:
    payment_id = paid(flow)
    page = act(superuser_client, "refund_payments", payment_id)
    response = confirm(superuser_client, page, CHANGELIST, amount=typed, reason="")
    assert response.status_code == 200
    (error,) = response.context["form"].errors["amount"]
    assert error.startswith(said)
    assert told(response) == []
    assert flow.get_payment(payment_id).refunds == ()


def refunded(flow: BlockingPaymentFlow, *payment_ids: str) -> list[Money]:
    return [flow.get_payment(payment_id).refunded_amount for payment_id in payment_ids]


def test_the_refund_page_says_which_currency_the_amount_is_in(
    flow: BlockingPaymentFlow, superuser_client: Client
) -> None:
    one = act(superuser_client, "refund_payments", paid(flow), paid(flow)).content.decode()
    assert "Amount (XOF)" in one
    assert "In XOF, in major units" in one
    several = act(superuser_client, "refund_payments", paid(flow), paid_in_eur(flow)).content.decode()
    assert "The payments are in EUR and XOF: an amount can be typed only for payments of one currency." in several


def test_an_amount_typed_for_payments_in_several_currencies_refunds_none(
    flow: BlockingPaymentFlow, superuser_client: Client
) -> None:
    xof, eur = paid(flow), paid_in_eur(flow)
    response = act(superuser_client, "refund_payments", xof, eur, apply="1", amount="2500", token="t5")
    assert told(response) == [
        (
            messages.ERROR,
            "Nothing was refunded: the selected payments are in EUR and XOF, and an amount is in one currency. "
            "Select payments of one currency, or leave the amount blank to refund all that is left of each payment.",
        )
    ]
    assert flow.get_payment(xof).refunds == flow.get_payment(eur).refunds == ()


def test_an_amount_typed_for_payments_in_one_currency_refunds_it_from_each(
    flow: BlockingPaymentFlow, superuser_client: Client
) -> None:
    first, second = paid(flow), paid(flow)
    response = act(superuser_client, "refund_payments", first, second, apply="1", amount="2500", token="t6")
    assert (messages.SUCCESS, "Refunded 2 payment(s).") in told(response)
    assert refunded(flow, first, second) == [Money.of("2500", "XOF")] * 2


def test_a_blank_amount_refunds_what_is_left_of_each_payment_in_its_currency(
    flow: BlockingPaymentFlow, superuser_client: Client
) -> None:
    xof, eur = paid(flow), paid_in_eur(flow)
    flow.refund(xof, amount=Money.of("2500", "XOF"))
    response = act(superuser_client, "refund_payments", xof, eur, apply="1", amount="", token="t7")
    assert (messages.SUCCESS, "Refunded 2 payment(s).") in told(response)
    assert refunded(flow, xof, eur) == [Money.of("12500", "XOF"), Money.of("3000.00", "EUR")]


def test_refresh_asks_the_provider(flow: BlockingPaymentFlow, superuser_client: Client) -> None:
    fake = flow.flow.provider("fake")
    assert isinstance(fake, paycore.testing.fake.FakeProvider)
    fake.script("initiate", "pending")
    payment_id = paid(flow)
    fake.settle(payment_id, Outcome.SUCCEEDED)
    act(superuser_client, "refresh_payments", payment_id)
    assert flow.get_payment(payment_id).status is PaymentStatus.SUCCEEDED


def test_fraud_status_and_review_are_set_through_the_flow(flow: BlockingPaymentFlow, superuser_client: Client) -> None:
    payment_id = paid(flow)
    act(superuser_client, "set_fraud_status", payment_id, apply="1", fraud_status="review", message="odd card")
    payment = flow.get_payment(payment_id)
    assert payment.fraud_status is FraudStatus.REVIEW
    assert payment.needs_review
    act(superuser_client, "resolve_reviews", payment_id, apply="1", note="called the customer")
    assert not flow.get_payment(payment_id).needs_review
    kinds = [event.kind for event in flow.list_events(payment_id)]
    assert "review_resolved" in kinds


def test_staff_see_only_the_actions_they_are_allowed(flow: BlockingPaymentFlow) -> None:
    assert action_names(staff_client("capture_payment")) == {"capture_payments"}


def test_staff_without_the_permission_cannot_refund(flow: BlockingPaymentFlow) -> None:
    payment_id = paid(flow)
    client = staff_client()
    act(client, "refund_payments", payment_id, apply="1", amount="2500", token="t4")
    assert flow.get_payment(payment_id).refunds == ()


@pytest.fixture(params=["default", SECOND_ALIAS], ids=["default", "second alias"])
def atomic_requests(
    flow: BlockingPaymentFlow, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> Iterator[None]:
    """``ATOMIC_REQUESTS`` on the SQLite ``default`` database (``IMMEDIATE``), or on a second alias of its file."""
    with atomic_requests_on(request.param, monkeypatch, 1):
        yield


@pytest.mark.usefixtures("atomic_requests")
def test_the_actions_work_under_atomic_requests_on_sqlite(flow: BlockingPaymentFlow, superuser_client: Client) -> None:
    payment_id = paid(flow)
    response = act(superuser_client, "refund_payments", payment_id, apply="1", amount="2500", reason="x", token="t")
    assert "Refunded 1 payment(s)." in response.content.decode()
    assert flow.get_payment(payment_id).refunded_amount == Money.of("2500", "XOF")


@pytest.mark.parametrize("status", [PaymentStatus.EXPIRED, PaymentStatus.FAILED])
def test_a_cancel_that_finds_the_payment_ended_unpaid_is_told_there_was_nothing_to_cancel(
    status: PaymentStatus,
) -> None:
    from paycore.testing.records import make_payment
    from paycore_django.admin_outcomes import cancel_outcome

    payment = make_payment(status=status)
    outcome = cancel_outcome(payment)
    assert (outcome.done, outcome.level) == (True, messages.INFO)
    assert outcome.message == f"Nothing to cancel: payment {payment.id} is {status.value}."


# -- confirmation pages act on what they listed ------------------------------------------------


CONFIRMED_ACTIONS = [
    ("refund_payments", {"amount": "", "reason": "cold soup"}, lambda p: p.refunds != ()),
    ("resolve_reviews", {"note": "called the customer"}, lambda p: not p.needs_review),
    ("set_fraud_status", {"fraud_status": "rejected"}, lambda p: p.fraud_status is FraudStatus.REJECTED),
]


@pytest.mark.parametrize(("action", "form", "acted_on"), CONFIRMED_ACTIONS, ids=[a[0] for a in CONFIRMED_ACTIONS])
def test_select_all_acts_only_on_the_payments_the_confirmation_page_listed(
    flow: BlockingPaymentFlow, superuser_client: Client, action: str, form: dict[str, str], acted_on: Any
) -> None:
    shown = [flagged(flow), flagged(flow)]
    page = select_all(superuser_client, action, shown[0])
    assert all(payment_id in page.content.decode() for payment_id in shown)
    late = flagged(flow)  # a customer pays while the operator reads the page
    confirm(superuser_client, page, CHANGELIST, **form)
    assert [acted_on(flow.get_payment(payment_id)) for payment_id in [*shown, late]] == [True, True, False]


def test_nothing_is_done_when_a_listed_payment_left_the_list_before_apply(
    flow: BlockingPaymentFlow, superuser_client: Client
) -> None:
    url = f"{CHANGELIST}?status__exact=succeeded"
    stays, leaves = paid(flow), paid(flow)
    page = select_all(superuser_client, "refund_payments", stays, url)
    flow.refund(leaves)  # refunded elsewhere meanwhile: no longer "succeeded"
    response = confirm(superuser_client, page, url, amount="", reason="")
    ((level, text),) = told(response)
    assert level == messages.ERROR
    assert text.startswith("Nothing was done: the payments are not those the confirmation page listed")
    assert leaves in text
    assert flow.get_payment(stays).refunds == ()


@override_settings(DATA_UPLOAD_MAX_NUMBER_FIELDS=9)
def test_more_payments_than_a_confirmation_page_can_post_back_are_refused_up_front(
    flow: BlockingPaymentFlow, superuser_client: Client
) -> None:
    shown = [paid(flow) for _ in range(3)]  # 3 ids, 2 form fields and 5 of the page's own: 10 fields
    response = select_all(superuser_client, "refund_payments", shown[0])
    ((level, text),) = told(superuser_client.get(response.url))
    assert level == messages.ERROR
    assert "3 payments are selected, more than a confirmation page can list" in text
    assert all(flow.get_payment(payment_id).refunds == () for payment_id in shown)


# -- settling pending refunds -------------------------------------------------------------------

SETTLE = "settle_pending_refunds"


def listed_refunds(page: Any) -> list[str]:
    """The refund ids a confirmation page posts back on Apply."""
    return [value for name, value in hidden_fields(page) if name == "_listed_refund"]


def refund_statuses(flow: BlockingPaymentFlow, payment_id: str) -> dict[str, RefundStatus]:
    return {refund.id: refund.status for refund in flow.get_payment(payment_id).refunds}


def test_settling_lists_the_pending_refunds_only_and_names_the_payments_without_one(
    flow: BlockingPaymentFlow, superuser_client: Client
) -> None:
    holding, without = paid(flow), paid(flow)
    done = flow.refund(holding, amount=Money.of("1000", "XOF")).id
    pending = pending_refund(flow, holding)
    page = act(superuser_client, SETTLE, holding, without)
    html = page.content.decode()
    assert listed_refunds(page) == [pending]
    assert pending in html
    assert Money.of("2500", "XOF").display() in html
    assert done not in html
    assert f"No pending refund, skipped: {without}" in html
    assert 'name="note"' in html
    assert 'name="outcome"' in html
    assert refund_statuses(flow, holding) == {done: RefundStatus.SUCCEEDED, pending: RefundStatus.PENDING}


def test_settling_when_no_selected_payment_has_a_pending_refund_names_them_skipped(
    flow: BlockingPaymentFlow, superuser_client: Client
) -> None:
    payment_id = paid(flow)
    flow.refund(payment_id, amount=Money.of("1000", "XOF"))
    response = act(superuser_client, SETTLE, payment_id)
    assert told(response) == [(messages.INFO, f"Nothing to settle. Skipped, no pending refund: {payment_id}.")]


def test_many_payments_skipped_are_named_by_a_few_and_counted(
    flow: BlockingPaymentFlow, superuser_client: Client
) -> None:
    holding, without = paid(flow), sorted(paid(flow) for _ in range(7))
    pending_refund(flow, holding)
    page = act(superuser_client, SETTLE, holding, *without)
    assert f"No pending refund, skipped: {', '.join(without[:5])} and 2 more" in page.content.decode()
    response = confirm(superuser_client, page, CHANGELIST, outcome="succeeded", note="n")
    assert (messages.INFO, f"Skipped, no pending refund: {', '.join(without[:5])} and 2 more.") in told(response)


def test_a_pending_refund_settled_as_succeeded_is_refunded_with_the_operators_note(
    flow: BlockingPaymentFlow, superuser_client: Client
) -> None:
    holding, without = paid(flow), paid(flow)
    refund_id = pending_refund(flow, holding)
    page = act(superuser_client, SETTLE, holding, without)
    response = confirm(superuser_client, page, CHANGELIST, outcome="succeeded", note="done, per the dashboard")
    assert told(response) == [
        (messages.SUCCESS, "Settled 1 refund(s) as succeeded."),
        (messages.INFO, f"Skipped, no pending refund: {without}."),
    ]
    payment = flow.get_payment(holding)
    assert (payment.refunds[0].status, payment.refunded_amount, payment.status) == (
        RefundStatus.SUCCEEDED,
        Money.of("2500", "XOF"),
        PaymentStatus.PARTIALLY_REFUNDED,
    )
    settled = [e for e in flow.list_events(holding) if e.kind == "refund_status_changed"]
    assert [(e.refund_id, e.cause, e.message) for e in settled] == [(refund_id, "operator", "done, per the dashboard")]
    assert flow.get_payment(without).refunds == ()


def test_a_pending_refund_settled_as_failed_leaves_its_amount_refundable_again(
    flow: BlockingPaymentFlow, superuser_client: Client
) -> None:
    payment_id = paid(flow)
    refund_id = pending_refund(flow, payment_id, "12500")
    page = act(superuser_client, SETTLE, payment_id)
    response = confirm(superuser_client, page, CHANGELIST, outcome="failed", note="never reached the gateway")
    assert told(response) == [(messages.SUCCESS, "Settled 1 refund(s) as failed.")]
    payment = flow.get_payment(payment_id)
    assert (payment.refunds[0].status, payment.refunded_amount, payment.refundable_amount) == (
        RefundStatus.FAILED,
        Money.of("0", "XOF"),
        Money.of("12500", "XOF"),
    )
    assert payment.status is PaymentStatus.SUCCEEDED
    response = act(superuser_client, "refund_payments", payment_id, apply="1", amount="", token="again")
    assert told(response) == [(messages.SUCCESS, "Refunded 1 payment(s).")]
    (again,) = (r for r in flow.get_payment(payment_id).refunds if r.id != refund_id)
    assert (again.amount, again.status) == (Money.of("12500", "XOF"), RefundStatus.SUCCEEDED)


def test_a_listed_refund_a_webhook_settled_before_apply_is_told_and_left_alone(
    flow: BlockingPaymentFlow, superuser_client: Client
) -> None:
    payment_id = paid(flow)
    reported, still_pending = pending_refund(flow, payment_id), pending_refund(flow, payment_id)
    page = act(superuser_client, SETTLE, payment_id)
    assert listed_refunds(page) == [reported, still_pending]
    report = RefundUpdate(RefundStatus.SUCCEEDED, reported, amount=Money.of("2500", "XOF"))
    flow.handle_webhook("fake", *fake(flow).webhook(payment_id, refunds=[report]))  # while the operator reads
    response = confirm(superuser_client, page, CHANGELIST, outcome="failed", note="not at the provider")
    assert told(response) == [
        (messages.SUCCESS, "Settled 1 refund(s) as failed."),
        (
            messages.WARNING,
            f"Not settled: refund {reported} of {payment_id} is succeeded, no longer pending: left as it is.",
        ),
    ]
    assert refund_statuses(flow, payment_id) == {reported: RefundStatus.SUCCEEDED, still_pending: RefundStatus.FAILED}
    assert flow.get_payment(payment_id).refunded_amount == Money.of("2500", "XOF")


def test_a_refund_made_pending_after_the_page_was_shown_is_left_pending(
    flow: BlockingPaymentFlow, superuser_client: Client
) -> None:
    payment_id = paid(flow)
    listed = pending_refund(flow, payment_id)
    page = act(superuser_client, SETTLE, payment_id)
    late = pending_refund(flow, payment_id)  # another refund while the operator reads the page
    response = confirm(superuser_client, page, CHANGELIST, outcome="succeeded", note="seen done")
    assert told(response) == [
        (messages.SUCCESS, "Settled 1 refund(s) as succeeded."),
        (
            messages.WARNING,
            f"Left pending: refund {late} of {payment_id} was not on the confirmation page; "
            "select the payment again to settle it.",
        ),
    ]
    assert refund_statuses(flow, payment_id) == {listed: RefundStatus.SUCCEEDED, late: RefundStatus.PENDING}


def test_settling_a_refund_of_a_payment_flagged_for_review_says_the_flag_stays(
    flow: BlockingPaymentFlow, superuser_client: Client
) -> None:
    payment_id = paid(flow)
    refund_id = pending_refund(flow, payment_id)
    flow.set_fraud_status(payment_id, FraudStatus.REVIEW, message="odd card")
    page = act(superuser_client, SETTLE, payment_id)
    shown = told(confirm(superuser_client, page, CHANGELIST, outcome="succeeded", note="seen done"))
    assert shown == [
        (messages.SUCCESS, "Settled 1 refund(s) as succeeded."),
        (
            messages.WARNING,
            f"Refund {refund_id} of {payment_id} was settled, but the payment still needs review: odd card "
            "(Resolve the review of selected payments… clears it).",
        ),
    ]
    assert flow.get_payment(payment_id).needs_review


def test_select_all_settles_only_the_refunds_of_the_payments_the_page_listed(
    flow: BlockingPaymentFlow, superuser_client: Client
) -> None:
    shown = [paid(flow), paid(flow)]
    refunds = [pending_refund(flow, payment_id) for payment_id in shown]
    page = select_all(superuser_client, SETTLE, shown[0])
    assert sorted(listed_refunds(page)) == sorted(refunds)
    late = paid(flow)
    late_refund = pending_refund(flow, late)
    response = confirm(superuser_client, page, CHANGELIST, outcome="succeeded", note="seen done")
    assert told(response) == [(messages.SUCCESS, "Settled 2 refund(s) as succeeded.")]
    assert refund_statuses(flow, late) == {late_refund: RefundStatus.PENDING}


def test_settling_without_a_note_is_refused_with_the_form_error_and_changes_nothing(
    flow: BlockingPaymentFlow, superuser_client: Client
) -> None:
    payment_id = paid(flow)
    refund_id = pending_refund(flow, payment_id)
    page = act(superuser_client, SETTLE, payment_id)
    response = confirm(superuser_client, page, CHANGELIST, outcome="succeeded", note="")
    assert response.status_code == 200
    assert response.context["form"].errors == {"note": ["This field is required."]}
    assert listed_refunds(response) == [refund_id]
    assert refund_statuses(flow, payment_id) == {refund_id: RefundStatus.PENDING}
    assert flow.get_payment(payment_id).refunded_amount == Money.of("0", "XOF")


def test_settling_pending_refunds_needs_the_refund_permission(flow: BlockingPaymentFlow) -> None:
    payment_id = paid(flow)
    refund_id = pending_refund(flow, payment_id)
    client = staff_client("review_payment", "capture_payment", "cancel_payment", "refresh_payment")
    assert SETTLE not in action_names(client)
    act(client, SETTLE, payment_id, apply="1", outcome="succeeded", note="n", _listed_refund=refund_id)
    assert refund_statuses(flow, payment_id) == {refund_id: RefundStatus.PENDING}
    User.objects.filter(username="clerk").delete()
    assert action_names(staff_client("refund_payment")) == {"refund_payments", SETTLE}


def test_a_posted_refund_of_a_payment_not_selected_is_not_settled(
    flow: BlockingPaymentFlow, superuser_client: Client
) -> None:
    selected, other = paid(flow), paid(flow)
    other_refund = pending_refund(flow, other)
    data = {"apply": "1", "outcome": "succeeded", "note": "n", "_listed_refund": other_refund}
    response = act(superuser_client, SETTLE, selected, **data)
    assert told(response) == [
        (messages.ERROR, f"Not settled: {other_refund}: not refunds of the listed payments."),
        (messages.INFO, f"Skipped, no pending refund: {selected}."),
    ]
    assert refund_statuses(flow, other) == {other_refund: RefundStatus.PENDING}


def test_a_listed_refund_id_holding_a_nul_does_nothing_and_says_so(
    flow: BlockingPaymentFlow, superuser_client: Client
) -> None:
    payment_id = paid(flow)
    refund_id = pending_refund(flow, payment_id)
    data = {"apply": "1", "outcome": "succeeded", "note": "n"}
    response = superuser_client.post(
        CHANGELIST,
        {"action": SETTLE, "_selected_action": [payment_id], "_listed_refund": [refund_id, "re\x00x"], **data},
        follow=True,
    )
    assert [text for _, text in told(response)] == ["Nothing was done: a listed refund id is not a refund's id."]
    assert refund_statuses(flow, payment_id) == {refund_id: RefundStatus.PENDING}


@override_settings(DATA_UPLOAD_MAX_NUMBER_FIELDS=11)
def test_more_pending_refunds_than_a_confirmation_page_can_post_back_are_refused_up_front(
    flow: BlockingPaymentFlow, superuser_client: Client
) -> None:
    shown = [paid(flow), paid(flow)]
    for payment_id in (shown[0], *shown):
        pending_refund(flow, payment_id)
    response = select_all(superuser_client, SETTLE, shown[0])  # 2 ids, 3 refunds, 2 form fields, 5 more: 12
    ((level, text),) = told(superuser_client.get(response.url))
    assert level == messages.ERROR
    assert "2 payments with 3 pending refunds are selected, more than a confirmation page can list" in text
    assert all(status is RefundStatus.PENDING for p in shown for status in refund_statuses(flow, p).values())


# -- payments on another database --------------------------------------------------------------

POSTGRES = "postgres"
"""The test project's second database (conftest.py)."""

ON_POSTGRES = {
    **CONFIG,
    "repository": {"type": "django", "using": POSTGRES},
    "idempotency": {"type": "django", "using": POSTGRES},
}


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, databases=["default", POSTGRES])
def test_the_admin_shows_and_acts_on_payments_stored_on_another_database() -> None:
    settings = {"PAYCORE": ON_POSTGRES, "PAYCORE_DJANGO": {"PLUGINS": ["paycore.testing.fake"]}}
    with override_settings(ROOT_URLCONF=__name__, **settings):
        flow = paycore_django.blocking_flow()
        payment_id = paid(flow)
        refund = flow.refund(payment_id, amount=Money.of("2500", "XOF"))
        client = Client()
        client.force_login(User.objects.create_superuser("boss", "boss@example.com", "pw"))
        listed = client.get(CHANGELIST)
        assert listed.context["cl"].result_count == 1
        assert payment_id in listed.content.decode()
        page = client.get(page_of(payment_id))
        assert page.status_code == 200
        assert refund.id in page.content.decode()  # the refunds inline
        response = act(client, "refund_payments", payment_id, apply="1", amount="1000", token="pg")
        assert told(response) == [(messages.SUCCESS, "Refunded 1 payment(s).")]
        assert flow.get_payment(payment_id).refunded_amount == Money.of("3500", "XOF")
    assert not PaymentRow.objects.using("default").exists()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, databases=["default", POSTGRES])
@pytest.mark.parametrize(
    ("action", "fields"),
    [("capture_payments", {}), ("refund_payments", {}), ("refund_payments", {"apply": "1", "amount": ""})],
    ids=["capture", "refund-page", "refund-applied"],
)
def test_an_action_posted_with_an_id_holding_a_nul_does_nothing_and_says_so(
    action: str, fields: dict[str, str]
) -> None:
    settings = {"PAYCORE": ON_POSTGRES, "PAYCORE_DJANGO": {"PLUGINS": ["paycore.testing.fake"]}}
    with override_settings(ROOT_URLCONF=__name__, **settings):
        flow = paycore_django.blocking_flow()
        payment_id = paid(flow)
        client = Client()
        client.force_login(User.objects.create_superuser("boss", "boss@example.com", "pw"))
        response = act(client, action, payment_id, "pay\x00x", **fields)  # PostgreSQL refuses a NUL: it was a 500
        assert response.status_code == 200
        assert [text for _, text in told(response)] == ["Nothing was done: a selected id is not a payment's id."]
        assert flow.get_payment(payment_id).refunds == ()

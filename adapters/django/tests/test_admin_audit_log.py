"""The admin's audit trail: a Django admin LogEntry per payment an action changed, naming the staff user and
what was done; none for a payment an action did not change; and a trail that cannot be written never undoes
nor hides what was done to the money."""

from __future__ import annotations

import logging

import admin_testing
import pytest
from admin_testing import (
    CHANGELIST,
    XOF_8000,
    act,
    confirm,
    fake,
    flagged,
    page_of,
    paid,
    pending_refund,
    staff_client,
    told,
)
from django.contrib import messages
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.contenttypes.models import ContentType
from django.db import DatabaseError
from django.test import Client

from paycore.blocking import BlockingPaymentFlow
from paycore.money import Money
from paycore.status import FraudStatus, Outcome, PaymentStatus
from paycore_django.admin import PaymentAdmin
from paycore_django.models import Payment as PaymentRow

# The shared fixtures, registered here under these names: the flow on asyncio and on trio, and its superuser.
flow = admin_testing.flow_on_each_backend
superuser_client = admin_testing.superuser_client


def entries(payment_id: str) -> list[tuple[str, int, str]]:
    """The admin log's entries on a payment, oldest first: who, which flag, and what was done."""
    found = LogEntry.objects.filter(
        content_type=ContentType.objects.get_for_model(PaymentRow), object_id=payment_id
    ).order_by("action_time", "id")
    return [(entry.user.get_username(), entry.action_flag, entry.get_change_message()) for entry in found]


def underpaid(flow: BlockingPaymentFlow) -> str:
    """A 10 000 XOF payment of which the customer sent 8 000: flagged, and left processing."""
    fake(flow).script("initiate", "pending")
    payment_id = flow.create_payment(amount=Money.of("10000", "XOF"), provider="fake", order_id="T7").payment.id
    fake(flow).settle(payment_id, Outcome.SUCCEEDED, captured=XOF_8000)
    flow.handle_webhook("fake", *fake(flow).webhook(payment_id))
    assert flow.get_payment(payment_id).status is PaymentStatus.PROCESSING
    return payment_id


def test_a_refund_is_recorded_with_the_user_the_amount_the_refund_and_the_reason(flow: BlockingPaymentFlow) -> None:
    payment_id = paid(flow)
    client = staff_client("refund_payment")
    response = act(client, "refund_payments", payment_id, apply="1", amount="2500", reason="cold soup", token="t1")
    assert told(response) == [(messages.SUCCESS, "Refunded 1 payment(s).")]
    (refund,) = flow.get_payment(payment_id).refunds
    amount = Money.of("2500", "XOF").display()
    assert entries(payment_id) == [("clerk", CHANGE, f"Refunded {amount} (refund {refund.id}): cold soup")]


def test_a_refund_form_submitted_twice_is_recorded_once(flow: BlockingPaymentFlow, superuser_client: Client) -> None:
    payment_id = paid(flow)
    for _ in range(2):
        act(superuser_client, "refund_payments", payment_id, apply="1", amount="2500", token="same")
    assert len(flow.get_payment(payment_id).refunds) == 1
    assert [flag for _, flag, _ in entries(payment_id)] == [CHANGE]


def test_a_refund_awaiting_the_provider_is_recorded_as_sent(
    flow: BlockingPaymentFlow, superuser_client: Client
) -> None:
    payment_id = paid(flow)
    fake(flow).script("refund", "pending")
    act(superuser_client, "refund_payments", payment_id, apply="1", amount="2500", token="t2")
    (refund,) = flow.get_payment(payment_id).refunds
    amount = Money.of("2500", "XOF").display()
    assert entries(payment_id) == [
        ("boss", CHANGE, f"Refund of {amount} (refund {refund.id}) sent, awaiting the provider")
    ]


def test_a_resolved_review_is_recorded_with_its_note_and_one_not_flagged_is_not(
    flow: BlockingPaymentFlow, superuser_client: Client
) -> None:
    flagged_id, clear = flagged(flow), paid(flow)
    act(superuser_client, "resolve_reviews", flagged_id, clear, apply="1", note="called the customer")
    assert entries(flagged_id) == [("boss", CHANGE, "Resolved review: called the customer")]
    assert entries(clear) == []


def test_a_settled_pending_refund_is_recorded_once_per_payment(
    flow: BlockingPaymentFlow, superuser_client: Client
) -> None:
    payment_id = paid(flow)
    first, second = pending_refund(flow, payment_id), pending_refund(flow, payment_id)
    page = act(superuser_client, "settle_pending_refunds", payment_id)
    confirm(superuser_client, page, CHANGELIST, outcome="succeeded", note="done, per the dashboard")
    assert entries(payment_id) == [
        ("boss", CHANGE, f"Settled refunds {first}, {second} as succeeded: done, per the dashboard")
    ]


def test_a_settled_open_payment_is_recorded_with_what_was_captured(
    flow: BlockingPaymentFlow, superuser_client: Client
) -> None:
    succeeded, held, failed, ended = underpaid(flow), underpaid(flow), underpaid(flow), paid(flow)
    for payment_id, outcome, amount in [
        (succeeded, "succeeded", "8000"),
        (held, "authorized", ""),
        (failed, "failed", ""),
    ]:
        page = act(superuser_client, "settle_open_payments", payment_id, ended)
        confirm(superuser_client, page, CHANGELIST, outcome=outcome, amount=amount, note="seen in the dashboard")
    assert entries(succeeded) == [
        ("boss", CHANGE, f"Settled as succeeded, {XOF_8000.display()} captured: seen in the dashboard")
    ]
    held_amount = Money.of("10000", "XOF").display()
    assert entries(held) == [("boss", CHANGE, f"Settled as authorized, {held_amount} held: seen in the dashboard")]
    assert entries(failed) == [("boss", CHANGE, "Settled as failed: seen in the dashboard")]
    assert entries(ended) == []  # skipped: not open


def test_capture_cancel_refresh_and_fraud_status_are_recorded(
    flow: BlockingPaymentFlow, superuser_client: Client
) -> None:
    captured, canceled = paid(flow, capture=False), paid(flow, capture=False)
    act(superuser_client, "capture_payments", captured)
    act(superuser_client, "cancel_payments", canceled)
    fake(flow).script("initiate", "pending")
    refreshed = paid(flow)
    fake(flow).settle(refreshed, Outcome.SUCCEEDED)
    act(superuser_client, "refresh_payments", refreshed)
    act(superuser_client, "set_fraud_status", captured, apply="1", fraud_status="review", message="odd card")
    assert entries(captured) == [
        ("boss", CHANGE, f"Captured {Money.of('12500', 'XOF').display()}"),
        ("boss", CHANGE, "Set fraud status to review: odd card"),
    ]
    assert entries(canceled) == [("boss", CHANGE, "Canceled")]
    assert entries(refreshed) == [("boss", CHANGE, "Refreshed from the provider: the payment is succeeded")]
    act(superuser_client, "refresh_payments", refreshed)  # nothing new at the provider
    assert len(entries(refreshed)) == 1


def test_an_action_refused_records_nothing_and_only_the_one_done_is_recorded(
    flow: BlockingPaymentFlow, superuser_client: Client
) -> None:
    payment_id = paid(flow)
    shown = told(act(superuser_client, "capture_payments", payment_id))  # captured already
    assert shown[0][1].startswith(f"Not captured: {payment_id}")
    shown = told(act(superuser_client, "refund_payments", payment_id, apply="1", amount="20000", token="t3"))
    assert shown[0][1].startswith(f"Not refunded: {payment_id}")
    act(staff_client(), "refund_payments", payment_id, apply="1", amount="2500", token="t4")  # no permission
    assert flow.get_payment(payment_id).refunds == ()
    assert entries(payment_id) == []
    act(superuser_client, "refund_payments", payment_id, apply="1", amount="2500", token="t5")
    (refund,) = flow.get_payment(payment_id).refunds
    amount = Money.of("2500", "XOF").display()
    assert entries(payment_id) == [("boss", CHANGE, f"Refunded {amount} (refund {refund.id})")]


def test_the_entries_show_on_the_payments_history_page(flow: BlockingPaymentFlow, superuser_client: Client) -> None:
    payment_id = flagged(flow)
    act(superuser_client, "resolve_reviews", payment_id, apply="1", note="called the customer")
    history = superuser_client.get(page_of(payment_id, "history"))
    assert history.status_code == 200
    assert "Resolved review: called the customer" in history.content.decode()


def test_a_log_entry_that_cannot_be_written_is_a_warning_and_the_refund_stands(
    flow: BlockingPaymentFlow,
    superuser_client: Client,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    payment_id = paid(flow)

    def unwritable(*args: object, **kwargs: object) -> None:
        raise DatabaseError("the admin log's database is down")

    monkeypatch.setattr(PaymentAdmin, "log_change", unwritable)
    with caplog.at_level(logging.WARNING, logger="paycore_django.admin"):
        response = act(superuser_client, "refund_payments", payment_id, apply="1", amount="2500", reason="x", token="t")
    assert told(response) == [(messages.SUCCESS, "Refunded 1 payment(s).")]
    assert flow.get_payment(payment_id).refunded_amount == Money.of("2500", "XOF")
    assert entries(payment_id) == []
    (record,) = [r for r in caplog.records if r.name == "paycore_django.admin"]
    assert record.levelno == logging.WARNING
    assert payment_id in record.getMessage()
    assert "'boss'" in record.getMessage()
    assert "Refunded" in record.getMessage()


def test_a_fraud_verdict_on_a_payment_flagged_again_is_recorded(
    flow: BlockingPaymentFlow, superuser_client: Client
) -> None:
    payment_id = paid(flow)
    flow.set_fraud_status(payment_id, FraudStatus.REVIEW)
    act(superuser_client, "set_fraud_status", payment_id, apply="1", fraud_status="rejected", message="")
    assert entries(payment_id) == [("boss", CHANGE, "Set fraud status to rejected")]


def test_a_capture_the_provider_declined_records_nothing_and_one_whose_answer_was_lost_is_recorded_as_sent(
    flow: BlockingPaymentFlow, superuser_client: Client
) -> None:
    declined, lost = paid(flow, capture=False), paid(flow, capture=False)
    fake(flow).script("capture", "decline", "lost")
    act(superuser_client, "capture_payments", declined, lost)
    assert entries(declined) == []
    unknown = "its capture's outcome is unknown, to be checked with the provider"
    assert entries(lost) == [("boss", CHANGE, f"Capture sent: the payment is authorized; {unknown}")]


@pytest.mark.parametrize("action", ["capture", "refund"])
def test_a_form_submitted_twice_at_once_is_recorded_once_by_the_request_that_acted(
    flow: BlockingPaymentFlow, superuser_client: Client, monkeypatch: pytest.MonkeyPatch, action: str
) -> None:
    """Both requests read the payment before either acted; the second replayed the first's answer, a change from
    what it had read, and the payment's History showed two captures (or refunds) where one was made."""
    payment_id = paid(flow, capture=action != "capture")
    fields = {"apply": "1", "amount": "2500", "token": "once"} if action == "refund" else {}
    acted = getattr(flow, action)
    other_client = staff_client("capture_payment", "refund_payment")

    def the_other_request_acts_first(*args: object, **kwargs: object) -> object:
        monkeypatch.setattr(flow, action, acted)  # once: this request has read the payment, the other acts now
        act(other_client, f"{action}_payments", payment_id, **fields)
        return acted(*args, **kwargs)

    monkeypatch.setattr(flow, action, the_other_request_acts_first)
    response = act(superuser_client, f"{action}_payments", payment_id, **fields)
    assert response.status_code == 200
    payment = flow.get_payment(payment_id)
    assert len(payment.refunds) == (action == "refund")
    assert payment.status is (PaymentStatus.PARTIALLY_REFUNDED if action == "refund" else PaymentStatus.SUCCEEDED)
    assert [who for who, _, _ in entries(payment_id)] == ["clerk"]


def test_a_change_made_while_another_action_ran_is_recorded_under_who_made_it(
    flow: BlockingPaymentFlow, superuser_client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A refresh that read the payment before a capture and answered after it took the capture's recording: the
    payment's History showed the refresh, and not the capture its user made."""
    payment_id = paid(flow, capture=False)
    clerk = staff_client("refresh_payment", "capture_payment")
    capture, refresh = flow.capture, flow.refresh

    def the_refresh_runs_around_this_capture(*args: object, **kwargs: object) -> object:
        monkeypatch.setattr(flow, "capture", capture)  # once
        made: list[object] = []

        def refresh_answered_after_the_capture(*a: object, **k: object) -> object:
            monkeypatch.setattr(flow, "refresh", refresh)
            made.append(capture(*args, **kwargs))
            return refresh(*a, **k)

        monkeypatch.setattr(flow, "refresh", refresh_answered_after_the_capture)
        act(clerk, "refresh_payments", payment_id)
        return made[0]

    monkeypatch.setattr(flow, "capture", the_refresh_runs_around_this_capture)
    act(superuser_client, "capture_payments", payment_id)
    assert flow.get_payment(payment_id).status is PaymentStatus.SUCCEEDED
    assert ("boss", CHANGE, f"Captured {Money.of('12500', 'XOF').display()}") in entries(payment_id)

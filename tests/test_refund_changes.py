"""``refund_changes``: which refund rows a relational store inserts and updates in place, or writes again."""

from __future__ import annotations

from attrs import evolve

from paycore.money import Money
from paycore.records import Refund
from paycore.row_changes import refund_changes
from paycore.status import RefundStatus
from paycore.testing.records import make_payment


def _refund(refund_id: str, amount: str = "500") -> Refund:
    return Refund(id=refund_id, payment_id="pay_1", amount=Money.of(amount, "XOF"))


def test_a_new_refund_is_added_and_a_changed_one_updated_in_place() -> None:
    first, second = _refund("re_1"), _refund("re_2")
    stored = make_payment(id="pay_1", refunds=(first, second))
    settled = evolve(second, status=RefundStatus.SUCCEEDED)
    now = evolve(stored, refunds=(first, settled, _refund("re_3")))
    assert refund_changes(stored, now) == ([2], [1])


def test_nothing_to_write_when_the_refunds_are_the_same() -> None:
    stored = make_payment(id="pay_1", refunds=(_refund("re_1"),))
    assert refund_changes(stored, evolve(stored, description="changed")) == ([], [])


def test_refunds_that_moved_or_went_are_written_again() -> None:
    first, second = _refund("re_1"), _refund("re_2")
    stored = make_payment(id="pay_1", refunds=(first, second))
    assert refund_changes(stored, evolve(stored, refunds=(second, first))) is None
    assert refund_changes(stored, evolve(stored, refunds=(first,))) is None
    assert refund_changes(stored, evolve(stored, refunds=(_refund("re_9"), second))) is None
    assert refund_changes(None, stored) is None

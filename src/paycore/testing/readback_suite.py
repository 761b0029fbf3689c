"""``ReadBackConformance``: a repository reads back exactly what it was given, by every read it offers.

Part of :class:`~paycore.testing.repository_suite.RepositoryConformance`. A
store that keeps an amount as a float rounds the largest ones; one that compares
tenants without regard to case (a case-insensitive collation) mixes up
``Chez-Awa`` and ``chez-awa``; one that caches what it read answers a later read
with the payment as it was before a save.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import attrs
import pytest

from paycore.errors import ConcurrentUpdate, DuplicateExternalId
from paycore.money import MAX_MINOR_UNITS, Money
from paycore.records import Payment, Refund, new_id
from paycore.status import PaymentStatus
from paycore.storage import CallListingRepository, PaymentRepository, RefundListingRepository
from paycore.testing.idempotency_suite import LONGEST_TENANT, LONGEST_WIDE_TENANT
from paycore.testing.records import BASE_TIME, make_event, make_payment, make_receipt, next_version, rich_payment
from paycore.testing.save_suite import as_created

__all__ = ["ReadBackConformance"]

LONGEST_TENANTS = (LONGEST_TENANT, LONGEST_WIDE_TENANT)
"""Tenant names as long as paycore takes: of one byte, and of two bytes, per character in UTF-8."""
LATER = BASE_TIME + timedelta(hours=1)
"""A time after every write the tests make: the reaper's listings' ``updated_before``."""


class ReadBackConformance:
    """Conformance tests for what a :class:`~paycore.storage.PaymentRepository` reads back."""

    async def test_amounts_keep_their_currency_exponent(self, repository: PaymentRepository) -> None:
        for amount in (Money.of("1500", "XOF"), Money.of("0.001", "KWD"), Money.of("1.2345", "CLF"),
                       Money.of("99999999999.99", "EUR")):  # fmt: skip
            payment = make_payment(amount=amount)
            await repository.add(payment, [])
            assert (await repository.get(payment.id)).amount == amount

    @pytest.mark.parametrize(
        ("minor_units", "currency"),
        [(MAX_MINOR_UNITS, "XOF"), (2**53 + 1, "EUR")],
        ids=["largest", "past-a-float"],
    )
    async def test_amounts_at_the_extremes_read_back_exact(
        self, repository: PaymentRepository, minor_units: int, currency: str
    ) -> None:
        """The largest amount paycore takes (``MAX_MINOR_UNITS``, ``2**63 - 1``) and one a float cannot hold
        (``2**53 + 1``) read back to the minor unit: the payment's, its authorized and captured amounts, a
        refund's and an event's."""
        amount = Money.minor(minor_units, currency)
        payment = make_payment(
            amount=amount, status=PaymentStatus.SUCCEEDED, authorized_amount=amount, captured_amount=amount
        )
        events = [make_event(payment, 1, "created", amount=amount)]
        await repository.add(payment, events)
        refund = Refund(id=new_id("re"), payment_id=payment.id, amount=amount, created_at=BASE_TIME,
                        updated_at=BASE_TIME)  # fmt: skip
        refunded = next_version(payment, refunds=(refund,), event_count=2)
        events.append(make_event(payment, 2, "refund_created", refund_id=refund.id, amount=amount))
        await repository.save(refunded, events[1:])
        stored = await repository.get(payment.id)
        read = (stored.amount, stored.authorized_amount, stored.captured_amount, stored.refunds[0].amount)
        assert read == (amount,) * 4, f"{amount} ({minor_units} minor units) read back as {read}"
        assert [event.amount for event in await repository.list_events(payment.id)] == [amount, amount]

    async def test_tenants_differing_only_in_letter_case_or_as_long_as_paycore_takes_are_each_their_own(
        self, repository: PaymentRepository
    ) -> None:
        """``Chez-Awa`` and ``chez-awa`` are two restaurants, and so are two whose 64-character names differ only in
        their last (of one byte or two per character): each lists its own payments, finds its own by the gateway's
        id, and records its own receipt of a webhook event the gateway numbered alike for each."""
        tenants = ("Chez-Awa", "chez-awa", *(long[:-1] + last for long in LONGEST_TENANTS for last in "12"))
        made: dict[str, Payment] = {}
        for index, tenant in enumerate(tenants):
            payment = make_payment(tenant=tenant, external_id="gw-1", references=("gw-1",),
                                   created_at=BASE_TIME + timedelta(minutes=index))  # fmt: skip
            try:
                await repository.add(payment, [])
                await repository.save(next_version(payment), [], [make_receipt(payment, "evt-1")])
            except (ConcurrentUpdate, DuplicateExternalId) as error:
                others = [other for other in made if other != tenant]
                pytest.fail(f"tenant {tenant!r} was refused its payment or receipt ({type(error).__name__}): "
                            f"{others} hold theirs; are tenants compared without regard to case, or cut?")  # fmt: skip
            made[tenant] = payment
        for tenant, payment in made.items():
            listed = [p.id for p in await repository.list_payments(tenant=tenant)]
            assert listed == [payment.id], f"tenant {tenant!r} listed {listed}, not its own payment alone"
            found = await repository.get_by_external_id("fake", tenant, "gw-1")
            assert found.id == payment.id, f"tenant {tenant!r} found another tenant's payment by the gateway's id"
            assert await repository.has_receipt("fake", tenant, "evt-1")
        assert not await repository.has_receipt("fake", "CHEZ-AWA", "evt-1"), "a receipt of no tenant of that case"
        assert await repository.list_payments(tenant="CHEZ-AWA") == []

    async def test_every_read_after_a_save_returns_the_payment_as_saved(self, repository: PaymentRepository) -> None:
        """``get``, ``get_many``, ``get_by_external_id``, ``list_payments``, ``list_stale`` and the reaper's listings
        the repository offers (``list_with_calls``, ``list_with_pending_refunds``) each return the saved version,
        every field of it: not the payment as read, or cached, before the save."""
        shape = rich_payment(status=PaymentStatus.PROCESSING)  # unfinished, with a call and a pending refund
        created = as_created(shape, version=1, event_count=1, updated_at=shape.created_at)
        await repository.add(created, [make_event(created, 1, "created")])
        assert await repository.get_many([created.id]) == [created]  # read once before the save
        assert await repository.get(created.id) == created
        saved = next_version(shape, event_count=2, updated_at=BASE_TIME + timedelta(minutes=5))
        await repository.save(saved, [make_event(created, 2)])
        reference = saved.references[-1]
        reads: dict[str, list[Payment]] = {
            "get": [await repository.get(saved.id)],
            "get_many": await repository.get_many([saved.id]),
            "get_by_external_id": [await repository.get_by_external_id(saved.provider, saved.tenant, reference)],
            "list_payments": await repository.list_payments(tenant=saved.tenant),
            "list_stale": await repository.list_stale(statuses=[saved.status], updated_before=LATER, limit=10),
        }
        listing: Any = repository
        if isinstance(listing, CallListingRepository):
            reads["list_with_calls"] = await listing.list_with_calls(limit=10)
        if isinstance(listing, RefundListingRepository):
            reads["list_with_pending_refunds"] = await listing.list_with_pending_refunds(updated_before=LATER, limit=10)
        for read, found in reads.items():
            assert len(found) == 1, f"{read} after the save found {len(found)} payments, not the one saved"
            wrong = [field.name for field in attrs.fields(Payment) if getattr(found[0], field.name) != getattr(saved,
                     field.name)]  # fmt: skip
            assert not wrong, f"{read} after a save returned the payment with {', '.join(wrong)} not as saved"

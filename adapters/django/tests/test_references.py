"""Provider references and provider state in the Django repository, on SQLite and PostgreSQL.

Every reference is a ``PaymentReference`` row written in the payment's own
transaction; a reference belongs to one payment per provider code and tenant.
"""

from __future__ import annotations

import pytest

from paycore.errors import ConcurrentUpdate, DuplicateExternalId, PaymentNotFound
from paycore.testing.records import make_event, make_payment, make_receipt, next_version
from paycore_django import models
from paycore_django.storage import DjangoPaymentRepository
from paycore_django.units import run_unit

pytestmark = pytest.mark.anyio


async def _reference_rows(using: str, payment_id: str) -> set[str]:
    query = models.PaymentReference.objects.using(using).filter(payment_id=payment_id)
    return await run_unit(using, lambda: set(query.values_list("reference", flat=True)), atomic=False)


async def test_an_added_payment_whose_reference_is_taken_is_not_stored(using: str) -> None:
    repository = DjangoPaymentRepository(using)
    first = make_payment(tenant="chez-awa", external_id="pi_1")
    await repository.add(first, [])
    second = make_payment(tenant="chez-awa", external_id="cs_2", references=("cs_2", "pi_1"))
    with pytest.raises(DuplicateExternalId, match="'pi_1'"):
        await repository.add(second, [make_event(second, 1, "created")])
    with pytest.raises(PaymentNotFound):
        await repository.get(second.id)
    with pytest.raises(PaymentNotFound):
        await repository.get_by_external_id("fake", "chez-awa", "cs_2")
    assert await repository.list_events(second.id) == []


async def test_a_reference_is_one_payments_per_provider_and_tenant(using: str) -> None:
    repository = DjangoPaymentRepository(using)
    shared = "ref-42"
    owners = [
        make_payment(tenant="chez-awa", external_id=shared),
        make_payment(tenant="le-baobab", external_id=shared),
        make_payment(tenant=None, external_id=shared),
        make_payment(tenant="chez-awa", provider="wave", external_id=shared),
    ]
    for payment in owners:
        await repository.add(payment, [])
    for payment in owners:
        found = await repository.get_by_external_id(payment.provider, payment.tenant, shared)
        assert found.id == payment.id
    with pytest.raises(DuplicateExternalId):
        await repository.add(make_payment(tenant=None, external_id=shared), [])


async def test_a_refused_save_records_none_of_its_references(using: str) -> None:
    repository = DjangoPaymentRepository(using)
    payment = make_payment(tenant="chez-awa", external_id="cs_1")
    await repository.add(payment, [])
    received = next_version(payment, references=("cs_1", "pi_1"))
    await repository.save(received, [], [make_receipt(payment, "evt-1")])
    repeated = next_version(received, references=("cs_1", "pi_1", "ch_1"))
    with pytest.raises(ConcurrentUpdate):
        await repository.save(repeated, [], [make_receipt(payment, "evt-1")])
    with pytest.raises(PaymentNotFound):
        await repository.get_by_external_id("fake", "chez-awa", "ch_1")
    assert await _reference_rows(using, payment.id) == {"cs_1", "pi_1"}
    assert await repository.get(payment.id) == received


async def test_a_reference_the_payment_no_longer_holds_no_longer_finds_it(using: str) -> None:
    repository = DjangoPaymentRepository(using)
    payment = make_payment(tenant="chez-awa", external_id="cs_1", references=("cs_1", "pi_1"))
    await repository.add(payment, [])
    await repository.save(next_version(payment, references=("cs_1",)), [])
    with pytest.raises(PaymentNotFound):
        await repository.get_by_external_id("fake", "chez-awa", "pi_1")
    assert (await repository.get_by_external_id("fake", "chez-awa", "cs_1")).id == payment.id
    assert await _reference_rows(using, payment.id) == {"cs_1"}


async def test_an_external_id_alone_is_the_payments_only_reference(using: str) -> None:
    repository = DjangoPaymentRepository(using)
    payment = make_payment(tenant=None, external_id="gw-9")
    await repository.add(payment, [])
    stored = await repository.get_by_external_id("fake", None, "gw-9")
    assert stored == payment
    assert stored.references == ()


async def test_provider_state_is_written_with_the_payment(using: str) -> None:
    repository = DjangoPaymentRepository(using)
    payment = make_payment(provider_state={"session": "cs_9"})
    await repository.add(payment, [])
    state = {"session": "cs_9", "token": "tok_2", "nested": [1, None]}
    changed = next_version(payment, provider_state=state)
    await repository.save(changed, [])
    stale = next_version(payment, provider_state={"session": "lost"})
    with pytest.raises(ConcurrentUpdate):
        await repository.save(stale, [])
    assert (await repository.get(payment.id)).provider_state == state

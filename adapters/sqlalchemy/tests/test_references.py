"""Provider references and provider state in the SQL repository, on SQLite and PostgreSQL.

Every reference is a ``paycore_payment_references`` row written in the payment's
own transaction; a save that adds no reference does not touch that table.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from paycore.errors import DuplicateExternalId, PaymentNotFound
from paycore.testing.records import make_event, make_payment, make_receipt, next_version
from paycore_sqlalchemy import SqlPaymentRepository
from paycore_sqlalchemy.schema import payment_references

pytestmark = pytest.mark.anyio


@pytest.fixture
async def repository(database_url: str) -> AsyncIterator[SqlPaymentRepository]:
    repository = SqlPaymentRepository(database_url)
    yield repository
    await repository.aclose()


class StatementLog:
    """The SQL statements a repository's engine ran while the log was open."""

    def __init__(self) -> None:
        self.statements: list[str] = []

    def __call__(self, *arguments: Any) -> None:
        self.statements.append(" ".join(str(arguments[2]).split()))

    def starting(self, prefix: str) -> list[str]:
        """The statements that start with ``prefix`` (``"UPDATE paycore_payments"``)."""
        return [statement for statement in self.statements if statement.startswith(prefix)]

    def touching(self, table: str) -> list[str]:
        """The statements that name ``table``."""
        return [statement for statement in self.statements if table in statement]


@pytest.fixture
def statements(repository: SqlPaymentRepository) -> Iterator[StatementLog]:
    log = StatementLog()
    engine = repository.database.engine
    sa.event.listen(engine, "before_cursor_execute", log)
    yield log
    sa.event.remove(engine, "before_cursor_execute", log)


async def _held(repository: SqlPaymentRepository, payment_id: str) -> set[str]:
    query = sa.select(payment_references.c.reference).where(payment_references.c.payment_id == payment_id)
    return await repository.database.run(lambda c: set(c.execute(query).scalars()))


async def test_a_save_that_adds_no_reference_does_not_touch_the_references(
    repository: SqlPaymentRepository, statements: StatementLog
) -> None:
    payment = make_payment(tenant="chez-awa", external_id="cs_1", references=("cs_1", "pi_1"))
    await repository.add(payment, [])
    statements.statements.clear()
    saved = next_version(payment, provider_state={"session": "cs_1", "attempt": 2}, event_count=2)
    await repository.save(saved, [make_event(saved, 2)], [make_receipt(saved, "evt-1")])
    assert statements.touching("paycore_payment_references") == []
    assert len(statements.starting("UPDATE paycore_payments")) == 1
    assert await repository.get(payment.id) == saved


async def test_a_save_that_adds_a_reference_writes_only_the_new_one(
    repository: SqlPaymentRepository, statements: StatementLog
) -> None:
    payment = make_payment(tenant="chez-awa")
    await repository.add(payment, [])
    assert await _held(repository, payment.id) == set()
    second = next_version(payment, external_id="cs_1", references=("cs_1",))
    await repository.save(second, [])
    third = next_version(second, references=("cs_1", "pi_1"))
    statements.statements.clear()
    await repository.save(third, [])
    assert len(statements.touching("paycore_payment_references")) == 1
    assert await _held(repository, payment.id) == {"cs_1", "pi_1"}
    assert (await repository.get_by_external_id("fake", "chez-awa", "pi_1")) == third


async def test_an_added_payment_whose_reference_is_taken_is_not_stored(repository: SqlPaymentRepository) -> None:
    first = make_payment(tenant="chez-awa", external_id="pi_1")
    await repository.add(first, [])
    second = make_payment(tenant="chez-awa", external_id="cs_2", references=("cs_2", "pi_1"))
    with pytest.raises(DuplicateExternalId, match="reference 'pi_1' belongs to another payment"):
        await repository.add(second, [make_event(second, 1, "created")])
    with pytest.raises(PaymentNotFound):
        await repository.get(second.id)
    with pytest.raises(PaymentNotFound):
        await repository.get_by_external_id("fake", "chez-awa", "cs_2")
    assert await repository.list_events(second.id) == []
    assert (await repository.get_by_external_id("fake", "chez-awa", "pi_1")).id == first.id


async def test_a_refused_save_keeps_the_payment_its_events_and_its_references(
    repository: SqlPaymentRepository,
) -> None:
    first = make_payment(tenant="chez-awa", external_id="pi_1")
    second = make_payment(tenant="chez-awa", external_id="cs_2")
    await repository.add(first, [])
    await repository.add(second, [])
    taken = next_version(second, references=("cs_2", "pi_3", "pi_1"), event_count=2)
    with pytest.raises(DuplicateExternalId, match="reference 'pi_1' belongs"):
        await repository.save(taken, [make_event(taken, 2)], [make_receipt(taken, "evt-9")])
    assert await repository.get(second.id) == second
    assert await repository.list_events(second.id) == []
    assert not await repository.has_receipt("fake", "chez-awa", "evt-9")
    assert await _held(repository, second.id) == {"cs_2"}
    with pytest.raises(PaymentNotFound):
        await repository.get_by_external_id("fake", "chez-awa", "pi_3")
    await repository.save(next_version(second, references=("cs_2", "pi_3")), [])
    assert (await repository.get_by_external_id("fake", "chez-awa", "pi_3")).id == second.id


async def test_a_reference_once_held_still_finds_its_payment(repository: SqlPaymentRepository) -> None:
    payment = make_payment(tenant="chez-awa", external_id="cs_1", references=("cs_1", "pi_1"))
    await repository.add(payment, [])
    await repository.save(next_version(payment, references=("cs_1",)), [])
    assert (await repository.get_by_external_id("fake", "chez-awa", "pi_1")).references == ("cs_1",)
    other = make_payment(tenant="chez-awa", external_id="pi_1")
    with pytest.raises(DuplicateExternalId):
        await repository.add(other, [])


async def test_references_are_scoped_by_provider_and_tenant(repository: SqlPaymentRepository) -> None:
    payments = [
        make_payment(provider=provider, tenant=tenant, external_id="cs_1", references=("cs_1", "pi_1"))
        for provider, tenant in (("fake", "chez-awa"), ("fake", None), ("wave", "chez-awa"))
    ]
    for payment in payments:
        await repository.add(payment, [])
    for payment in payments:
        found = await repository.get_by_external_id(payment.provider, payment.tenant, "pi_1")
        assert found.id == payment.id


async def test_the_provider_state_is_replaced_by_a_save(repository: SqlPaymentRepository) -> None:
    payment = make_payment(provider_state={"session": "cs_1", "tokens": ["a", "b"]})
    await repository.add(payment, [])
    assert (await repository.get(payment.id)).provider_state == {"session": "cs_1", "tokens": ["a", "b"]}
    second = next_version(payment, provider_state={"intent": "pi_1"})
    await repository.save(second, [])
    assert (await repository.get(payment.id)).provider_state == {"intent": "pi_1"}
    await repository.save(next_version(second, provider_state={}), [])
    assert (await repository.get(payment.id)).provider_state == {}

"""A keyed request on SQL claims its key with its first read and completes it with its last write.

The repository and the store share the database, so the claim and the read of
the payment the request works on (for a create: the storing of its new
payment) are one unit of work, and the write that
records the provider's answer also stores the request's result for its key:
two units of work fewer per request, and never a payment written without the
key's result (or a result without its payment) once that write commits.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import anyio
import pytest
import sqlalchemy as sa
from attrs import evolve
from sqlalchemy import event

import paycore.testing.fake
from paycore import PaymentFlow, hookimpl
from paycore.errors import (
    FlowClosed,
    IdempotencyInProgress,
    IdempotencyKeyReused,
    PaycoreError,
    PaymentNotFound,
    ProviderNotSent,
    RefundExceedsCaptured,
    ValidationError,
)
from paycore.money import Money
from paycore.records import Payment
from paycore.status import Outcome, PaymentStatus, RefundStatus
from paycore.storage import KeyClaim
from paycore.testing.fake import FakeProvider
from paycore.testing.records import make_payment
from paycore_sqlalchemy import SqlIdempotencyStore, SqlPaymentRepository
from paycore_sqlalchemy.schema import idempotency_keys

pytestmark = pytest.mark.anyio

SECRET = "whsec_keys"
AMOUNT = Money.of("5000", "XOF")


def _flow(url: str) -> PaymentFlow:
    config = {"repository": url, "providers": {"fake": {"type": "fake", "webhook_secret": SECRET}}}
    return PaymentFlow.from_config(config, plugins=[paycore.testing.fake])


def _fake(flow: PaymentFlow) -> FakeProvider:
    provider = flow.provider("fake")
    assert isinstance(provider, FakeProvider)
    return provider


@contextmanager
def _transactions(engine: sa.Engine) -> Iterator[list[list[str]]]:
    """The statements the engine runs meanwhile, one list per transaction."""
    units: list[list[str]] = []

    def begin(connection: Any) -> None:
        units.append([])

    def execute(connection: Any, cursor: Any, statement: str, *args: Any) -> None:
        if units:  # not a new connection's own set-up
            units[-1].append(" ".join(statement.split()))

    event.listen(engine, "begin", begin)
    event.listen(engine, "before_cursor_execute", execute)
    try:
        yield units
    finally:
        event.remove(engine, "begin", begin)
        event.remove(engine, "before_cursor_execute", execute)


def _completing(statement: str) -> bool:
    return statement.startswith("UPDATE paycore_idempotency_keys SET token=NULL")


async def _key_row(flow: PaymentFlow, key: str) -> Any:
    store = flow.idempotency_store
    assert isinstance(store, SqlIdempotencyStore)
    query = sa.select(idempotency_keys).where(idempotency_keys.c.key == key)
    return await store.database.run(lambda connection: connection.execute(query).one())


async def test_each_keyed_request_completes_its_key_in_the_transaction_of_its_last_write(database_url: str) -> None:
    async with _flow(database_url) as flow:
        assert isinstance(flow.repository, SqlPaymentRepository)
        fake = _fake(flow)
        fake.script("initiate", "pending")
        with _transactions(flow.repository.database.engine) as units:
            checkout = await flow.create_payment(amount=AMOUNT, provider="fake", order_id="T4", idempotency_key="c1")
            await flow.handle_webhook("fake", *fake.webhook(checkout.payment.id, outcome=Outcome.SUCCEEDED))
            fake.script("refund", "pending")
            refund = await flow.refund(checkout.payment.id, amount=Money.of("1500", "XOF"), idempotency_key="r1")
        completing = [unit for unit in units if any(_completing(statement) for statement in unit)]
        assert len(completing) == 2, "one completion per keyed request"
        for unit in completing:
            assert any(statement.startswith("UPDATE paycore_payments") for statement in unit), unit
        assert (await _key_row(flow, "c1")).token is None
        assert (await _key_row(flow, "r1")).token is None

        sent = len(fake.calls)
        replayed = await flow.create_payment(amount=AMOUNT, provider="fake", order_id="T4", idempotency_key="c1")
        assert replayed == checkout
        assert (await flow.refund(checkout.payment.id, amount=Money.of("1500", "XOF"), idempotency_key="r1")) == refund
        assert len(fake.calls) == sent, "a replay never reaches the provider"


async def test_a_request_whose_key_was_taken_over_keeps_its_write_and_leaves_the_key_to_its_taker(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async with _flow(sqlite_url) as flow:
        fake = _fake(flow)
        fake.script("initiate", "pending")
        store = flow.idempotency_store
        assert isinstance(store, SqlIdempotencyStore)
        initiate = fake.initiate

        async def taken_over_meanwhile(payment: Payment) -> Any:
            # As if this request's lease ran out during the call and another request took the key.
            taking = sa.update(idempotency_keys).where(idempotency_keys.c.key == "slow").values(token="the-taker")
            await store.database.run(lambda connection: connection.execute(taking), write=True)
            return await initiate(payment)

        monkeypatch.setattr(fake, "initiate", taken_over_meanwhile)
        with caplog.at_level(logging.WARNING, logger="paycore.idempotency"):
            checkout = await flow.create_payment(amount=AMOUNT, provider="fake", order_id="T5", idempotency_key="slow")
        assert (await flow.get_payment(checkout.payment.id)).status is PaymentStatus.PROCESSING
        row = await _key_row(flow, "slow")
        assert (row.token, row.result) == ("the-taker", None)
        assert "taken over" in caplog.text


async def test_a_result_stored_by_a_write_that_first_lost_a_race_is_the_result_returned(database_url: str) -> None:
    """The provider's webhook lands while its API answer is on the way: the answer's write retries."""
    async with _flow(database_url) as flow:
        fake = _fake(flow)
        fake.script("initiate", "pending")
        initiate = fake.initiate

        async def webhook_first(payment: Payment) -> Any:
            answer = await initiate(payment)
            fake.settle(payment.id, Outcome.SUCCEEDED)
            await flow.handle_webhook("fake", *fake.webhook(payment.id))
            return answer

        fake.initiate = webhook_first  # type: ignore[method-assign]
        checkout = await flow.create_payment(amount=AMOUNT, provider="fake", order_id="T6", idempotency_key="race")
        assert checkout.payment.status is PaymentStatus.SUCCEEDED
        assert checkout.payment.pending_call is None
        assert (await _key_row(flow, "race")).token is None
        replayed = await flow.create_payment(amount=AMOUNT, provider="fake", order_id="T6", idempotency_key="race")
        assert replayed == checkout


async def test_only_a_store_in_the_same_database_has_its_keys_completed_by_the_repository(tmp_path: Any) -> None:
    from paycore_memory import MemoryIdempotencyStore

    repository = SqlPaymentRepository(f"sqlite:///{tmp_path / 'payments.db'}")
    same = SqlIdempotencyStore(repository.database)
    elsewhere = SqlIdempotencyStore(f"sqlite:///{tmp_path / 'keys.db'}")
    try:
        assert repository.completes_keys_of(same)
        assert not repository.completes_keys_of(elsewhere)
        assert not repository.completes_keys_of(MemoryIdempotencyStore())
    finally:
        for closing in (elsewhere, same, repository):
            await closing.aclose()


def _claiming(statement: str) -> bool:
    return statement.startswith("INSERT INTO paycore_idempotency_keys")


async def test_a_keyed_request_reads_its_payment_in_the_unit_of_work_that_claims_its_key(database_url: str) -> None:
    async with _flow(database_url) as flow:
        assert isinstance(flow.repository, SqlPaymentRepository)
        fake = _fake(flow)
        fake.script("initiate", "succeeded")
        checkout = await flow.create_payment(amount=AMOUNT, provider="fake", order_id="T8", idempotency_key="c8")
        with _transactions(flow.repository.database.engine) as units:
            fake.script("refund", "succeeded")
            await flow.refund(checkout.payment.id, amount=Money.of("500", "XOF"), idempotency_key="r8")
        (claiming,) = [unit for unit in units if any(_claiming(statement) for statement in unit)]
        assert any(statement.startswith("SELECT paycore_payments.id") for statement in claiming), claiming
        reads = [unit for unit in units if all(statement.startswith("SELECT") for statement in unit)]
        assert reads == [], "the payment is not read again after the claim"


async def test_a_keyed_request_on_a_payment_it_cannot_see_is_not_found_and_leaves_the_key_free(
    database_url: str,
) -> None:
    fake_provider = {"type": "fake", "webhook_secret": SECRET}
    config = {
        "repository": database_url,
        "tenants": {
            "chez-awa": {"providers": {"fake": fake_provider}},
            "le-baobab": {"providers": {"fake": fake_provider}},
        },
    }
    async with PaymentFlow.from_config(config, plugins=[paycore.testing.fake]) as flow:
        fake = flow.provider("fake", tenant="chez-awa")
        assert isinstance(fake, FakeProvider)
        fake.script("initiate", "succeeded")
        checkout = await flow.create_payment(
            amount=AMOUNT, provider="fake", order_id="T9", tenant="chez-awa", idempotency_key="c9"
        )
        for payment_id, tenant in ((checkout.payment.id, "le-baobab"), ("pay_nothing_here", "chez-awa")):
            with pytest.raises(PaymentNotFound):
                await flow.refund(payment_id, amount=Money.of("500", "XOF"), tenant=tenant, idempotency_key="r9")
        fake.script("refund", "succeeded")
        refund = await flow.refund(
            checkout.payment.id, amount=Money.of("500", "XOF"), tenant="chez-awa", idempotency_key="r9"
        )
        assert refund.status is RefundStatus.SUCCEEDED
        assert (await flow.get_payment(checkout.payment.id)).refunded_amount == Money.of("500", "XOF")


async def test_claim_and_get_reads_only_for_the_request_that_holds_the_key(sqlite_url: str) -> None:
    repository = SqlPaymentRepository(sqlite_url)
    store = SqlIdempotencyStore(repository.database)
    payment = make_payment()
    await repository.add(payment, [])
    claim = KeyClaim(scope="", key="k", fingerprint="f1", lease_seconds=30.0)
    try:
        held, found = await repository.claim_and_get(store, claim, [payment.id, "pay_missing"])
        assert held.token is not None
        assert found == [payment]
        with pytest.raises(IdempotencyInProgress):
            await repository.claim_and_get(store, claim, [payment.id])
        with pytest.raises(IdempotencyKeyReused):
            await repository.claim_and_get(store, evolve(claim, fingerprint="f2"), [payment.id])
        await store.complete(scope="", key="k", token=held.token, result={"value": 1}, ttl_seconds=60)
        with _transactions(repository.database.engine) as units:
            replayed, read = await repository.claim_and_get(store, claim, [payment.id])
        assert (replayed.token, replayed.result, read) == (None, {"value": 1}, [])
        statements = [statement for unit in units for statement in unit]
        assert statements  # the claim's
        assert not any("FROM paycore_payments" in s for s in statements), "a replay reads no payment"
    finally:
        await store.aclose()
        await repository.aclose()


async def test_a_keyed_create_claims_its_key_and_stores_its_payment_in_one_transaction(database_url: str) -> None:
    async with _flow(database_url) as flow:
        assert isinstance(flow.repository, SqlPaymentRepository)
        _fake(flow).script("initiate", "pending")
        assert await flow.list_payments(order_id="T9") == []  # the schema is checked on first use
        with _transactions(flow.repository.database.engine) as units:
            checkout = await flow.create_payment(amount=AMOUNT, provider="fake", order_id="T9", idempotency_key="c9")
        (claiming,) = [unit for unit in units if any(_claiming(statement) for statement in unit)]
        assert any(statement.startswith("INSERT INTO paycore_payments ") for statement in claiming), claiming
        assert any(statement.startswith("INSERT INTO paycore_payment_events ") for statement in claiming), claiming
        assert not any(statement.startswith("SELECT") for statement in claiming), "no earlier payment: none read"
        assert len(units) == 2, "the claim with the new payment, then the provider's answer with the key's result"
        assert await flow.get_payment(checkout.payment.id) == checkout.payment


async def test_a_keyed_create_whose_key_is_gone_finds_the_payment_its_first_attempt_stored(database_url: str) -> None:
    async with _flow(database_url) as flow:
        assert isinstance(flow.repository, SqlPaymentRepository)
        fake = _fake(flow)
        fake.script("initiate", "succeeded")
        first = await flow.create_payment(amount=AMOUNT, provider="fake", order_id="T12", idempotency_key="c12")
        engine = flow.repository.database.engine
        with engine.begin() as connection:  # the key's record is gone (purged), its payment is not
            connection.execute(sa.delete(idempotency_keys).where(idempotency_keys.c.key == "c12"))
        with _transactions(engine) as units:
            again = await flow.create_payment(amount=AMOUNT, provider="fake", order_id="T12", idempotency_key="c12")
        (claiming,) = [unit for unit in units if any(_claiming(statement) for statement in unit)]
        assert any(statement.startswith("SELECT paycore_payments.id") for statement in claiming), claiming
        assert again.payment == first.payment, "the first attempt's payment, not a second one"
        assert [payment.id for payment in await flow.list_payments(order_id="T12")] == [first.payment.id]
        assert [call for call in fake.calls if call[0] == "initiate"] == [("initiate", first.payment.id)]
        other = Money.of("100", "XOF")
        with pytest.raises(IdempotencyKeyReused):
            await flow.create_payment(amount=other, provider="fake", order_id="T12", idempotency_key="c12")


async def test_identical_keyed_creates_at_once_store_one_payment_and_reach_the_provider_once(
    database_url: str,
) -> None:
    async with _flow(database_url) as flow:
        fake = _fake(flow)
        fake.script("initiate", "pending")
        answers: list[object] = []

        async def create() -> None:
            try:
                answers.append(
                    await flow.create_payment(amount=AMOUNT, provider="fake", order_id="T13", idempotency_key="c13")
                )
            except IdempotencyInProgress as error:
                answers.append(error)

        async with anyio.create_task_group() as group:
            for _ in range(20):
                group.start_soon(create)
        checkouts = [answer for answer in answers if not isinstance(answer, IdempotencyInProgress)]
        assert checkouts, "one of them created the payment"
        assert all(checkout == checkouts[0] for checkout in checkouts), "the others replayed it, or were told to wait"
        assert [call for call in fake.calls if call[0] == "initiate"] == [("initiate", checkouts[0].payment.id)]
        assert [payment.id for payment in await flow.list_payments(order_id="T13")] == [checkouts[0].payment.id]


async def test_refunds_at_once_never_refund_more_than_was_captured_nor_send_one_twice(database_url: str) -> None:
    async with _flow(database_url) as flow:
        fake = _fake(flow)
        fake.script("initiate", "pending")
        checkout = await flow.create_payment(amount=AMOUNT, provider="fake", order_id="T14", idempotency_key="c14")
        payment_id = checkout.payment.id
        fake.settle(payment_id, Outcome.SUCCEEDED)
        await flow.handle_webhook("fake", *fake.webhook(payment_id))
        refunds: dict[str, set[str]] = {}

        async def refund(number: int) -> None:
            key = f"r14-{number % 8}"  # eight requests, each sent three times
            try:
                made = await flow.refund(payment_id, amount=Money.of("1000", "XOF"), idempotency_key=key)
            except PaycoreError:  # busy, in progress, or nothing left to refund: nothing was sent
                return
            refunds.setdefault(key, set()).add(made.id)

        for _ in range(10):  # a busy payment refuses at once: the requests are sent again, as a till would
            async with anyio.create_task_group() as group:
                for number in range(24):
                    group.start_soon(refund, number)
            if (await flow.get_payment(payment_id)).refunded_amount == AMOUNT:
                break
        stored = await flow.get_payment(payment_id)
        assert stored.refunded_amount == AMOUNT, "five refunds of 1000 XOF took all of it, and no more"
        assert [r.status for r in stored.refunds] == [RefundStatus.SUCCEEDED] * 5
        assert all(len(ids) == 1 for ids in refunds.values()), "a key answered with one refund, always the same"
        assert {i for ids in refunds.values() for i in ids} == {r.id for r in stored.refunds}
        sent = [call for call in fake.calls if call[0] == "refund"]
        assert len(sent) == 5, "the provider was asked for each stored refund once"


class _Policy:
    """A ``paycore_validate_payment`` policy that refuses every payment while ``refusing``."""

    def __init__(self) -> None:
        self.refusing = False

    @hookimpl
    def paycore_validate_payment(self, payment: Payment) -> None:
        if self.refusing:
            raise ValidationError(f"payment {payment.order_id} refused by policy")


async def test_a_create_its_checks_refuse_still_replays_its_key_or_leaves_the_key_free(database_url: str) -> None:
    policy = _Policy()
    config = {"repository": database_url, "providers": {"fake": {"type": "fake", "webhook_secret": SECRET}}}
    async with PaymentFlow.from_config(config, plugins=[paycore.testing.fake, policy]) as flow:
        _fake(flow).script("initiate", "pending")
        checkout = await flow.create_payment(amount=AMOUNT, provider="fake", order_id="T10", idempotency_key="c10")
        policy.refusing = True
        replayed = await flow.create_payment(amount=AMOUNT, provider="fake", order_id="T10", idempotency_key="c10")
        assert replayed == checkout, "a request completed before is answered as it was, whatever the checks say now"
        with pytest.raises(ValidationError):
            await flow.create_payment(amount=AMOUNT, provider="fake", order_id="T11", idempotency_key="c11")
        assert await flow.list_payments(order_id="T11") == []
        policy.refusing = False
        later = await flow.create_payment(amount=AMOUNT, provider="fake", order_id="T11", idempotency_key="c11")
        assert later.payment.order_id == "T11", "the refused request left its key free"


def _writes(unit: list[str], table: str) -> bool:
    return any(statement.startswith((f"UPDATE {table} ", f"INSERT INTO {table} ")) for statement in unit)


async def _paid(flow: PaymentFlow, order_id: str) -> Payment:
    fake = _fake(flow)
    fake.script("initiate", "succeeded")
    checkout = await flow.create_payment(amount=AMOUNT, provider="fake", order_id=order_id)
    assert checkout.payment.status is PaymentStatus.SUCCEEDED
    return checkout.payment


async def test_a_keyed_refund_is_written_down_in_the_unit_of_work_that_claims_its_key(database_url: str) -> None:
    async with _flow(database_url) as flow:
        assert isinstance(flow.repository, SqlPaymentRepository)
        payment = await _paid(flow, "T12")
        fake = _fake(flow)
        fake.script("refund", "pending")
        with _transactions(flow.repository.database.engine) as units:
            refund = await flow.refund(payment.id, amount=Money.of("1500", "XOF"), idempotency_key="r12")
        (claiming,) = [unit for unit in units if any(_claiming(statement) for statement in unit)]
        for table in ("paycore_payments", "paycore_refunds", "paycore_payment_events"):
            assert _writes(claiming, table), claiming
        assert len(units) == 2, (
            "the claim with the refund written down, then the provider's answer with the key's result"
        )
        stored = await flow.get_payment(payment.id)
        assert stored.refund(refund.id) == refund
        assert refund.status is RefundStatus.PENDING
        assert stored.pending_call is None
        assert [event.kind for event in await flow.list_events(payment.id)][-1] == "refund_created"

        sent = len(fake.calls)
        assert await flow.refund(payment.id, amount=Money.of("1500", "XOF"), idempotency_key="r12") == refund
        assert len(fake.calls) == sent, "a replay never reaches the provider"


class _CheckingProvider(FakeProvider):
    """A provider that checks refunds before they are stored: none above 2 000 XOF."""

    name = "checking"
    checked: list[Money]

    async def check_refund(self, payment: Payment, refund: Any) -> None:
        self.checked = [*getattr(self, "checked", []), refund.amount]
        if refund.amount > Money.of("2000", "XOF"):
            raise ValidationError(f"refunds above 2000 XOF need a manager, not {refund.amount}")


class _CheckingPlugin:
    @hookimpl
    def paycore_register_providers(self, register: Any) -> None:
        register(_CheckingProvider)


async def test_a_refund_its_provider_checks_is_written_down_only_after_the_check(database_url: str) -> None:
    config = {"repository": database_url, "providers": {"fake": {"type": "checking", "webhook_secret": SECRET}}}
    async with PaymentFlow.from_config(config, plugins=[paycore.testing.fake, _CheckingPlugin()]) as flow:
        assert isinstance(flow.repository, SqlPaymentRepository)
        payment = await _paid(flow, "T13")
        with pytest.raises(ValidationError, match="need a manager"):
            await flow.refund(payment.id, amount=Money.of("2500", "XOF"), idempotency_key="r13")
        assert await flow.get_payment(payment.id) == payment
        _fake(flow).script("refund", "succeeded")
        with _transactions(flow.repository.database.engine) as units:
            refund = await flow.refund(payment.id, amount=Money.of("1500", "XOF"), idempotency_key="r13")
        assert refund.status is RefundStatus.SUCCEEDED, "the refused request left its key free"
        assert _fake(flow).checked == [Money.of("2500", "XOF"), Money.of("1500", "XOF")]  # type: ignore[attr-defined]
        (claiming,) = [unit for unit in units if any(_claiming(statement) for statement in unit)]
        assert not _writes(claiming, "paycore_payments"), "nothing is written before the provider's check"


async def test_a_keyed_refund_over_what_remains_changes_nothing_and_leaves_the_key_free(database_url: str) -> None:
    async with _flow(database_url) as flow:
        payment = await _paid(flow, "T14")
        with pytest.raises(RefundExceedsCaptured):
            await flow.refund(payment.id, amount=Money.of("6000", "XOF"), idempotency_key="r14")
        assert await flow.get_payment(payment.id) == payment
        _fake(flow).script("refund", "succeeded")
        refund = await flow.refund(payment.id, amount=Money.of("5000", "XOF"), idempotency_key="r14")
        assert refund.amount == Money.of("5000", "XOF"), "the refused request left its key free"
        assert (await flow.get_payment(payment.id)).refunded_amount == Money.of("5000", "XOF")


async def test_a_flow_closed_after_a_keyed_refund_was_written_with_its_claim_undoes_it_and_sends_nothing(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with _flow(database_url) as flow:
        repository = flow.repository
        assert isinstance(repository, SqlPaymentRepository)
        payment = await _paid(flow, "T15")
        claim_and_update = repository.claim_and_update

        async def claim_then_close(*args: Any, **kwargs: Any) -> Any:
            claimed = await claim_and_update(*args, **kwargs)
            flow._parts.closed = True  # the flow's close begins while the claim's unit answers
            return claimed

        monkeypatch.setattr(repository, "claim_and_update", claim_then_close)
        sent = len(_fake(flow).calls)
        with pytest.raises(FlowClosed):
            await flow.refund(payment.id, amount=Money.of("1000", "XOF"), idempotency_key="r15")
        flow._parts.closed = False  # to read what was left
        after = await flow.get_payment(payment.id)
        assert len(_fake(flow).calls) == sent, "a closed flow sends nothing"
        assert after.pending_call is None, "the refund written with the claim is undone, not left 'submitting'"
        assert after.refundable_amount == AMOUNT
        assert [refund.status for refund in after.refunds] == [RefundStatus.FAILED]


async def test_a_released_refund_key_used_again_for_another_payment_refunds_it(database_url: str) -> None:
    async with _flow(database_url) as flow:
        first, second = await _paid(flow, "T16"), await _paid(flow, "T17")
        _fake(flow).script("refund", "not_sent")
        with pytest.raises(ProviderNotSent):  # refused: its key is free again
            await flow.refund(first.id, amount=Money.of("500", "XOF"), idempotency_key="r16")
        refund = await flow.refund(second.id, amount=Money.of("500", "XOF"), idempotency_key="r16")
        assert (await flow.get_payment(second.id)).refund(refund.id) == refund
        assert [r.status for r in (await flow.get_payment(first.id)).refunds] == [RefundStatus.FAILED]

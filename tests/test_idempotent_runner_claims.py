"""The idempotency runner with a repository that claims keys in its own units of work.

A keyed operation's first write (a refund written down) may be stored in the
unit that claims the key. When that write loses a race, the unit is undone
whole, and the operation decides and writes as it would without it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial

import pytest

from paycore.clock import utcnow
from paycore.errors import ConcurrentUpdate, DuplicateExternalId, FlowClosed, IdempotencyInProgress, PaymentBusy
from paycore.idempotency import IdempotentRunner
from paycore.keys import KeyBinding
from paycore.records import Payment
from paycore.storage import IdempotencyClaim, IdempotencyStore, KeyClaim, PaymentWrite
from paycore.testing.records import make_event, make_payment, next_version
from paycore_memory import MemoryIdempotencyStore

pytestmark = pytest.mark.anyio


class _ClaimingRepository:
    """Claims in ``store`` and reads ``payments``; its ``claim_and_update`` writes, or loses its race."""

    def __init__(self, payments: Sequence[Payment], *, loses_race: bool) -> None:
        self.payments = {payment.id: payment for payment in payments}
        self.loses_race = loses_race
        self.units: list[str] = []

    async def claim_and_get(
        self, store: IdempotencyStore, claim: KeyClaim, payment_ids: Sequence[str]
    ) -> tuple[IdempotencyClaim, list[Payment]]:
        self.units.append("claim_and_get")
        answer = await store.claim(
            scope=claim.scope, key=claim.key, fingerprint=claim.fingerprint, lease_seconds=claim.lease_seconds
        )
        found = [self.payments[i] for i in payment_ids if i in self.payments] if answer.token else []
        return answer, found

    async def claim_and_update(
        self,
        store: IdempotencyStore,
        claim: KeyClaim,
        payment_id: str,
        decide: Callable[[Payment], PaymentWrite | None],
    ) -> tuple[IdempotencyClaim, list[Payment], PaymentWrite | None]:
        self.units.append("claim_and_update")
        if self.loses_race:  # as a unit whose write found the payment changed: nothing of it is kept
            raise ConcurrentUpdate(f"payment {payment_id} changed meanwhile")
        answer, found = await self.claim_and_get(store, claim, [payment_id])
        written = decide(found[0]) if answer.token and found else None
        if written is not None:
            self.payments[payment_id] = written.payment
        return answer, found, written


def _runner(repository: _ClaimingRepository) -> IdempotentRunner:
    return IdempotentRunner(
        MemoryIdempotencyStore(),
        lease_seconds=30,
        ttl_seconds=3600,
        clock=utcnow,
        completes_keys_of=lambda store: True,
        claims_with=repository,  # type: ignore[arg-type]  # claim_and_add is not used here
    )


async def _run(runner: IdempotentRunner, payment: Payment) -> KeyBinding:
    seen: list[KeyBinding | None] = []

    async def execute(binding: KeyBinding | None) -> str:
        seen.append(binding)
        return "refund started"

    def first_write(binding: KeyBinding, current: Payment) -> PaymentWrite:
        return PaymentWrite(next_version(current, description="refund written down"), [make_event(current, 2)])

    result = await runner.run(
        operation="refund",
        scope="",
        key="r1",
        arguments={"payment_id": payment.id},
        execute=execute,
        result_type=str,
        prefetch=lambda binding: (payment.id,),
        updates=first_write,
    )
    assert result == "refund started"
    (binding,) = seen
    assert binding is not None
    return binding


async def test_the_first_write_decided_in_the_claims_unit_reaches_the_operation() -> None:
    payment = make_payment()
    repository = _ClaimingRepository([payment], loses_race=False)
    binding = await _run(_runner(repository), payment)
    assert repository.units == ["claim_and_update", "claim_and_get"]  # the stub claims through its own claim_and_get
    assert binding.updated is not None
    assert binding.updated.payment.description == "refund written down"
    assert binding.prefetched == {payment.id: payment}
    assert binding.completer is not None


async def test_a_first_write_that_loses_its_race_in_the_claims_unit_is_left_to_the_operation() -> None:
    payment = make_payment()
    repository = _ClaimingRepository([payment], loses_race=True)
    binding = await _run(_runner(repository), payment)
    assert repository.units == ["claim_and_update", "claim_and_get"]
    assert binding.updated is None, "the operation decides and writes as without the claim's write"
    assert binding.prefetched == {payment.id: payment}
    assert repository.payments[payment.id] == payment


@pytest.mark.parametrize(
    ("error", "released"),
    [(DuplicateExternalId("its reference is another payment's"), False), (FlowClosed("the flow is closed"), False),
     (ConcurrentUpdate("raced"), True), (PaymentBusy("busy"), True)],
    ids=["duplicate-reference", "flow-closed", "concurrent-update", "busy"],
)  # fmt: skip
async def test_a_key_is_let_go_after_a_refusal_and_held_for_its_lease_after_anything_else(
    error: Exception, released: bool
) -> None:
    """A refusal (nothing left unsettled) lets the key go for a retry at once; any other error (a provider's answer
    that could not be stored, a flow closing under the request) keeps it for its lease, so a retry settles what the
    request left instead of running beside it."""
    runner = IdempotentRunner(MemoryIdempotencyStore(), lease_seconds=30, ttl_seconds=3600, clock=utcnow)

    async def execute(binding: KeyBinding | None) -> str:
        raise error

    async def retried(binding: KeyBinding | None) -> str:
        return "done"

    run = partial(runner.run, operation="capture", scope="", key="k1", arguments={}, result_type=str)
    with pytest.raises(type(error)):
        await run(execute=execute)
    if released:
        assert await run(execute=retried) == "done"
    else:
        with pytest.raises(IdempotencyInProgress):
            await run(execute=retried)

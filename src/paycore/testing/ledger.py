"""``LedgerProvider``: a slow in-process provider that keeps the provider's own books.

Where :class:`~paycore.testing.fake.FakeProvider` scripts answers, this one
models a gateway in time: each request is received (and, once received, acted
on) before its answer travels back after :attr:`LedgerProvider.latency`
seconds; an answer may be lost on the way (:meth:`LedgerProvider.lose_next`), and
a request may travel first (:attr:`LedgerProvider.transit`), on a network that
carries it on when its caller stops waiting (:attr:`LedgerProvider.network`).
Its books say what really happened at the provider: how many times each
request arrived, what it captured and refunded. Tests compare them with what
paycore recorded: the provider's captured and refunded totals must equal
paycore's, refunds at the provider never exceed what it captured, and no
capture or refund arrives twice.

Register it with ``plugins=[paycore.testing.ledger]`` and enable it as
``{"providers": {"ledger": {"type": "ledger"}}}``.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import anyio
from anyio.abc import TaskGroup
from attrs import define, evolve, field

from paycore import serialization
from paycore.errors import InvalidSignature, ProviderNotSent, ProviderOutcomeUnknown
from paycore.hookspecs import ProviderRegistrar, hookimpl
from paycore.money import Money
from paycore.providers import Capabilities, Provider, ProviderContext
from paycore.records import Payment, ProviderUpdate, Refund, RefundUpdate
from paycore.status import Outcome, RefundStatus

__all__ = ["LedgerAccount", "LedgerProvider", "paycore_register_providers"]

_counter = itertools.count(1)

T = TypeVar("T")


@define
class LedgerAccount:
    """The provider's books for one payment."""

    external_id: str
    amount: Money
    authorized: Money | None = None
    captured: Money | None = None
    canceled: bool = False
    refunds: dict[str, Money] = field(factory=dict)
    """Refunds made, by paycore's refund id."""

    @property
    def refunded(self) -> Money:
        """What the provider has paid back."""
        return Money.sum(self.refunds.values(), self.amount.currency)

    def report(self, payment_id: str) -> ProviderUpdate:
        """The account as a status answer, with every amount and every refund."""
        if self.captured is not None:
            outcome = Outcome.SUCCEEDED
        elif self.canceled:
            outcome = Outcome.CANCELED
        elif self.authorized is not None:
            outcome = Outcome.AUTHORIZED
        else:
            outcome = Outcome.PENDING
        return ProviderUpdate(
            outcome=outcome,
            external_id=self.external_id,
            payment_id=payment_id,
            authorized=self.authorized,
            captured=self.captured,
            refunds=tuple(
                RefundUpdate(RefundStatus.SUCCEEDED, refund_id=refund_id, amount=amount)
                for refund_id, amount in self.refunds.items()
            ),
        )


class LedgerProvider(Provider):
    """A gateway with latency and books of its own (see the module docstring).

    ``initiate`` authorizes (``capture=False``) or captures the whole amount;
    ``received`` counts each request by ``(operation, payment id, refund id)``.
    A status poll of a payment whose initiate has not arrived yet answers
    :attr:`Outcome.NOT_FOUND`.
    """

    name = "ledger"
    capabilities = Capabilities(
        authorize_capture=True,
        partial_capture=True,
        cancel=True,
        refund=True,
        partial_refund=True,
        webhooks=True,
        polling=True,
        polls_report_refunds=True,
    )

    def __init__(self, context: ProviderContext) -> None:
        super().__init__(context)
        self.latency = 0.0
        """Seconds between a request's arrival (when it acts) and its answer's return."""
        self.transit = 0.0
        """Seconds a request travels before it arrives."""
        self.poll_latency = 0.0
        """Seconds a status answer travels back: it tells the books as they were when it was asked."""
        self.network: TaskGroup | None = None
        """A task group requests travel on, when set: a request then outlives a caller that stops waiting."""
        self.polls = 0
        """How many status polls were asked."""
        self.accounts: dict[str, LedgerAccount] = {}
        self.received: list[tuple[str, str, str | None]] = []
        self._lose: set[str] = set()
        self._refuse: set[str] = set()

    def lose_next(self, operation: str) -> None:
        """Lose the answer to the next ``operation`` request (it still arrives and acts)."""
        self._lose.add(operation)

    def refuse_next(self, operation: str) -> None:
        """Refuse the next ``operation`` request before it acts (:class:`ProviderNotSent`: nothing happened)."""
        self._refuse.add(operation)

    @property
    def captured_total(self) -> int:
        """Minor units captured across every account."""
        return sum(a.captured.minor_units for a in self.accounts.values() if a.captured is not None)

    @property
    def refunded_total(self) -> int:
        """Minor units refunded across every account."""
        return sum(a.refunded.minor_units for a in self.accounts.values())

    async def _request(self, operation: str, payment_id: str, refund_id: str | None, act: Callable[[], T]) -> T:
        """Send a request: it travels (:attr:`transit`), arrives and ``act`` s, then its answer comes back.

        On :attr:`network` the journey is the network's: a caller that stops waiting (its timeout, its
        cancellation) does not stop its request, which still arrives and acts."""
        if operation in self._refuse:
            self._refuse.discard(operation)
            raise ProviderNotSent(f"the ledger refused the {operation} of {payment_id} before acting on it")
        if self.network is None:
            return await self._answer(operation, await self._arrive(operation, payment_id, refund_id, act))
        arrived = anyio.Event()
        outcome: list[Any] = []

        async def journey() -> None:
            try:
                outcome.append(await self._arrive(operation, payment_id, refund_id, act))
            except Exception as error:  # the provider's refusal travels back to the caller
                outcome.append(error)
            arrived.set()

        self.network.start_soon(journey)
        await arrived.wait()
        if isinstance(outcome[0], Exception):
            raise outcome[0]
        return await self._answer(operation, outcome[0])

    async def _arrive(self, operation: str, payment_id: str, refund_id: str | None, act: Callable[[], T]) -> T:
        if self.transit:
            await anyio.sleep(self.transit)
        self.received.append((operation, payment_id, refund_id))
        return act()

    async def _answer(self, operation: str, update: T) -> T:
        if self.latency:
            await anyio.sleep(self.latency)
        if operation in self._lose:
            self._lose.discard(operation)
            raise ProviderOutcomeUnknown(f"the answer to {operation} was lost")
        return update

    def _account(self, payment: Payment) -> LedgerAccount:
        account = self.accounts.get(payment.id)
        if account is None:
            raise ProviderOutcomeUnknown(f"the ledger provider has no record of {payment.id}")
        return account

    async def initiate(self, payment: Payment) -> ProviderUpdate:
        """Receive the payment, then authorize or capture its whole amount."""

        def act() -> ProviderUpdate:
            account = self.accounts.setdefault(payment.id, LedgerAccount(f"led_{next(_counter)}", payment.amount))
            account.authorized = payment.amount
            if payment.capture:
                account.captured = payment.amount
            return account.report(payment.id)

        return await self._request("initiate", payment.id, None, act)

    async def capture(self, payment: Payment, amount: Money) -> ProviderUpdate:
        """Capture ``amount`` of an authorization (a second capture is refused at the provider)."""

        def act() -> ProviderUpdate:
            account = self._account(payment)
            if account.captured is None and not account.canceled:
                account.captured = amount
            return account.report(payment.id)

        return await self._request("capture", payment.id, None, act)

    async def cancel(self, payment: Payment) -> ProviderUpdate:
        """Void an authorization that was not captured."""

        def act() -> ProviderUpdate:
            account = self._account(payment)
            if account.captured is None:
                account.canceled = True
            return account.report(payment.id)

        return await self._request("cancel", payment.id, None, act)

    async def refund(self, payment: Payment, refund: Refund) -> RefundUpdate:
        """Pay ``refund.amount`` back, once per refund id."""

        def act() -> RefundUpdate:
            account = self._account(payment)
            account.refunds.setdefault(refund.id, refund.amount)
            return RefundUpdate(RefundStatus.SUCCEEDED, refund_id=refund.id, amount=account.refunds[refund.id])

        return await self._request("refund", payment.id, refund.id, act)

    async def check_status(self, payment: Payment) -> ProviderUpdate:
        """The books' truth about ``payment`` when asked, :attr:`poll_latency` seconds later."""
        self.polls += 1
        account = self.accounts.get(payment.id)
        if account is None:
            answer = ProviderUpdate(outcome=Outcome.NOT_FOUND, payment_id=payment.id)
        else:
            answer = account.report(payment.id)
        if self.poll_latency:
            await anyio.sleep(self.poll_latency)
        return answer

    def delivery(self, payment_id: str) -> tuple[bytes, dict[str, str]]:
        """A webhook delivery reporting the account of ``payment_id`` as it stands."""
        report = self.accounts[payment_id].report(payment_id)
        body = json.dumps(
            {"event": f"led_evt_{next(_counter)}", "report": serialization.unstructure(report)}, default=str
        ).encode()
        return body, {"x-ledger-signature": self._sign(body)}

    def _sign(self, body: bytes) -> str:
        secret = str(self.settings.get("webhook_secret", "ledger-secret"))
        return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()

    async def verify_webhook(self, body: bytes, headers: Mapping[str, str]) -> None:
        """Check the HMAC signature of a delivery."""
        if not hmac.compare_digest(headers.get("x-ledger-signature", ""), self._sign(body)):
            raise InvalidSignature("the ledger delivery's signature does not match")

    async def parse_webhook(self, body: bytes, headers: Mapping[str, str]) -> Sequence[ProviderUpdate]:
        """One report per delivery."""
        data = json.loads(body)
        report = serialization.structure(data["report"], ProviderUpdate)
        return [evolve(report, provider_event_id=data["event"])]


@hookimpl
def paycore_register_providers(register: ProviderRegistrar) -> None:
    """Register provider type ``ledger``."""
    register(LedgerProvider)

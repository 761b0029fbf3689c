"""``FakeProvider``: an in-process provider whose answers a test scripts.

It keeps its own ledger (what "the provider" believes about each payment), so
``check_status`` tells the truth even when an answer was lost on the way back,
and it signs JSON webhooks with HMAC-SHA256 (header ``x-fake-signature``) from
its ``webhook_secret`` setting. Register it with
``PaymentFlow.from_config(config, plugins=[paycore.testing.fake])`` and enable
it as ``{"providers": {"fake": {"type": "fake", "webhook_secret": "..."}}}``.
"""

from __future__ import annotations

import hmac
import itertools
import json
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from attrs import define, field

from paycore.errors import InvalidSignature, MalformedWebhook, ProviderNotSent, ProviderOutcomeUnknown
from paycore.hookspecs import ProviderRegistrar, hookimpl
from paycore.money import Money
from paycore.providers import Capabilities, Provider, ProviderContext
from paycore.records import NextAction, Payment, ProviderUpdate, Refund, RefundUpdate
from paycore.status import Outcome, RefundStatus
from paycore.wire import load_json_object

__all__ = ["FakeLedgerEntry", "FakeProvider", "mobile_money_lifecycle", "paycore_register_providers", "sign"]

SIGNATURE_HEADER = "x-fake-signature"

_counter = itertools.count(1)


_OUTCOMES = {outcome.value: outcome for outcome in Outcome}
_REFUND_STATUSES = {status.value: status for status in RefundStatus}
"""A webhook's outcome and refund statuses by value: a lookup, not an Enum call (an unknown one is a KeyError)."""
_ENCODER = json.JSONEncoder(check_circular=False)
"""``json.dumps``'s encoder without its check for cycles (a webhook body is a tree of plain values)."""


def sign(body: bytes, secret: str) -> str:
    """The ``x-fake-signature`` value of ``body``: its HMAC-SHA256 under ``secret``, in hex."""
    return hmac.digest(secret.encode(), body, "sha256").hex()


@define
class FakeLedgerEntry:
    """What the fake provider believes about one payment."""

    external_id: str
    payment_id: str
    amount: Money
    outcome: Outcome
    captured: Money | None = None
    refunds: dict[str, RefundUpdate] = field(factory=dict)


class FakeProvider(Provider):
    """A scriptable provider with every capability.

    ``script(operation, *answers)`` queues how the next calls of ``operation``
    end: ``"approve"`` (the default: capture, or authorize when the payment
    asked not to capture), ``"pending"`` (awaiting the customer), ``"authorize"``,
    ``"decline"``, ``"not_sent"`` (raises ``ProviderNotSent``, nothing happens),
    ``"lost"`` (it happens at the provider but the answer is lost: raises
    ``ProviderOutcomeUnknown``), ``"hang"`` (never answers: the flow's timeout).
    ``calls`` lists every call as ``(operation, payment_id)``.
    """

    name = "fake"
    settings_names: ClassVar[frozenset[str] | None] = frozenset({"webhook_secret"})
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
        self.ledger: dict[str, FakeLedgerEntry] = {}
        self.calls: list[tuple[str, str]] = []
        self._scripts: dict[str, list[str]] = {}
        self.poll_answer: str | None = None
        """Set to ``"lost"`` or ``"not_sent"`` to make ``check_status`` fail that way."""

    def script(self, operation: str, *answers: str) -> None:
        """Queue how the next ``operation`` calls end (see the class docstring)."""
        self._scripts.setdefault(operation, []).extend(answers)

    def _next(self, operation: str, default: str) -> str:
        queued = self._scripts.get(operation)
        return queued.pop(0) if queued else default

    async def _deliver(self, answer: str, update: ProviderUpdate) -> ProviderUpdate:
        if answer == "lost":
            raise ProviderOutcomeUnknown("connection reset after the request was sent")
        if answer == "hang":
            import anyio

            await anyio.sleep_forever()
        return update

    def _entry(self, payment: Payment) -> FakeLedgerEntry:
        entry = self.ledger.get(payment.id)
        if entry is None:
            raise ProviderOutcomeUnknown(f"the fake provider has no record of {payment.id}")
        return entry

    def update_for(self, entry: FakeLedgerEntry, **extra: Any) -> ProviderUpdate:
        """The provider's current view of ``entry`` as an update."""
        return ProviderUpdate(
            outcome=entry.outcome,
            external_id=entry.external_id,
            payment_id=entry.payment_id,
            authorized=entry.amount if entry.outcome is Outcome.AUTHORIZED else None,
            captured=entry.captured,
            refunds=tuple(entry.refunds.values()),
            **extra,
        )

    async def initiate(self, payment: Payment) -> ProviderUpdate:
        """Create the payment at the fake provider as scripted."""
        self.calls.append(("initiate", payment.id))
        answer = self._next("initiate", "approve" if payment.capture else "authorize")
        if answer == "not_sent":
            raise ProviderNotSent("connection refused")
        outcome = {
            "approve": Outcome.SUCCEEDED,
            "pending": Outcome.PENDING,
            "authorize": Outcome.AUTHORIZED,
            "decline": Outcome.FAILED,
        }.get(answer, Outcome.SUCCEEDED if payment.capture else Outcome.AUTHORIZED)
        entry = FakeLedgerEntry(f"fk_{next(_counter)}", payment.id, payment.amount, outcome)
        if outcome is Outcome.SUCCEEDED:
            entry.captured = payment.amount
        self.ledger[payment.id] = entry
        action = (
            NextAction("redirect", url=f"https://fake.invalid/pay/{entry.external_id}")
            if outcome is Outcome.PENDING
            else None
        )
        return await self._deliver(answer, self.update_for(entry, next_action=action))

    async def capture(self, payment: Payment, amount: Money) -> ProviderUpdate:
        """Capture ``amount`` as scripted."""
        self.calls.append(("capture", payment.id))
        answer = self._next("capture", "approve")
        if answer == "not_sent":
            raise ProviderNotSent("connection refused")
        entry = self._entry(payment)
        if answer != "decline":
            entry.outcome, entry.captured = Outcome.SUCCEEDED, amount
        return await self._deliver(answer, self.update_for(entry))

    async def cancel(self, payment: Payment) -> ProviderUpdate:
        """Cancel as scripted."""
        self.calls.append(("cancel", payment.id))
        answer = self._next("cancel", "approve")
        if answer == "not_sent":
            raise ProviderNotSent("connection refused")
        entry = self._entry(payment)
        if answer != "decline":
            entry.outcome = Outcome.CANCELED
        return await self._deliver(answer, self.update_for(entry))

    async def refund(self, payment: Payment, refund: Refund) -> RefundUpdate:
        """Refund as scripted (``"pending"`` leaves the refund pending for a webhook)."""
        self.calls.append(("refund", payment.id))
        answer = self._next("refund", "approve")
        if answer == "not_sent":
            raise ProviderNotSent("connection refused")
        entry = self._entry(payment)
        status = {"decline": RefundStatus.FAILED, "pending": RefundStatus.PENDING}.get(answer, RefundStatus.SUCCEEDED)
        update = RefundUpdate(status, refund_id=refund.id, external_id=f"fkr_{next(_counter)}", amount=refund.amount)
        entry.refunds[refund.id] = update
        if answer in ("lost", "hang"):
            await self._deliver(answer, ProviderUpdate())
        return update

    async def check_status(self, payment: Payment) -> ProviderUpdate:
        """The ledger's truth about ``payment``."""
        self.calls.append(("check_status", payment.id))
        if self.poll_answer == "not_sent":
            raise ProviderNotSent("connection refused")
        if self.poll_answer == "lost":
            raise ProviderOutcomeUnknown("timed out")
        entry = self.ledger.get(payment.id)
        if entry is None:
            return ProviderUpdate(outcome=Outcome.NOT_FOUND, message="unknown at the provider")
        return self.update_for(entry)

    # -- webhooks ------------------------------------------------------------------------

    def settle(self, payment_id: str, outcome: Outcome, *, captured: Money | None = None) -> FakeLedgerEntry:
        """Change the provider's truth, as a customer or the gateway would."""
        entry = self.ledger[payment_id]
        entry.outcome = outcome
        if outcome is Outcome.SUCCEEDED:
            entry.captured = captured or entry.amount
        return entry

    def webhook(
        self,
        payment_id: str,
        *,
        outcome: Outcome | None = None,
        captured: Money | None = None,
        authorized: Money | None = None,
        refunds: Sequence[RefundUpdate] = (),
        event_id: str | None = None,
        secret: str | None = None,
        amounts: bool = True,
    ) -> tuple[bytes, dict[str, str]]:
        """A signed webhook body and headers reporting ``outcome`` of ``payment_id``.

        A money outcome carries its amount, as a real gateway's does: ``captured``
        and ``authorized`` default to what the ledger holds (the payment's amount);
        ``amounts=False`` leaves them out, to test reports that lack them.
        """
        entry = self.ledger[payment_id]
        reported = outcome or entry.outcome
        if amounts and captured is None and reported is Outcome.SUCCEEDED:
            captured = entry.captured or entry.amount
        if amounts and authorized is None and reported is Outcome.AUTHORIZED:
            authorized = entry.amount
        body = {
            "id": event_id or f"evt_{next(_counter)}",
            "payment_id": payment_id,
            "external_id": entry.external_id,
            "outcome": reported._value_,  # its value, without Enum.value's Python-level call
            "captured": None if captured is None else [captured.minor_units, captured.currency],
            "authorized": None if authorized is None else [authorized.minor_units, authorized.currency],
            "refunds": [
                {"refund_id": r.refund_id, "status": r.status._value_, "minor_units": r.amount.minor_units}
                for r in refunds
                if r.amount is not None
            ],
        }
        raw = _ENCODER.encode(body).encode()
        key = secret if secret is not None else self.settings.secret("webhook_secret")
        return raw, {SIGNATURE_HEADER: sign(raw, key), "content-type": "application/json"}

    async def verify_webhook(self, body: bytes, headers: Mapping[str, str]) -> None:
        """Check the HMAC signature (constant time)."""
        given = headers.get(SIGNATURE_HEADER)
        if not given:
            raise InvalidSignature(f"missing {SIGNATURE_HEADER} header")
        expected = sign(body, self.settings.secret("webhook_secret")).encode()
        if not hmac.compare_digest(given.encode("utf-8", "surrogatepass"), expected):  # any text: a wrong one
            raise InvalidSignature("the webhook signature does not match")

    async def parse_webhook(self, body: bytes, headers: Mapping[str, str]) -> Sequence[ProviderUpdate]:
        """Read the JSON body into one update."""
        try:
            data = load_json_object(body, what="fake webhook body")  # strict: no duplicate keys, lone surrogates...
            entry = self.ledger.get(data["payment_id"])
            currency = entry.amount.currency if entry else "XOF"
            captured = data.get("captured")
            authorized = data.get("authorized")
            return [
                ProviderUpdate(
                    outcome=_OUTCOMES[data["outcome"]],
                    payment_id=data["payment_id"],
                    external_id=data.get("external_id"),
                    provider_event_id=data["id"],
                    captured=Money(captured[0], captured[1]) if captured else None,
                    authorized=Money(authorized[0], authorized[1]) if authorized else None,
                    refunds=tuple(
                        RefundUpdate(
                            _REFUND_STATUSES[r["status"]],
                            refund_id=r["refund_id"],
                            amount=Money(r["minor_units"], currency),
                        )
                        for r in data.get("refunds", ())
                    ),
                )
            ]
        except (ValueError, KeyError, TypeError, IndexError) as error:
            raise MalformedWebhook(f"unreadable fake webhook: {type(error).__name__}: {error}") from None


@hookimpl
def paycore_register_providers(register: ProviderRegistrar) -> None:
    """Register provider type ``fake``."""
    register(FakeProvider)


async def mobile_money_lifecycle(
    flow: Any, *, tag: str, amount: Money, refund: Money, provider: str = "fake"
) -> Payment:
    """A mobile-money payment's whole life on ``flow`` through its :class:`FakeProvider` ``provider``.

    Create with an idempotency key, paid by a signed webhook, a partial refund
    (keyed) that the provider leaves pending, and its confirmation by a signed
    webhook; returns the payment, partially refunded. The benchmarks time it.
    """
    fake = flow.provider(provider)
    assert isinstance(fake, FakeProvider)
    fake.script("initiate", "pending")
    checkout = await flow.create_payment(
        amount=amount, provider=provider, order_id=f"T-{tag}", idempotency_key=f"order-{tag}"
    )
    payment_id = checkout.payment.id
    fake.settle(payment_id, Outcome.SUCCEEDED)
    await flow.handle_webhook(provider, *fake.webhook(payment_id))
    fake.script("refund", "pending")
    made = await flow.refund(payment_id, amount=refund, idempotency_key=f"refund-{tag}")
    confirmed = RefundUpdate(RefundStatus.SUCCEEDED, made.id, amount=refund)
    (final,) = await flow.handle_webhook(provider, *fake.webhook(payment_id, refunds=[confirmed]))
    assert isinstance(final, Payment)
    assert final.refunded_amount == refund, "the lifecycle did not end partially refunded"
    return final

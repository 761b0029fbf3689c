"""``Provider``: the async base class payment providers implement.

A provider talks to one payment service and reports what it said as a
:class:`~paycore.records.ProviderUpdate`. It never changes a payment and never
touches paycore's storage: :class:`~paycore.flow.PaymentFlow` applies the
update through the state machine, the repository and the idempotency store, so
every provider gets concurrency control, webhook dedupe, events and idempotency
for free.

A call ends in one of three ways:

* it returns: a **definitive** answer (approved, declined, pending customer);
* it raises :class:`~paycore.errors.ProviderNotSent`: the request never left
  (connection refused, bad local credentials); nothing changed, a retry is safe;
* it raises :class:`~paycore.errors.ProviderOutcomeUnknown` (or times out): sent,
  no usable answer; only :meth:`Provider.check_status` may settle it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from attrs import frozen

from paycore import serialization
from paycore.clock import utcnow
from paycore.errors import InvalidSignature, UnsupportedOperation
from paycore.money import Money
from paycore.records import Payment, ProviderUpdate, Refund, RefundUpdate
from paycore.secrets import Settings

if TYPE_CHECKING:
    import pluggy

    from paycore.calls import ProviderCall

__all__ = ["Capabilities", "Provider", "ProviderContext", "checks_nothing"]


@frozen
class Capabilities:
    """What a provider can do; the flow refuses the rest with a clear error."""

    authorize_capture: bool = False
    """Authorize first, capture later (``capture=False`` payments)."""
    partial_capture: bool = False
    """Capture less than authorized and release the rest."""
    cancel: bool = False
    """Cancel a payment before capture (void an authorization)."""
    refund: bool = False
    partial_refund: bool = False
    """Refund part of the captured amount, possibly several times."""
    webhooks: bool = False
    """Confirms payments by webhook (``verify_webhook``/``parse_webhook`` work)."""
    polling: bool = False
    """``check_status`` asks the provider for the truth."""
    polls_report_refunds: bool = False
    """``check_status`` lists every refund the provider holds for the payment, so a refund
    it does not list never reached it. Without this, a poll never fails a pending refund:
    refunds are settled by their own answer or webhook."""
    webhook_amounts: bool = True
    """Webhooks carry the amounts of the money outcomes they report, so a report of money
    without its amount is refused as malformed. A provider whose notifications never carry
    amounts sets ``False`` (and must poll): the flow then confirms such a report by polling."""
    one_id_per_payment: bool = False
    """The provider names a payment by one id all its life (the ``external_id`` its create
    answered with: a Wave checkout session). A report that names the payment with another is
    about another object at the provider (a second checkout made for the same payment), so
    nothing of it is applied and the payment is flagged for an operator."""
    one_id_per_kind: bool = False
    """The provider names a payment by at most one id of each kind, an id's kind being what comes
    before its first ``_`` (Stripe: one Checkout Session ``cs_...``, one PaymentIntent ``pi_...``).
    A report naming the payment by an id of a kind the payment already holds under another id is
    about another object at the provider (another intent carrying a copy of the payment's
    metadata), and is treated as for :attr:`one_id_per_payment`."""


def _until_lease_ends(call: ProviderCall) -> bool:
    """True until ``call``'s lease has run out by the wall clock."""
    return not call.lease_ran_out(utcnow())


@frozen
class ProviderContext:
    """What a provider instance is built with.

    ``code`` is the name a tenant enabled it under (``"wave"``), unique per
    tenant; ``settings`` its configuration (secrets masked); ``plugin_manager``
    and ``repository`` let a provider with storage of its own (the cash drawer)
    ask the configured adapter for it through a hook.
    """

    code: str
    tenant: str | None
    settings: Settings
    plugin_manager: pluggy.PluginManager | None = None
    repository: Any = None
    webhook_url: str | None = None
    """Where this provider's webhooks should go, from the configuration's ``webhook_url``."""
    may_still_arrive: Callable[[ProviderCall], bool] = _until_lease_ends
    """True while a request of the call (one the payment carries) may still be on its way to the provider or be
    answered: by the flow's own rule (its clock, the call's lease and timeout, and the calls this process still
    awaits). A provider with storage of its own (the cash drawer) asks it before it settles a call by what it
    does not find. Default: until the call's lease has run out by the wall clock."""


class Provider:
    """Base class of payment providers. Subclass it and register the class:

    .. code-block:: python

        @paycore.hookimpl
        def paycore_register_providers(register):
            register(MyProvider)

    Set :attr:`name` (the provider type used in configuration),
    :attr:`capabilities` and :attr:`currencies`; override the operations the
    capabilities promise. Unimplemented operations refuse; webhook
    verification fails closed.
    """

    name: ClassVar[str] = ""
    """The provider type, as written in configuration (``type = "cash"``)."""
    capabilities: ClassVar[Capabilities] = Capabilities()
    currencies: frozenset[str] | None = None
    """Accepted ISO 4217 codes; ``None`` accepts any. Set on the class; a provider whose settings narrow it
    (a cash provider's ``currency``) sets it on the instance, so the flow and every listing of providers for a
    currency follow what this one provider takes."""
    settings_names: ClassVar[frozenset[str] | None] = None
    """The settings this provider reads. A configuration giving it any other (a misspelled
    ``curency``) is refused with a :class:`~paycore.errors.ConfigurationError` naming it and
    these, besides ``label`` (a name to show customers, read by the framework adapters).
    ``None``: not declared, and any setting is accepted."""
    secret_settings: ClassVar[frozenset[str]] = frozenset()
    """Settings that are secrets whatever their names (``crc_key``, ``second_key``): they are
    masked in every repr, log line and error, as names with a secret marker already are."""
    state_type: ClassVar[type[Any] | None] = None
    """The attrs class of the data this provider keeps on a payment for later calls (a
    session id, a token): it reports one in ``ProviderUpdate.provider_state`` and reads it
    back with :meth:`state`."""

    def __init__(self, context: ProviderContext) -> None:
        self.context = context

    @property
    def code(self) -> str:
        """The code this instance was enabled under."""
        return self.context.code

    @property
    def settings(self) -> Settings:
        """This instance's settings."""
        return self.context.settings

    def __repr__(self) -> str:
        return f"<{type(self).__name__} code={self.code!r} tenant={self.context.tenant!r}>"

    def state(self, payment: Payment) -> Any:
        """The data this provider kept on ``payment``, as an instance of :attr:`state_type`.

        ``None`` when the payment holds none yet. Raises ``TypeError`` if the
        provider declares no :attr:`state_type`.
        """
        if self.state_type is None:
            raise TypeError(f"provider {type(self).__name__} declares no state_type")
        if not payment.provider_state:
            return None
        return serialization.structure(dict(payment.provider_state), self.state_type)

    def _unsupported(self, operation: str) -> UnsupportedOperation:
        return UnsupportedOperation(f"provider {self.code!r} ({self.name}) does not support {operation}")

    async def check_payment(self, payment: Payment) -> None:
        """Refuse a payment this provider cannot take, before anything is stored.

        Raise a :class:`~paycore.errors.ValidationError` subclass (cash: too
        little tendered, no open drawer); the payment is then never created and
        its idempotency key stays free. The default accepts everything.
        """

    async def check_capture(self, payment: Payment, amount: Money) -> None:
        """Refuse a capture of ``amount`` before anything is stored (an amount the gateway cannot take).

        Raise a :class:`~paycore.errors.ValidationError` subclass; the default accepts.
        """

    async def check_refund(self, payment: Payment, refund: Refund) -> None:
        """Refuse ``refund`` (not stored yet) before anything is stored (cash: not enough in the drawer).

        ``refund`` carries its amount, reason and the caller's ``metadata`` (for
        cash, the till it would be paid out of). Raise a
        :class:`~paycore.errors.ValidationError` subclass; the default accepts.
        """

    async def initiate(self, payment: Payment) -> ProviderUpdate:
        """Start ``payment`` at the provider; report its outcome and the customer's next action."""
        raise self._unsupported("initiate")

    async def capture(self, payment: Payment, amount: Money) -> ProviderUpdate:
        """Capture ``amount`` (at most the authorized amount) of an authorized payment."""
        raise self._unsupported("capture")

    async def cancel(self, payment: Payment) -> ProviderUpdate:
        """Cancel a payment that is not captured (void its authorization)."""
        raise self._unsupported("cancel")

    async def refund(self, payment: Payment, refund: Refund) -> RefundUpdate:
        """Refund ``refund.amount`` of ``payment``; report the refund's status."""
        raise self._unsupported("refund")

    async def check_status(self, payment: Payment) -> ProviderUpdate:
        """Ask the provider what became of ``payment`` (and of its refunds)."""
        raise self._unsupported("status polling")

    async def give_up_refund(self, payment: Payment, refund: Refund) -> RefundUpdate | None:
        """An operator fails ``refund`` (pending, no request of it can still arrive): make sure it is never
        paid out from now on; or, if it was paid out after all, say so (its update), and the resolution is
        refused. Default: ``None``, nothing to make sure of (a gateway's refund that never arrived does not
        arrive later). A provider with storage of its own that a stopped process may still write (the cash
        drawer) records it given up."""
        return None

    async def verify_webhook(self, body: bytes, headers: Mapping[str, str]) -> None:
        """Raise :class:`~paycore.errors.InvalidSignature` unless the delivery is authentic.

        Called before anything is parsed. The default refuses everything: a
        provider that does not verify webhooks accepts none.
        """
        raise InvalidSignature(f"provider {self.code!r} ({self.name}) does not verify webhooks")

    async def parse_webhook(self, body: bytes, headers: Mapping[str, str]) -> Sequence[ProviderUpdate]:
        """Turn a verified delivery into updates; :class:`~paycore.errors.MalformedWebhook` if unreadable."""
        raise self._unsupported("webhooks")

    async def aclose(self) -> None:
        """Release what the provider holds (HTTP clients); called when the flow closes."""


def checks_nothing(provider: Provider, check: str) -> bool:
    """True when ``provider`` keeps :class:`Provider`'s own ``check`` (``"check_refund"``...), which refuses nothing."""
    return getattr(type(provider), check, None) is getattr(Provider, check)

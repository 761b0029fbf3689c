"""The errors of the cash plugin, under :class:`paycore.errors.PaycoreError`.

Each also subclasses the core class that says how to handle it: a
``ValidationError`` was refused before anything changed, a ``NotFound`` names
something that does not exist in the caller's scope, a ``ProviderNotEnabled``
names a tenant that does not enable the cash provider.
"""

from __future__ import annotations

from paycore.errors import NotFound, PaycoreError, ProviderNotEnabled, ProviderOutcomeUnknown, ValidationError

__all__ = [
    "CashError",
    "CashNotEnabled",
    "CashSaleFailed",
    "CashSaleUnsettled",
    "DrawerAlreadyOpen",
    "DrawerClosed",
    "DrawerNotFound",
    "ForeignCurrency",
    "InsufficientDrawerCash",
    "InsufficientTender",
    "InvalidCashRequest",
    "NoOpenDrawer",
    "RefundGivenUp",
    "RefundIdTaken",
]


class CashError(PaycoreError):
    """The root of the cash plugin's errors."""


class CashNotEnabled(CashError, ProviderNotEnabled):
    """The tenant is not one the configuration names, or it does not enable the cash provider.

    Raised before anything is read or stored, as the flow raises
    :class:`~paycore.errors.ProviderNotEnabled` for a provider a tenant does not enable.
    """


class DrawerNotFound(CashError, NotFound):
    """No drawer session with that id (in this tenant)."""


class DrawerAlreadyOpen(CashError, ValidationError):
    """The till already has an open session: close it before opening another."""

    @classmethod
    def of_till(cls, till: str, tenant: str | None, open_session_id: str | None) -> DrawerAlreadyOpen:
        """The refusal of a session of ``till``, naming the session open there (``None``: closed since)."""
        of_tenant = f" of tenant {tenant!r}" if tenant is not None else ""
        held = f" ({open_session_id})" if open_session_id is not None else ", closed since"
        return cls(
            f"till {till!r}{of_tenant} already has an open drawer session{held}; close it before opening another"
        )

    @classmethod
    def of_id(cls, session_id: str) -> DrawerAlreadyOpen:
        """The refusal of a session whose id is taken."""
        return cls(f"drawer session {session_id} exists already")


class DrawerClosed(CashError, ValidationError):
    """The session is closed: it takes no cash and cannot be closed again."""


class NoOpenDrawer(CashError, ValidationError):
    """Cash was taken or paid out at a till whose drawer is not open."""


class RefundIdTaken(CashError, ValidationError):
    """The drawer paid out another payment's refund under this refund's id: it pays out nothing under it again.

    Refunds stored by a release whose refund ids named only their idempotency key could share an id across
    payments; refund again under a new idempotency key.
    """


class RefundGivenUp(CashError, ValidationError):
    """The refund was given up (its call's lease ran out with nothing paid out, and it was failed): the drawer
    pays nothing out under its id, ever. Refund again under a new idempotency key.
    """

    @classmethod
    def of(cls, refund_id: str) -> RefundGivenUp:
        """The refusal of a REFUND movement under ``refund_id``, a refund given up."""
        return cls(
            f"refund {refund_id} was given up (its call ran out of time with nothing paid out, and it failed): "
            "the drawer pays nothing out under it; refund again under a new idempotency key"
        )


class InsufficientTender(CashError, ValidationError):
    """Less cash was tendered than the amount due (and split tender was not asked for)."""


class InsufficientDrawerCash(CashError, ValidationError):
    """A refund or pay-out asks for more cash than the drawer holds."""


class ForeignCurrency(CashError, ValidationError):
    """An amount is not in the drawer's currency."""


class InvalidCashRequest(CashError, ValidationError):
    """A drawer or cash request is malformed: a missing till, a blank name, a negative amount."""


class CashSaleUnsettled(CashError, ProviderOutcomeUnknown):
    """A cash sale's recording in the drawer did not answer: no change is due and the order is not paid yet.

    ``payment_id`` names the payment; ``PaymentFlow.refresh`` settles it (it was recorded, or it failed).
    """

    def __init__(self, message: str, *, payment_id: str) -> None:
        super().__init__(message)
        self.payment_id = payment_id


class CashSaleFailed(CashError):
    """A cash sale ended without being recorded in the drawer: take the cash again, under a new idempotency key."""

    def __init__(self, message: str, *, payment_id: str) -> None:
        super().__init__(message)
        self.payment_id = payment_id

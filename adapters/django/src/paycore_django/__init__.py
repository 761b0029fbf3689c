"""paycore for Django: payments kept by the Django ORM, one flow per event loop, signals, admin and views.

.. code-block:: python

    # settings.py
    INSTALLED_APPS = [..., "paycore_django"]
    PAYCORE = {"providers": {"cash": {"type": "cash"}}}   # repository: "django" by default

    # a sync view
    import paycore_django
    checkout = paycore_django.blocking_flow().create_payment(amount=..., provider="cash", order_id="T4-17")

    # async code
    payment = await paycore_django.flow().get_payment(payment_id)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from paycore.blocking import BlockingPaymentFlow
    from paycore.flow import PaymentFlow

__all__ = ["blocking_flow", "flow"]


def flow() -> PaymentFlow:
    """The running event loop's :class:`~paycore.flow.PaymentFlow`, built from settings on its first use (async code).

    One per event loop (a provider's connections belong to the loop they were
    opened on): call it inside the async code that uses it; see :func:`paycore_django.conf.flow`.
    """
    from paycore_django.conf import flow as process_flow

    return process_flow()


def blocking_flow() -> BlockingPaymentFlow:
    """The process's :class:`~paycore.blocking.BlockingPaymentFlow`, opened on first use (sync code)."""
    from paycore_django.conf import blocking_flow as process_blocking_flow

    return process_blocking_flow()

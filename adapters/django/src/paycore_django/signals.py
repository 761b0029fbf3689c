"""Django signals of paycore: a Django-native way to follow payments.

:data:`payment_event` is sent once for every :class:`paycore.records.PaymentEvent`,
after the change that made it is committed (the ``paycore_payment_event``
hook of :mod:`paycore_django.plugin` sends it). Receivers get the event and
the payment as it was right after that change:

.. code-block:: python

    from django.dispatch import receiver
    from paycore.status import PaymentStatus
    from paycore_django.models import Payment
    from paycore_django.signals import payment_event

    @receiver(payment_event, sender=Payment)
    def mark_order_paid(sender, event, payment, **kwargs):
        if event.to_status == PaymentStatus.SUCCEEDED:
            Order.objects.filter(pk=payment.order_id).update(paid=True)

A receiver that raises is logged and does not undo the payment's change:
the change is committed before the signal is sent.

Receivers run on a worker thread, on database connections of their own, and
the call that made the event waits for them. Called inside a transaction of
yours (``transaction.atomic()``, ``ATOMIC_REQUESTS``), they do not see what it
has not committed, and one writing a row it holds would wait for it while it
waits for them: :func:`paycore_django.blocking_flow` then waits for them some
seconds at most (:mod:`paycore_django.callers`). Call paycore once your
transaction has committed (docs/django.md, "Receivers and your transactions").
"""

from __future__ import annotations

from django.dispatch import Signal

__all__ = ["payment_event"]

payment_event = Signal()
"""Sent after commit for every payment event: ``sender`` is the
:class:`paycore_django.models.Payment` model class; keyword arguments
``event`` (:class:`paycore.records.PaymentEvent`) and ``payment``
(:class:`paycore.records.Payment`)."""

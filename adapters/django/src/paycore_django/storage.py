"""paycore's storage in the Django ORM: :class:`DjangoPaymentRepository` and :class:`DjangoIdempotencyStore`.

Both take the Django database alias they work on (``using="default"``) and run
every method as one ``transaction.atomic`` unit of work on a worker thread
(:mod:`paycore_django.units`). Plugins that keep rows of their own beside a
payment repository (the cash plugin's drawers) recognise these by their
``storage_backend`` (``"django"``) and build on their ``using``.
"""

from __future__ import annotations

from paycore_django.idempotency import DjangoIdempotencyStore
from paycore_django.repository import DjangoPaymentRepository
from paycore_django.units import run_unit, run_unit_sync

__all__ = ["DjangoIdempotencyStore", "DjangoPaymentRepository", "run_unit", "run_unit_sync"]

"""What changed between two versions of a payment, for a store that writes only that.

A store that keeps a payment as rows (the Django ORM) may update in place only what changed since the
copy a write follows (:func:`followed_copy`), and insert only the refunds added (:func:`refund_changes`).
"""

from __future__ import annotations

from paycore.records import Payment

__all__ = ["followed_copy", "refund_changes"]


def followed_copy(stored: Payment | None, payment: Payment) -> Payment | None:
    """``stored`` when ``payment`` is its next version, else ``None``.

    A store that writes only what changed since the copy a write follows may
    trust that copy only when it is the version the write's check requires the
    row to hold (``payment.version - 1``); any other copy says nothing of the row.
    """
    return stored if stored is not None and stored.version == payment.version - 1 else None


def refund_changes(stored: Payment | None, payment: Payment) -> tuple[list[int], list[int]] | None:
    """Where ``payment``'s refunds differ from ``stored``'s: the positions of those added and of those changed.

    For a store that keeps refunds as rows numbered by position: it inserts the added ones and updates
    the changed ones in place. ``None`` when it cannot: ``stored`` is not known, or one of its refunds
    moved or is gone (the rows are then written again, as the positions could clash).
    """
    if stored is None:
        return None
    before = {refund.id: (position, refund) for position, refund in enumerate(stored.refunds)}
    added: list[int] = []
    changed: list[int] = []
    for position, refund in enumerate(payment.refunds):
        old = before.get(refund.id)
        if old is None:
            added.append(position)
        elif old[0] != position:
            return None
        elif old[1] != refund:
            changed.append(position)
    if len(payment.refunds) - len(added) != len(before):
        return None
    return added, changed

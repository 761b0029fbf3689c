"""``CursorConformance``: a listing's cursor that paycore did not issue never reaches the store's queries.

Part of :class:`~paycore.testing.repository_suite.RepositoryConformance`. A cursor
carries a checksum, which is no secret: anyone who has read paycore's code can
re-make one around a position of their choosing. Whatever position a cursor
names, a repository answers a page or paycore's :class:`~paycore.errors.ValidationError`,
never its driver's error (a time its column type cannot hold, an id its encoding
cannot write).
"""

from __future__ import annotations

import base64
import hashlib
import json

import pytest

from paycore.errors import ValidationError
from paycore.storage import PaymentRepository
from paycore.testing.records import make_payment

__all__ = ["CursorConformance", "cursor_naming"]


def cursor_naming(created_at: str, payment_id: str, listing_scope: str) -> str:
    """A cursor, checksum and all, naming the position ``(created_at, payment_id)`` in the listing whose
    :meth:`~paycore.listing.PaymentListing.scope` is ``listing_scope``: as someone who read paycore's code makes one."""
    body = base64.urlsafe_b64encode(
        json.dumps([1, created_at, payment_id, listing_scope], separators=(",", ":")).encode()
    ).decode()
    body = body.rstrip("=")
    return f"{body}.{hashlib.sha256(body.encode()).hexdigest()[:16]}"


class CursorConformance:
    """A re-made cursor of a position no store can hold is refused before any query."""

    @pytest.mark.parametrize(
        ("created_at", "payment_id"),
        [
            ("0001-01-01T00:00:00+14:00", "pay_x"),  # before year 1 once in UTC
            ("9999-12-31T23:59:59-14:00", "pay_x"),  # after year 9999 once in UTC
            ("2026-12-01T12:00:00+00:00", "\udc80"),  # a lone surrogate: no encoding writes it
            ("2026-12-01T12:00:00+00:00", "pay\x00x"),
            ("2026-12-01T12:00:00+00:00", ""),
        ],
        ids=["before-year-1", "after-year-9999", "lone-surrogate", "nul", "empty-id"],
    )
    async def test_a_re_made_cursor_of_a_position_no_store_holds_is_refused(
        self, repository: PaymentRepository, created_at: str, payment_id: str
    ) -> None:
        """A listing continued from such a cursor ended in the SQL driver's OverflowError or UnicodeEncodeError."""
        from paycore.listing import PaymentListing

        await repository.add(make_payment(tenant="chez-awa"), [])
        made = cursor_naming(created_at, payment_id, PaymentListing.build(tenant="chez-awa").scope())
        with pytest.raises(ValidationError, match="is not one paycore issued"):
            await repository.list_payments(tenant="chez-awa", after=made)

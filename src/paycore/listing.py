"""Listing payments a page at a time: the filters, the order and the cursor.

A listing is keyset-paginated on ``(created_at, id)``: a page starts strictly
after the last payment of the page before, so payments inserted between two
pages never shift a page nor repeat a payment (a payment created later than the
cursor's position appears on a later page of an oldest-first listing).

A cursor (``PaymentPage.next_cursor``) is an opaque string. It carries the last
position and a digest of the listing it belongs to (tenant, filters, order), and
a checksum of both: an edited cursor, or one of another listing (another
tenant's), is refused with :class:`~paycore.errors.ValidationError`. It holds
nothing secret: a creation time and a payment id the caller has already seen.

Every repository reads a listing through :class:`PaymentListing`, so all of
them validate and scope cursors the same way.
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

from attrs import frozen

from paycore.config import is_code
from paycore.errors import ValidationError
from paycore.records import Payment
from paycore.status import PaymentStatus
from paycore.wire import is_id, shown

if TYPE_CHECKING:
    from paycore.storage import PaymentRepository

__all__ = ["MAX_LIMIT", "ListingPosition", "PaymentListing", "PaymentPage", "check_limit", "read_page"]

MAX_LIMIT: Final = 1_000_000_000
"""The largest ``limit`` of a listing or page: far above any page, within every store's integers."""

_CURSOR_VERSION: Final = 1
_CHECK_LENGTH: Final = 16


@frozen
class ListingPosition:
    """Where a page ended: the last payment's creation time and id."""

    created_at: datetime
    id: str


@frozen
class PaymentPage:
    """One page of a listing, and the cursor of the next one (``None``: this is the last page)."""

    items: list[Payment]
    next_cursor: str | None = None


def _aware(value: datetime | None, what: str) -> datetime | None:
    if value is not None and not isinstance(value, datetime):
        raise ValidationError(f"{what} must be a timezone-aware datetime, not {shown(value)}")
    if value is None:
        return None
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValidationError(f"{what} {value.isoformat()} has no time zone; pass a timezone-aware datetime")
    try:
        return value.astimezone(UTC)  # the instant every store compares, in the zone every store keeps
    except OverflowError:
        raise ValidationError(f"{what} {value.isoformat()} is out of range once in UTC") from None


def _encode(data: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(data, separators=(",", ":")).encode()).decode().rstrip("=")


def _checksum(body: str) -> str:
    from hashlib import sha256  # loaded on first use: importing paycore stays cheap

    return sha256(body.encode()).hexdigest()[:_CHECK_LENGTH]


@frozen(kw_only=True)
class PaymentListing:
    """A validated listing: which payments (every filter must match), in which order, from where.

    Build it with :meth:`build`, which checks every argument; a repository then
    filters with :meth:`matches` and sorts with :meth:`sort_key` (memory), or
    translates the same fields into a query (SQL). ``tenant=None`` lists every tenant.
    """

    tenant: str | None = None
    order_id: str | None = None
    status: PaymentStatus | None = None
    created_from: datetime | None = None
    """Created at or after this time (inclusive)."""
    created_before: datetime | None = None
    """Created strictly before this time."""
    newest_first: bool = False
    after: ListingPosition | None = None
    """Start strictly after this position (in the listing's order)."""
    limit: int | None = None

    @classmethod
    def build(
        cls,
        *,
        tenant: str | None = None,
        order_id: str | None = None,
        status: PaymentStatus | None = None,
        limit: int | None = None,
        created_from: datetime | None = None,
        created_before: datetime | None = None,
        newest_first: bool = False,
        after: str | None = None,
    ) -> PaymentListing:
        """The listing these arguments ask for; ``after`` is a cursor of this same listing.

        Raises :class:`ValidationError` for a naive time, a negative limit, a
        cursor that is damaged or edited, or one issued for another listing.
        """
        if limit is not None:
            check_limit(limit, 0)
        if tenant is not None and not is_code(tenant):
            raise ValidationError(f"tenant must be a tenant's name (see paycore.config.is_code), not {shown(tenant)}")
        if order_id is not None and not is_id(order_id):
            raise ValidationError(f"order_id must be an order's reference (plain text), not {shown(order_id)}")
        listing = cls(
            tenant=tenant,
            order_id=order_id,
            status=None if status is None else PaymentStatus(status),
            created_from=_aware(created_from, "created_from"),
            created_before=_aware(created_before, "created_before"),
            newest_first=bool(newest_first),
            limit=limit,
        )
        if after is None:
            return listing
        return cls(
            tenant=listing.tenant,
            order_id=listing.order_id,
            status=listing.status,
            created_from=listing.created_from,
            created_before=listing.created_before,
            newest_first=listing.newest_first,
            limit=limit,
            after=listing.position_of(after),
        )

    # -- cursors -----------------------------------------------------------------------------

    def scope(self) -> str:
        """A digest of what this listing selects and its order (not its position or page size)."""
        described = [
            self.tenant,
            self.order_id,
            None if self.status is None else self.status.value,
            None if self.created_from is None else self.created_from.isoformat(),
            None if self.created_before is None else self.created_before.isoformat(),
            self.newest_first,
        ]
        return _checksum(json.dumps(described))

    def cursor_after(self, payment: Payment) -> str:
        """The cursor of the page that follows ``payment`` in this listing."""
        body = _encode([_CURSOR_VERSION, payment.created_at.isoformat(), payment.id, self.scope()])
        return f"{body}.{_checksum(body)}"

    def position_of(self, cursor: str) -> ListingPosition:
        """The position ``cursor`` names; :class:`ValidationError` if it is not one of this listing's."""
        quoted = shown(cursor) if not isinstance(cursor, str) or len(cursor) > 40 else repr(cursor)
        damaged = ValidationError(
            f"cursor {quoted} is not one paycore issued (damaged or edited); "
            "pass the next_cursor of the previous page unchanged"
        )
        if not isinstance(cursor, str) or not cursor.isascii():  # every cursor paycore issues is ASCII
            raise damaged
        body, _, check = cursor.partition(".")
        if not body or check != _checksum(body):
            raise damaged
        try:
            version, created_at, payment_id, scope = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
            at = datetime.fromisoformat(created_at)
        except (binascii.Error, UnicodeDecodeError, TypeError, ValueError, RecursionError):
            raise damaged from None
        if version != _CURSOR_VERSION or not is_id(payment_id) or at.tzinfo is None or at.utcoffset() is None:
            raise damaged
        try:
            at = at.astimezone(UTC)  # as every cursor paycore issues: one no store's time type refuses
        except OverflowError:
            raise damaged from None
        if scope != self.scope():
            raise ValidationError(
                f"cursor {quoted} belongs to another listing (another tenant, filter or order); "
                "a cursor continues only the listing that issued it"
            )
        return ListingPosition(at, payment_id)

    # -- reading -----------------------------------------------------------------------------

    def matches(self, payment: Payment) -> bool:
        """True when ``payment`` passes every filter and comes after :attr:`after`."""
        if self.tenant is not None and payment.tenant != self.tenant:
            return False
        if self.order_id is not None and payment.order_id != self.order_id:
            return False
        if self.status is not None and payment.status != self.status:
            return False
        if self.created_from is not None and payment.created_at < self.created_from:
            return False
        if self.created_before is not None and payment.created_at >= self.created_before:
            return False
        if self.after is not None:
            key = (payment.created_at, payment.id)
            mark = (self.after.created_at, self.after.id)
            return key < mark if self.newest_first else key > mark
        return True

    @staticmethod
    def sort_key(payment: Payment) -> tuple[datetime, str]:
        """The key payments are ordered by (reversed when :attr:`newest_first`)."""
        return (payment.created_at, payment.id)

    def select(self, payments: list[Payment]) -> list[Payment]:
        """The page of this listing out of ``payments`` (all of them, any order): filtered, sorted, cut."""
        found = sorted(filter(self.matches, payments), key=self.sort_key, reverse=self.newest_first)
        return found if self.limit is None else found[: self.limit]


async def read_page(
    repository: PaymentRepository,
    *,
    limit: int,
    after: str | None = None,
    tenant: str | None = None,
    order_id: str | None = None,
    status: PaymentStatus | None = None,
    created_from: datetime | None = None,
    created_before: datetime | None = None,
    newest_first: bool = False,
) -> PaymentPage:
    """One page of at most ``limit`` payments from ``repository``, with the cursor of the next page.

    It asks for one payment more than ``limit``: the next cursor is given only
    when a next page has at least one payment (a page of :data:`MAX_LIMIT` that
    fills up gives one all the same).
    """
    check_limit(limit, 1)
    filters: dict[str, Any] = {
        "tenant": tenant,
        "order_id": order_id,
        "status": status,
        "created_from": created_from,
        "created_before": created_before,
        "newest_first": newest_first,
    }
    # One more than the page, within what a repository is asked for: a page of MAX_LIMIT that fills up gives a
    # cursor, whose next page may be empty.
    asked = min(limit + 1, MAX_LIMIT)
    found = await repository.list_payments(limit=asked, after=after, **filters)
    if len(found) < asked:
        return PaymentPage(items=found)
    items = found[:limit]
    return PaymentPage(items=items, next_cursor=PaymentListing.build(**filters).cursor_after(items[-1]))


def check_limit(limit: object, least: int) -> None:
    """Refuse a ``limit`` that is not a whole number from ``least`` to :data:`MAX_LIMIT`."""
    if isinstance(limit, bool) or not isinstance(limit, int) or not least <= limit <= MAX_LIMIT:
        raise ValidationError(f"limit must be a whole number from {least} to {MAX_LIMIT}; not {shown(limit)}")

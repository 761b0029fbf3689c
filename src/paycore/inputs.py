"""What a caller may pass to the flow: the checks on a request's ids, text, documents and basket.

A payment keeps what it is created with for its whole life, and every store
must hold it the same way, so a value no store could keep (text with control
characters or lone surrogates, metadata that is not JSON, a price that is not
:class:`~paycore.money.Money`) is refused here, before any key is claimed or
anything stored, with a :class:`~paycore.errors.ValidationError` (an amount:
:class:`~paycore.errors.InvalidAmount`). The limits are those of
:mod:`paycore.wire`, which checks what providers report the same way; a tenant's
name is at most :data:`~paycore.config.MAX_CODE_LENGTH` characters, as in the
configuration. Metadata is at most :data:`MAX_METADATA_BYTES` of JSON; a line item's
quantity at most :data:`MAX_ITEM_QUANTITY`, and its total (quantity times unit price)
at most :data:`~paycore.money.MAX_MINOR_UNITS` minor units; a basket at most
:data:`MAX_LINE_ITEMS` lines, whose names take at most :data:`MAX_ITEM_NAME_BYTES`.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta
from typing import Any, Final

from paycore import wire
from paycore.config import is_code
from paycore.errors import InvalidAmount, InvalidReport, PaymentNotFound, ValidationError
from paycore.money import MAX_MINOR_UNITS, Money
from paycore.records import Customer, LineItem

__all__ = [
    "MAX_ITEM_NAME_BYTES",
    "MAX_ITEM_QUANTITY",
    "MAX_LINE_ITEMS",
    "MAX_METADATA_BYTES",
    "as_kept",
    "check_age",
    "check_capture",
    "check_customer",
    "check_items",
    "check_money",
    "check_note",
    "check_payment_id",
    "check_reference",
    "check_text",
    "check_url",
    "json_document",
]

MAX_METADATA_BYTES: Final = 64 * 1024
"""The largest metadata (a payment's, a refund's) paycore keeps: 64 KiB of JSON, written compact (no spaces) in
UTF-8. Ample for any provider's metadata (Stripe's 50 keys of 500 characters are 27 KB), small enough that a
payment carrying it, and every webhook that echoes it, stays far below the 1 MiB a webhook endpoint accepts."""
MAX_ITEM_QUANTITY: Final = 10**9
"""The largest quantity of one line item: a billion (of pieces, grams, seconds...)."""
MAX_LINE_ITEMS: Final = 1000
"""The most line items a payment's basket holds."""
MAX_ITEM_NAME_BYTES: Final = 64 * 1024
"""The most bytes of UTF-8 the names of a basket's line items take together: with its metadata's, a payment's
basket, and every webhook that echoes it, stays far below the 1 MiB a webhook endpoint accepts."""


def check_payment_id(value: object, tenant: object = None) -> str:
    """``value`` if it could be a payment's id, seen by ``tenant`` (``None`` or a tenant's name, see
    :func:`~paycore.config.is_code`); :class:`PaymentNotFound` otherwise, as for any payment that does not exist."""
    if not wire.is_id(value) or not (tenant is None or is_code(tenant)):
        raise PaymentNotFound("no payment with that id" + ("" if tenant is None else " for that tenant"))
    return value  # type: ignore[return-value]  # is_id: a str


def check_reference(value: object, *, what: str) -> str:
    """``value`` if it is an id paycore can store (an order id); :class:`ValidationError` otherwise."""
    return _checked(wire.check_id, value, what)


def check_text(value: object, *, what: str) -> str:
    """``value`` if it is text paycore can store (a description, a reason); :class:`ValidationError` otherwise."""
    return _checked(wire.check_text, value, what)


def check_note(value: object, *, what: str) -> str:
    """``value`` if it is text paycore can store that says something (an operator's note: what was found, and
    where); :class:`ValidationError` for blank text too, as a resolution without a word leaves no trail."""
    note = check_text(value, what=what)
    if not any(unicodedata.category(character)[0] in "LNPS" and character not in _INVISIBLE for character in note):
        raise ValidationError(f"{what} must say what was found (it is blank)")
    return note


_INVISIBLE: Final = frozenset("\u115f\u1160\u3164\uffa0\u2800")
"""Letters and symbols that show as nothing (the Hangul fillers, the blank Braille pattern); a note needs a letter,
digit, punctuation or symbol besides them (marks, spaces, format characters such as a zero-width space show nothing
alone)."""


def check_url(value: object, *, what: str) -> str | None:
    """``value`` if it is ``None`` or an absolute http(s) URL; :class:`ValidationError` otherwise."""
    return None if value is None else _checked(wire.check_url, value, what)


def check_money(value: object, *, what: str) -> Money | None:
    """``value`` if it is ``None`` or :class:`Money`; :class:`InvalidAmount` otherwise."""
    if value is None or isinstance(value, Money):
        return value
    raise InvalidAmount(f"{what} must be a Money, not {type(value).__name__}: {wire.shown(value)}")


def check_age(value: object, *, most: float) -> timedelta:
    """``value`` (a ``timedelta`` or a number of seconds, from 0 to ``most``) as a ``timedelta``;
    :class:`ValidationError` otherwise (a bool, NaN, infinity, a negative age)."""
    seconds = value.total_seconds() if isinstance(value, timedelta) else value
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or not 0 <= seconds <= most:
        raise ValidationError(f"an age must be a timedelta or seconds from 0 to {most:g}, not {wire.shown(value)}")
    return value if isinstance(value, timedelta) else timedelta(seconds=seconds)


def check_capture(value: object) -> bool:
    """``value`` if it is a ``bool``: whether to capture at once."""
    if type(value) is not bool:
        raise ValidationError(f"capture must be True or False, not {wire.shown(value)}")
    return value


def check_customer(value: object) -> Customer | None:
    """``value`` if it is ``None`` or a :class:`Customer` whose fields are text.

    A refusal never quotes what was given: a customer's details are personal data."""
    if value is None:
        return None
    if not isinstance(value, Customer):
        raise ValidationError(f"customer must be a Customer, not {type(value).__name__}")
    for name in ("email", "name", "phone"):
        field = getattr(value, name)
        if field is not None and not wire.is_text(field):
            raise ValidationError(
                f"customer {name} must be a string of at most {wire.MAX_TEXT_LENGTH} characters "
                "without control characters or lone surrogates"
            )
    return value


def check_items(value: object) -> tuple[LineItem, ...]:
    """``value`` as a tuple of :class:`LineItem`: a name, a whole quantity from 1 to :data:`MAX_ITEM_QUANTITY`, a
    price of zero or more; the line's total, quantity times price, at most :data:`~paycore.money.MAX_MINOR_UNITS`
    minor units (what any amount paycore keeps may be). At most :data:`MAX_LINE_ITEMS` of them, their names at
    most :data:`MAX_ITEM_NAME_BYTES` of UTF-8 together."""
    if type(value) is not tuple and (isinstance(value, str | bytes | Mapping) or not isinstance(value, Sequence)):
        raise ValidationError(f"items must be a sequence of LineItem, not {type(value).__name__}")
    items = tuple(value)
    if len(items) > MAX_LINE_ITEMS:
        raise ValidationError(f"a payment may hold at most {MAX_LINE_ITEMS} line items, not {len(items)}")
    names = 0
    for item in items:
        if not isinstance(item, LineItem):
            raise ValidationError(f"items must be LineItem records, not {type(item).__name__}: {wire.shown(item)}")
        check_text(item.name, what="a line item's name")
        names += len(item.name.encode())
        if names > MAX_ITEM_NAME_BYTES:
            raise ValidationError(
                f"the names of a payment's line items may take at most {MAX_ITEM_NAME_BYTES} bytes of UTF-8 together"
            )
        if type(item.quantity) is not int or not 0 < item.quantity <= MAX_ITEM_QUANTITY:
            raise ValidationError(
                f"line item {item.name!r} needs an int quantity from 1 to {MAX_ITEM_QUANTITY}, "
                f"not {wire.shown(item.quantity)}"
            )
        price = item.unit_price
        if not isinstance(price, Money) or not 0 <= price.minor_units <= MAX_MINOR_UNITS:
            raise InvalidAmount(f"line item {item.name!r}: its price must be Money of zero or more, not {price!r}")
        if price.minor_units * item.quantity > MAX_MINOR_UNITS:
            raise ValidationError(
                f"line item {item.name!r} totals more than {MAX_MINOR_UNITS} minor units "
                f"({item.quantity} x {price.minor_units}), the most an amount may be"
            )
    return items


def json_document(value: object, *, what: str) -> dict[str, Any]:
    """``value`` (``None``: empty) as a JSON object paycore keeps: a copy, so the caller's later changes to it
    change nothing stored. Its keys must be strings; its values JSON (no ``NaN``, no sets or other objects,
    no lone surrogates or NUL characters), nested at most :data:`~paycore.wire.MAX_JSON_DEPTH` deep, at most
    :data:`MAX_METADATA_BYTES` long written as compact UTF-8 JSON."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ValidationError(f"{what} must be a mapping of strings to JSON values, not {type(value).__name__}")
    if not value:
        return {}
    _check_tree(value, what)
    try:
        text = json.dumps(dict(value), ensure_ascii=False, allow_nan=False, separators=(",", ":"))
        size = len(text.encode("utf-8"))  # a lone surrogate cannot be
        copy = None if size > MAX_METADATA_BYTES else json.loads(text)  # read back only what will be kept
    except (TypeError, ValueError, RecursionError) as error:  # UnicodeEncodeError is a ValueError
        raise ValidationError(f"{what} must be JSON data: {type(error).__name__}") from None
    if copy is None:
        raise ValidationError(
            f"{what} may hold at most {MAX_METADATA_BYTES} bytes of JSON (compact, UTF-8), not {size}"
        )
    if "\\u0000" in text and wire.holds_nul(copy):  # JSON escapes it; no store keeps it as text
        raise ValidationError(f"{what} holds a NUL character (U+0000), which no store keeps as text")
    return copy  # type: ignore[no-any-return]  # a JSON object read back


def as_kept(value: Any) -> Any:
    """``value`` (a :func:`json_document` or a part of one) as a record keeps it: a whole float that JSON writes
    with an exponent (``1e+23``, any whole float from 1e16) as the integer it is, which is how PostgreSQL's
    ``jsonb`` would hold it, and would give back another integer read from the exponent's digits; so a record
    reads back equal from any store. What a request is fingerprinted on stays the document as given."""
    if isinstance(value, float):
        return int(value) if value.is_integer() and abs(value) >= _EXPONENT_FROM else value
    if isinstance(value, dict):
        return {key: as_kept(item) for key, item in value.items()}
    if isinstance(value, list):
        return [as_kept(item) for item in value]
    return value


_EXPONENT_FROM: Final = 1e16
"""From this size on Python's JSON writes a float with an exponent."""


def _check_tree(root: Mapping[Any, Any], what: str) -> None:
    """Refuse keys that are not strings and nesting deeper than :data:`~paycore.wire.MAX_JSON_DEPTH` (no recursion,
    so no Python's limit decides)."""
    stack: list[tuple[Any, int]] = [(root, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > wire.MAX_JSON_DEPTH and isinstance(value, Mapping | list | tuple):
            raise ValidationError(f"{what} nests deeper than {wire.MAX_JSON_DEPTH} levels")
        if isinstance(value, Mapping):
            if not all(type(key) is str for key in value):
                raise ValidationError(f"{what} keys must be strings")
            stack.extend((item, depth + 1) for item in value.values())
        elif isinstance(value, list | tuple):
            stack.extend((item, depth + 1) for item in value)


def _checked(check: Callable[..., str], value: object, what: str) -> str:
    try:
        return check(value, what=what)
    except InvalidReport as error:
        raise ValidationError(str(error)) from None

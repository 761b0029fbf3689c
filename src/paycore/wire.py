"""What paycore accepts from a provider: JSON bodies, ids, text, URLs and amounts.

A provider reads what a gateway sent (a webhook body, an API answer) with
:func:`load_json_object`, which refuses anything a strict reader would not
understand the same way: bytes that are not UTF-8, text that is not JSON, a
top level that is not an object, nesting deeper than :data:`MAX_JSON_DEPTH`,
duplicate keys, ``NaN``/``Infinity`` and lone surrogates (``"\\ud800"``, which
no database stores). It raises :class:`~paycore.errors.MalformedWebhook`.

The report records of :mod:`paycore.records` (``ProviderUpdate``,
``RefundUpdate``, ``NextAction``) check their fields with :func:`check_id`,
:func:`check_text`, :func:`check_url` and :func:`check_amount` as they are
built, so a report that could not be stored never exists. These raise
:class:`InvalidReport`; a provider turns it into ``MalformedWebhook`` when the
report comes from a delivery, or into a provider error when it comes from an
API answer.
"""

from __future__ import annotations

import json
import re
import reprlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

import attrs

from paycore import serialization
from paycore.errors import InvalidReport, MalformedWebhook
from paycore.frozen import FrozenDict
from paycore.money import MAX_MINOR_UNITS, Money

__all__ = [
    "MAX_ID_LENGTH",
    "MAX_JSON_DEPTH",
    "MAX_PROVIDER_STATE_BYTES",
    "MAX_REFERENCES",
    "MAX_TEXT_LENGTH",
    "MAX_URL_LENGTH",
    "InvalidReport",
    "check_amount",
    "check_id",
    "check_provider_state",
    "check_references",
    "check_text",
    "check_url",
    "error_code",
    "holds_nul",
    "is_amount",
    "is_id",
    "is_text",
    "load_json_object",
    "one_line",
    "partly_hidden",
    "quoted",
    "shown",
]

MAX_ID_LENGTH: Final = 255
"""The longest id a provider may report (external ids, event ids, refund ids)."""
MAX_TEXT_LENGTH: Final = 2000
"""The longest message or text a provider may report (failure messages, QR data)."""
MAX_URL_LENGTH: Final = 2048
"""The longest URL a provider may report (a checkout page)."""
MAX_JSON_DEPTH: Final = 64
"""How deeply objects and arrays may nest in a provider's JSON body."""

_NOT_IN_IDS: Final = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
_NOT_IN_TEXT: Final = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")
_NOT_IN_URLS: Final = re.compile("[\x00-\x20\x7f-\x9f\ud800-\udfff]")
_NOT_JSON_TEXT: Final = re.compile("[\x00\ud800-\udfff]")
"""What a JSON string may escape but no store keeps as text: NUL (PostgreSQL refuses it), lone surrogates."""
_ERROR_CODE: Final = re.compile(r"[a-z0-9][a-z0-9_-]{0,99}")
_URL_START: Final = re.compile(r"https?://[^/?#@:][^/?#@]*(?:[/?#]|$)", re.IGNORECASE)
_JSON_TYPES: Final = {dict: "object", list: "array", str: "string", int: "number", float: "number", bool: "boolean"}

_shown = reprlib.Repr()
_shown.maxstring = 40
_shown.maxother = 40
_shown.maxlevel = 2


def shown(value: object) -> str:
    """A short repr of a value, for error messages (never the whole of a large value)."""
    try:
        return _shown.repr(value)
    except ValueError:  # an integer of more digits than Python spells out
        return f"a {type(value).__name__} too large to show"


def quoted(text: str, limit: int = 200) -> str:
    """A caller's text as a log line shows it: quoted as Python writes it (a line break as ``\\n``: no line is
    forged) and cut to ``limit`` characters, its start kept (a path's tenant and provider)."""
    return repr(text[:limit])


def one_line(text: str) -> str:
    """``text`` on one line: each run of whitespace, line breaks included, as one space. Stored text (a refund's
    reason from the till, a fraud check's message, an operator's note) may hold line breaks; printed as it is in
    a report or a table, it would make lines of its own there, such as a forged total."""
    return " ".join(text.split())


def partly_hidden(value: object) -> str:
    """A person's detail (an email, a name, a phone) as a repr shows it: its first and last two characters, so
    that a log line, a traceback's locals or an error tracker that prints a record does not carry who it is."""
    if not isinstance(value, str):
        return repr(value)
    return repr(f"{value[:2]}***{value[-2:]}") if len(value) > 6 else "'***'"


def error_code(written: object, shown: str) -> str:
    """A gateway's error code to compare with the codes it documents: ``written``, as the gateway wrote it, when it
    is shaped as such codes are (lower-case words joined by ``-`` or ``_``: ``checkout-refund-failed``,
    ``not_found``), else ``shown``, the code as a message quotes it (every secret and phone hidden). Hiding a secret
    found inside a code (a webhook secret "fail" in ``checkout-refund-failed``) must not turn it into another."""
    return written if isinstance(written, str) and _ERROR_CODE.fullmatch(written) else shown


def is_id(value: object) -> bool:
    """True when ``value`` passes :func:`check_id` (without building its error message)."""
    return type(value) is str and 0 < len(value) <= MAX_ID_LENGTH and _NOT_IN_IDS.search(value) is None


def is_text(value: object) -> bool:
    """True when ``value`` passes :func:`check_text` with its default limit."""
    return type(value) is str and len(value) <= MAX_TEXT_LENGTH and _NOT_IN_TEXT.search(value) is None


def is_amount(value: object) -> bool:
    """True when ``value`` passes :func:`check_amount`."""
    return type(value) is Money and 0 <= value.minor_units <= MAX_MINOR_UNITS


def check_id(value: object, *, what: str) -> str:
    """``value`` if it is an id paycore can store: a non-empty ``str`` of at most
    :data:`MAX_ID_LENGTH` characters without control characters or lone surrogates."""
    if not isinstance(value, str) or not value or len(value) > MAX_ID_LENGTH:
        raise InvalidReport(
            f"{what} must be a non-empty string of at most {MAX_ID_LENGTH} characters, not {shown(value)}"
        )
    if _NOT_IN_IDS.search(value):
        raise InvalidReport(f"{what} must not hold control characters or lone surrogates: {shown(value)}")
    return value


def check_text(value: object, *, what: str, limit: int = MAX_TEXT_LENGTH) -> str:
    """``value`` if it is text paycore can store: a ``str`` of at most ``limit`` characters,
    with no lone surrogates and no control characters other than tab and line breaks."""
    if not isinstance(value, str) or len(value) > limit:
        raise InvalidReport(f"{what} must be a string of at most {limit} characters, not {shown(value)}")
    if _NOT_IN_TEXT.search(value):
        raise InvalidReport(f"{what} must not hold control characters or lone surrogates: {shown(value)}")
    return value


def check_url(value: object, *, what: str) -> str:
    """``value`` if it is an absolute ``http``/``https`` URL with a host, of at most
    :data:`MAX_URL_LENGTH` characters, without spaces or control characters."""
    if not isinstance(value, str) or len(value) > MAX_URL_LENGTH:
        raise InvalidReport(f"{what} must be a URL string of at most {MAX_URL_LENGTH} characters, not {shown(value)}")
    if _NOT_IN_URLS.search(value) or not _URL_START.match(value):
        raise InvalidReport(
            f"{what} must be an absolute http(s) URL such as 'https://pay.example/c/1', not {shown(value)}"
        )
    return value


def check_amount(value: object, *, what: str) -> Money:
    """``value`` if it is :class:`~paycore.money.Money` between zero and :data:`~paycore.money.MAX_MINOR_UNITS`."""
    if not isinstance(value, Money):
        raise InvalidReport(f"{what} must be Money, not {type(value).__name__}: {shown(value)}")
    if value.minor_units < 0:
        raise InvalidReport(f"{what} must not be negative: {value}")
    if value.minor_units > MAX_MINOR_UNITS:
        raise InvalidReport(f"{what} must be at most {MAX_MINOR_UNITS} minor units, not {value.minor_units}")
    return value


def load_json_object(body: bytes, *, what: str) -> dict[str, Any]:
    """Parse ``body`` (UTF-8 JSON) into a ``dict``, or raise :class:`~paycore.errors.MalformedWebhook`.

    ``what`` names the body in the error (``"dummy webhook body"``). Refused:
    anything but bytes, invalid UTF-8, invalid JSON, a top level that is not an
    object, nesting deeper than :data:`MAX_JSON_DEPTH`, duplicate keys in an
    object, ``NaN``/``Infinity`` and numbers too large for a float, lone surrogates.
    """
    if not isinstance(body, bytes | bytearray | memoryview):
        raise MalformedWebhook(f"{what} must be bytes, not {type(body).__name__}")
    try:
        text = bytes(body).decode("utf-8")
    except UnicodeDecodeError as error:
        raise MalformedWebhook(f"{what} is not UTF-8 (invalid byte at offset {error.start})") from None
    try:
        value = _DECODER.decode(text)
    except _Refused as refusal:
        raise MalformedWebhook(f"{what} {refusal}") from None
    except RecursionError:
        raise MalformedWebhook(f"{what} nests deeper than {MAX_JSON_DEPTH} levels") from None
    except json.JSONDecodeError as error:
        raise MalformedWebhook(f"{what} is not JSON: {error.msg} (line {error.lineno}, column {error.colno})") from None
    except ValueError as error:  # an integer of more digits than Python converts
        raise MalformedWebhook(f"{what} is not JSON paycore reads: {error}") from None
    if not isinstance(value, dict):
        raise MalformedWebhook(f"{what} must be a JSON object, not a JSON {_JSON_TYPES.get(type(value), 'null')}")
    # Decoded UTF-8 holds no surrogate: only a \u escape can make one. And a text with fewer brackets
    # than the depth limit cannot nest deeper. Most bodies need no walk at all.
    if "\\u" in text or text.count("{") + text.count("[") > MAX_JSON_DEPTH:
        _check_tree(value, what)
    return value


class _Refused(Exception):
    """What a parse hook refuses, said after the body's name."""


def _object(pairs: Sequence[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _Refused(f"repeats the key {shown(key)} in one object")
            seen.add(key)
    return result


def _no_constant(constant: str) -> Any:
    raise _Refused(f"holds {constant}, which is not JSON")


def _finite_float(number: str) -> float:
    value = float(number)
    if value in (float("inf"), float("-inf")):
        raise _Refused(f"holds a number too large for a float: {shown(number)}")
    return value


_DECODER: Final = json.JSONDecoder(object_pairs_hook=_object, parse_constant=_no_constant, parse_float=_finite_float)
"""One decoder with the strict hooks, built once (``json.loads`` with hooks builds one per call)."""


def _check_tree(root: dict[str, Any], what: str) -> None:
    """Refuse nesting deeper than :data:`MAX_JSON_DEPTH` and strings with NUL or lone surrogates (no recursion)."""
    stack: list[tuple[Any, int]] = [(root, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict | list):
            if depth > MAX_JSON_DEPTH:
                raise MalformedWebhook(f"{what} nests deeper than {MAX_JSON_DEPTH} levels")
            if isinstance(value, dict):
                for key, item in value.items():
                    _check_string(key, what)
                    stack.append((item, depth + 1))
            else:
                stack.extend((item, depth + 1) for item in value)
        elif isinstance(value, str):
            _check_string(value, what)


def _check_string(value: str, what: str) -> None:
    found = _NOT_JSON_TEXT.search(value)
    if found is not None:
        character = "a NUL character (U+0000)" if found.group() == "\x00" else "a lone surrogate"
        raise MalformedWebhook(f"{what} holds {character} ({shown(value)}), which is not text")


def holds_nul(value: object) -> bool:
    """True when a string of the JSON data ``value`` (a key included) holds U+0000, which no store keeps as text."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return True
        elif isinstance(item, Mapping):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
    return False


MAX_REFERENCES: Final = 16
"""The most references a provider may report for one payment."""
MAX_PROVIDER_STATE_BYTES: Final = 8192
"""The largest provider state a payment keeps, as compact JSON."""


def check_references(value: Iterable[str]) -> tuple[str, ...]:
    """``value`` as a tuple of reported references; :class:`InvalidReport` if it cannot be one."""
    if value == ():
        return ()
    if isinstance(value, str | bytes | Mapping) or not isinstance(value, Iterable):
        raise InvalidReport(f"references must be a sequence of ids, not {type(value).__name__}")
    references = tuple(value)
    if len(references) > MAX_REFERENCES:
        raise InvalidReport(f"at most {MAX_REFERENCES} references, not {len(references)}")
    for reference in references:
        if not is_id(reference):
            check_id(reference, what="a reference")
    return references


def check_provider_state(value: object) -> Mapping[str, Any] | None:
    """A provider's own data for a payment as a :class:`~paycore.frozen.FrozenDict` (an attrs instance is
    unstructured), exactly as a store gives it back once stored: frozen all the way down, every array (a list or
    a tuple) a :class:`~paycore.frozen.FrozenList`, every key a string, an enum its plain value."""
    if value is None:
        return None
    if attrs.has(type(value)):
        value = serialization.unstructure(value)
    if not isinstance(value, Mapping) or not all(isinstance(key, str) for key in value):
        raise InvalidReport(
            f"provider_state must be an attrs record or a mapping of strings, not {type(value).__name__}"
        )
    try:
        text = json.dumps(value if isinstance(value, dict) else dict(value), separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError, RecursionError) as error:
        raise InvalidReport(f"provider_state must be plain JSON data: {error}") from None
    if "\\u0000" in text and holds_nul(value):
        raise InvalidReport("provider_state holds a NUL character (U+0000), which no store keeps as text")
    size = len(text)
    if size > MAX_PROVIDER_STATE_BYTES:
        raise InvalidReport(f"provider_state may hold at most {MAX_PROVIDER_STATE_BYTES} bytes of JSON, not {size}")
    # Read back as a store reads it: a tuple is an array, a key or an enum is a plain string...
    return value if type(value) is FrozenDict else FrozenDict(json.loads(text))

"""``Secret`` and ``Settings``: configuration values that never leak into a repr or a log."""

from __future__ import annotations

import bisect
import math
import re
from collections.abc import Iterable, Iterator, Mapping
from functools import partial
from typing import Any, Final
from urllib.parse import unquote

from paycore.errors import ConfigurationError
from paycore.wire import MAX_URL_LENGTH, InvalidReport, check_url, shown

__all__ = [
    "SECRET_MARKERS",
    "Secret",
    "Settings",
    "hide_phones",
    "hide_secrets",
    "kind_of_setting",
    "read_seconds",
    "redact_url",
    "shown_setting",
]

SECRET_MARKERS: Final = (
    "secret",
    "password",
    "token",
    "api_key",
    "apikey",
    "private",
    "credential",
    "signing",
    "hmac",
)
"""A setting whose name contains one of these is wrapped in :class:`Secret` on load."""


_SCHEME: Final = r"(?<![A-Za-z0-9+.-])[A-Za-z][A-Za-z0-9+.-]{0,31}://"
"""Where a URL starts: a scheme of at most 32 characters, not inside a longer word."""
_USER: Final = re.compile(rf"{_SCHEME}[^:/\s]*:")
"""A URL up to the ``:`` after its user, where a password starts (a user may hold ``@``: ``admin@server``)."""
_PASSWORD_STOP: Final = re.compile(rf"\n|(?<=[\s,;'\"]){_SCHEME}")
"""Where a password cannot reach: the end of its line, another URL after a space, comma, semicolon or quote."""
_HOST_AFTER: Final = re.compile(r"[^@/?#\s]*(?:[/?#\s'\"]|$)")
"""A host after a password's ``@``: no ``@`` up to a ``/?#``, a space, a quote or the end."""


def _hide_passwords(text: str) -> str:
    """``text`` with every URL's password shown as ``***``, in time linear in its length.

    A password runs from after ``user:`` to the last ``@`` before a host, short of a stop
    (:data:`_PASSWORD_STOP`): it may hold ``/@?#``, spaces and ``x://``. A query holding an ``@``, or text
    after the URL holding one, is hidden with it: never too little. The last ``@`` before each stop is found
    once, however many URLs start before it.
    """
    if "://" not in text:
        return text
    stops = [stop.start() for stop in _PASSWORD_STOP.finditer(text)]
    stops.append(len(text))
    last_at: dict[int, int] = {}  # a stop -> the last "@" before it (after the stop before) with a host after it
    kept: list[str] = []
    done = position = 0
    while (user := _USER.search(text, position)) is not None:
        start = user.end()
        index = bisect.bisect_left(stops, start)
        stop = stops[index]
        if stop not in last_at:
            last_at[stop] = _last_at(text, stops[index - 1] if index else 0, stop)
        at = last_at[stop]
        if at <= start:  # no password: the next URL may start inside this one
            position = user.start() + 1
            continue
        kept += (text[done:start], "***")
        done = at
        position = at + 1
    return "".join((*kept, text[done:])) if kept else text


def _last_at(text: str, low: int, high: int) -> int:
    """The last ``@`` of ``text[low:high]`` a host follows; ``-1`` if none."""
    at = text.rfind("@", low, high)
    while at >= 0 and not _HOST_AFTER.match(text, at + 1):
        at = text.rfind("@", low, at)
    return at


_QUERY_NAME: Final = re.compile(r"[?&;]([^=&#;?\s]{1,128})=")
"""A query parameter's name, up to its ``=`` (not its value: a parameter may sit in another's value)."""
_SECRET_NAME: Final = re.compile(r"pass|pwd|secret|token|key|credential|auth", re.IGNORECASE)
"""A query parameter name that carries a secret: ``?password=``, ``&sslpassword=``, ``?api_key=``..."""
_QUERY_VALUE: Final = re.compile(r"[^&\n]+")
"""A secret parameter's value: to the next ``&`` or the end of the line. A raw ``#``, ``;`` or space in a
password is hidden with it: too much hidden of a text that follows a URL, never too little of a password."""


def _hide_query_secrets(text: str) -> str:
    """``text`` with the value of every secret query parameter shown as ``***`` (in time linear in its length)."""
    kept: list[str] = []
    done = 0
    for name in _QUERY_NAME.finditer(text):
        if name.start() < done or not _SECRET_NAME.search(unquote(name[1])):  # ?p%61ssword= is ?password=
            continue
        value = _QUERY_VALUE.match(text, name.end())
        if value is not None:
            kept += (text[done : name.end()], "***")
            done = value.end()
    return "".join((*kept, text[done:])) if kept else text


def redact_url(text: str) -> str:
    """``text`` with the password of every URL in it, and every secret query parameter, shown as ``***``.

    >>> redact_url("postgresql://paycore:s3cret@db.internal/paycore")
    'postgresql://paycore:***@db.internal/paycore'
    >>> redact_url("redis://127.0.0.1:6379/0?password=s3cret&db=1")
    'redis://127.0.0.1:6379/0?password=***&db=1'
    """
    return _hide_query_secrets(_hide_passwords(text))


class Secret:
    """A string that shows as ``'***'`` in every repr, str and format; ``reveal()`` gives it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        if isinstance(value, Secret):
            value = value.reveal()
        if not isinstance(value, str):
            raise ConfigurationError(f"a secret must be a string, not {kind_of_setting(value)}")
        self._value = value

    def reveal(self) -> str:
        """The secret's value: pass it to the one call that needs it, never log it."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("Secret", self._value))


def hide_secrets(text: str, secrets: Iterable[Secret]) -> str:
    """``text`` with every occurrence of each of ``secrets`` shown as ``***``, the longest first.

    For what a gateway wrote back (an error's text may echo the API key it was shown): it is quoted to an
    operator, never with a secret in it."""
    for value in sorted((secret.reveal() for secret in secrets), key=len, reverse=True):
        if value:
            text = text.replace(value, "***")
    return text


_DIGITS_WRITTEN: Final = re.compile(r"[+(]{0,2}[0-9](?:[0-9\s\-./()]*[0-9])?\)?")
"""A run of digits as a person or a gateway writes a phone number: ``+221 76-123.45/67``, ``(+221) 76 123 45 67``,
``(77 123 45 67)``, with the bracket that closes it. One character class and no nested repetition: found in time
linear in the text's length, whatever it holds."""


def hide_phones(text: str, phones: Iterable[str | Secret | None]) -> str:
    """``text`` with each of ``phones`` shown as ``***`` however it is written there: with or without its ``+``
    and country code, a national ``0``, spaces, dashes, dots or parentheses between its digits.

    For what a gateway wrote back about a customer's payment: its error text may echo their phone, which no
    message or log line carries. A number is found by its last eight digits (its subscriber part in every
    country's plan) in a run of digits and those separators; the run is hidden up to them, with whatever digits
    come before them in it. A number of fewer than eight digits is left as it is."""
    for phone in phones:
        value = phone.reveal() if isinstance(phone, Secret) else phone
        digits = "".join(character for character in value or "" if "0" <= character <= "9")
        if len(digits) >= 8:
            text = _DIGITS_WRITTEN.sub(partial(_hidden_run, tail=digits[-8:]), text)
    return text


def _hidden_run(match: re.Match[str], *, tail: str) -> str:
    """The run of digits and separators ``match`` found, with each stretch ending in the digits ``tail`` shown as
    ``***``."""
    run = match.group()
    at = [index for index, character in enumerate(run) if "0" <= character <= "9"]
    digits = "".join(run[index] for index in at)
    stretches, cut, found = 0, 0, digits.find(tail)
    while found >= 0:
        stretches, cut = stretches + 1, at[found + len(tail) - 1] + 1
        found = digits.find(tail, found + len(tail))
    hidden, rest = run[:cut], run[cut:]
    if rest.startswith(")") and hidden.count("(") > hidden.count(")"):
        rest = rest[1:]  # the bracket that closed what is hidden goes with it
    return "***" * stretches + rest


def _is_secret_name(name: str) -> bool:
    lowered = name.lower()
    return any(marker in lowered for marker in SECRET_MARKERS)


def _wrap_secret(value: Any) -> Any:
    if isinstance(value, str):
        return Secret(value)
    if isinstance(value, (list, tuple)):
        return tuple(_wrap_secret(item) for item in value)
    return value


def _masked(data: Mapping[str, Any]) -> dict[str, Any]:
    """``data`` as a repr may show it: a secret-named value ``'***'`` whatever its type (a table given where a
    string belongs), URLs without their passwords, and the same within nested tables and arrays of them."""
    shown: dict[str, Any] = {}
    for key, value in data.items():
        if _is_secret_name(str(key)) and type(value) is tuple:
            value = tuple(item if isinstance(item, Secret) else "***" for item in value)
        elif _is_secret_name(str(key)) and not isinstance(value, Secret):
            value = "***"
        else:
            value = _masked_value(value)
        shown[key] = value
    return shown


def _masked_value(value: Any) -> Any:
    """A value under a name that is not a secret's, as a repr may show it (see :func:`_masked`)."""
    if isinstance(value, Mapping):
        return _masked(value)
    if isinstance(value, str):
        return redact_url(value)
    if isinstance(value, (list, tuple)):
        return type(value)(_masked_value(item) for item in value)
    return value


def kind_of_setting(value: object) -> str:
    """What a configuration value is, in the words of the file it was written in (its value never shown).

    >>> kind_of_setting(5), kind_of_setting(("whsec_a",)), kind_of_setting(True)
    ('a number', 'a list', 'true or false')
    """
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "true or false"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, list | tuple):  # a configuration keeps a list as a tuple
        return "a list"
    if isinstance(value, Mapping):
        return "a table"
    return f"a {type(value).__name__}"


def shown_setting(value: object) -> str:
    """A configuration value as an error message quotes it: short (:func:`~paycore.wire.shown`), after the
    password of every URL in it, and every secret-named value of a table in it, is hidden (see :func:`_masked`).

    A database URL put under the wrong key is quoted without its password:

    >>> shown_setting("redis://:s3cret@cache/0")
    "'redis://:***@cache/0'"
    """
    return shown(_masked_value(value))


class Settings(Mapping[str, Any]):
    """A read-only mapping of a plugin's settings whose secret-named values are masked.

    ``settings["webhook_secret"]`` is a :class:`Secret`; :meth:`secret` reveals
    it where it is used. ``repr(settings)`` shows every secret as ``'***'``.
    """

    __slots__ = ("_data", "_owner")

    def __init__(self, data: Mapping[str, Any] | None = None, *, owner: str = "settings") -> None:
        self._owner = owner
        data = data or {}
        wrong = [key for key in data if not isinstance(key, str)]
        if wrong:  # a mapping given in code, or Django's settings.PAYCORE (TOML and the environment name with text)
            raise ConfigurationError(f"{owner}: a setting's name must be a string, not {shown_setting(wrong[0])}")
        self._data = {key: _wrap_secret(value) if _is_secret_name(key) else value for key, value in data.items()}

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __repr__(self) -> str:
        return f"Settings({_masked(self._data)!r})"

    def with_secrets(self, names: Iterable[str]) -> Settings:
        """These settings with the values of ``names`` masked too (a provider's declared secrets)."""
        extra = {name for name in names if name in self._data and not isinstance(self._data[name], Secret)}
        if not extra:
            return self
        masked = Settings(owner=self._owner)
        masked._data = {key: _wrap_secret(value) if key in extra else value for key, value in self._data.items()}
        return masked

    def require(self, key: str) -> Any:
        """The value of ``key``; :class:`ConfigurationError` naming the owner if it is missing."""
        try:
            return self._data[key]
        except KeyError:
            raise ConfigurationError(f"{self._owner}: missing required setting {key!r}") from None

    def secret(self, key: str, default: str | None = None) -> str:
        """The revealed value of secret ``key`` (or ``default``; error if neither)."""
        value = self._data.get(key)
        if value is None:
            if default is not None:
                return default
            raise ConfigurationError(f"{self._owner}: missing required secret {key!r}")
        if isinstance(value, Secret):
            return value.reveal()
        if isinstance(value, str):
            return value
        # never str() of it: a list's text would pass for a secret (the value itself is not shown)
        raise ConfigurationError(f"{self._owner}: secret {key!r} must be a string, not {kind_of_setting(value)}")

    def credential(self, key: str) -> str:
        """The revealed value of secret ``key``, a credential sent in a header (an API key).

        Refused with a :class:`ConfigurationError` that does not show it when it is empty or holds
        a space, a line break or a control character (a copy-paste's trailing newline), or a character
        that is not ASCII (a pasted ``é``, a non-UTF-8 byte of an environment variable): an HTTP header
        holds ASCII only, and an HTTP client would refuse it at every call, quoting the key in its error."""
        value = self.secret(key)
        wrong = next((character for character in value if not "!" <= character <= "~"), None)
        if not value or wrong is not None:  # never the value, nor the character: it may be part of the secret
            if wrong is None:
                found = "is empty"
            elif wrong.isascii():
                found = "holds a space, a line break or a control character"
            else:
                found = "holds a character that is not ASCII (an HTTP header holds ASCII only)"
            raise ConfigurationError(
                f"{self._owner}: secret {key!r} must be a non-empty string of ASCII letters, digits and punctuation, "
                f"without spaces, line breaks or control characters; it {found}"
            )
        return value

    def url(self, key: str) -> str | None:
        """Setting ``key`` as an absolute http(s) URL (``None`` when unset); a :class:`ConfigurationError` naming
        the setting otherwise, which shows a password in the URL as ``***`` and a value not text by its type."""
        value = self._data.get(key)
        if value is None:
            return None
        try:
            return check_url(value, what=key)
        except InvalidReport:
            quoted = shown(redact_url(value)) if isinstance(value, str) else f"a value of type {type(value).__name__}"
        raise ConfigurationError(
            f"{self._owner}: {key!r} must be an absolute http(s) URL with a host, of at most {MAX_URL_LENGTH} "
            f"characters without spaces (such as 'https://shop.example/paid'), not {quoted}"
        )

    def seconds(self, key: str, default: float, *, most: float = 86_400.0) -> float:
        """Setting ``key`` as a number of seconds (``default`` when unset); see :func:`read_seconds`."""
        return read_seconds(self._data.get(key, default), what=f"{self._owner}: {key!r}", most=most)


LEAST_SECONDS: Final = 0.001
"""The shortest duration a setting may give: one millisecond (a shorter one would act as none at all)."""


def read_seconds(value: object, *, what: str, most: float, in_words: str = "") -> float:
    """``value`` as a number of seconds from :data:`LEAST_SECONDS` to ``most``: a number, or the text of one
    (from the environment). Anything else (a bool, NaN, infinity, a negative, zero or less than a millisecond,
    an integer beyond any float) is a :class:`ConfigurationError` that names the setting (``what``)."""
    number = value
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            pass
    if isinstance(number, bool) or not isinstance(number, int | float):
        raise ConfigurationError(f"{what} must be a number of seconds, not {shown_setting(value)}")
    try:
        number = float(number)
    except OverflowError:  # an integer beyond any float
        number = math.inf
    if not LEAST_SECONDS <= number <= most:  # NaN and infinity too
        limit = f"{most:.0f} ({in_words})" if in_words else f"{most:.0f}"
        raise ConfigurationError(
            f"{what} must be a positive number of seconds, at least {LEAST_SECONDS:g} and at most {limit}, "
            f"not {shown_setting(value)}"
        )
    return number

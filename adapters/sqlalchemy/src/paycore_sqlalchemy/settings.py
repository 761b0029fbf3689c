"""Reading the adapter's settings: ``url`` and optional pool and migration options."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from paycore.errors import ConfigurationError
from paycore.secrets import read_seconds, redact_url, shown_setting

__all__ = [
    "ENGINE_OPTIONS",
    "SETTING_NAMES",
    "URL_SCHEMES",
    "auto_upgrade_setting",
    "check_database_url",
    "check_setting_names",
    "engine_options",
    "url_setting",
]

ENGINE_OPTIONS: Final = ("pool_size", "max_overflow", "pool_timeout", "pool_pre_ping")
"""Settings passed on to the engine's connection pool."""

SETTING_NAMES: Final = frozenset({"url", "auto_upgrade", *ENGINE_OPTIONS})
"""Every setting the adapter reads."""

MAX_POOL_TIMEOUT: Final = 3600.0
"""The longest ``pool_timeout``: an hour (a wait beyond what a thread's lock can wait overflowed)."""

_TRUE: Final = {"1", "true", "yes", "on"}
_FALSE: Final = {"0", "false", "no", "off"}


def check_setting_names(settings: Mapping[str, Any], owner: str) -> None:
    """Refuse a setting the adapter does not read (a misspelled ``pool_szie``), naming it and those it reads."""
    unknown = sorted(set(settings) - SETTING_NAMES)
    if unknown:
        raise ConfigurationError(
            f"{owner}: no setting {', '.join(map(repr, unknown))}; it reads {', '.join(sorted(SETTING_NAMES))}"
        )


URL_SCHEMES: Final = ("sqlite", "postgresql", "postgres", "mysql")
"""The URL schemes of the databases this adapter serves (a driver may follow: ``postgresql+psycopg``)."""


def check_database_url(url: str, what: str) -> str:
    """``url`` if its scheme is one of :data:`URL_SCHEMES`; :class:`ConfigurationError` naming ``what`` if not."""
    scheme = url.split(":", 1)[0].split("+", 1)[0].lower() if ":" in url else ""  # as parse_url reads it
    if scheme not in URL_SCHEMES:
        raise ConfigurationError(
            f"{what} {redact_url(url)!r} is no database URL paycore-sqlalchemy serves (its scheme should be "
            f"one of {', '.join(URL_SCHEMES)}, e.g. 'postgresql+psycopg://user@host/paycore')"
        )
    return url


def url_setting(settings: Mapping[str, Any], owner: str) -> str:
    """The ``url`` setting (a :class:`~paycore.secrets.Secret` is revealed: URLs may hold passwords)."""
    value = settings.get("url")
    reveal = getattr(value, "reveal", None)
    if callable(reveal):
        value = reveal()
    if not isinstance(value, str) or not value:
        raise ConfigurationError(
            f"{owner}: set 'url' to a database URL, e.g. 'sqlite:///paycore.db' or "
            "'postgresql+psycopg://user@host/paycore'"
        )
    return value


def _boolean(value: Any, name: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise ConfigurationError(f"sqlalchemy: {name} must be true or false, not {shown_setting(value)}")


def auto_upgrade_setting(settings: Mapping[str, Any]) -> bool | None:
    """``auto_upgrade`` if set (``None``: the default, on for SQLite only)."""
    value = settings.get("auto_upgrade")
    return None if value is None else _boolean(value, "auto_upgrade")


def _whole(raw: object) -> int | None:
    """``raw`` as a whole number (an int, a float without a fraction, or the text of either); ``None`` if it is not one
    (a bool, ``1.9``, NaN, infinity, anything else)."""
    if isinstance(raw, bool):
        return None
    if isinstance(raw, str):
        try:
            raw = float(raw) if any(mark in raw.lower() for mark in ".e") else int(raw)
        except ValueError:
            return None
    if isinstance(raw, float):
        return int(raw) if raw.is_integer() else None
    return raw if isinstance(raw, int) else None


def engine_options(settings: Mapping[str, Any]) -> dict[str, Any]:
    """The pool settings among ``settings``, checked."""
    options: dict[str, Any] = {}
    for name in ENGINE_OPTIONS:
        if name not in settings:
            continue
        raw = settings[name]
        if name == "pool_pre_ping":
            options[name] = _boolean(raw, name)
            continue
        if name == "pool_timeout":  # a duration as every other: from a millisecond to an hour
            options[name] = read_seconds(raw, what=f"sqlalchemy: {name}", most=MAX_POOL_TIMEOUT, in_words="an hour")
            continue
        number = _whole(raw)
        if number is None or number < 0:
            raise ConfigurationError(
                f"sqlalchemy: {name} must be a whole number of zero or more, not {shown_setting(raw)}"
            )
        options[name] = number
    return options

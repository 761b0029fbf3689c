"""Where configuration comes from: a TOML file and ``PAYCORE_*`` environment variables;
and how a setting is read from either (a TOML value, or a variable's text).

Environment variables nest with a double underscore and override the file or
mapping they are applied to: ``PAYCORE_REPOSITORY=sqlite:///x.db``,
``PAYCORE_IDEMPOTENCY=redis,sqlalchemy``, ``PAYCORE_PROVIDERS__CASH__TYPE=cash``;
``PAYCORE_CONFIG`` names a TOML file. The lists ``idempotency`` and
``plugins_blocked`` are written separated by commas. :func:`paycore.config.load_config`
puts them together.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Final
from urllib.parse import quote

from paycore import secrets, wire
from paycore.errors import ConfigurationError, InvalidReport
from paycore.secrets import shown_setting

__all__ = [
    "ENV_PREFIX",
    "apply_environment",
    "check_durations",
    "deep_copy",
    "read_flag",
    "read_names",
    "read_positive_int",
    "read_seconds",
    "read_time_zone",
    "read_toml",
    "read_webhook_url",
    "webhook_url_for",
]

ENV_PREFIX: Final = "PAYCORE_"
"""The prefix of paycore's environment variables."""


def deep_copy(data: Mapping[str, Any]) -> dict[str, Any]:
    """A mutable copy of ``data`` with every nested mapping copied too; :class:`ConfigurationError` if its
    tables nest deeper than Python can follow (a mapping built in code: no configuration nests so deep)."""
    try:
        return _copy(data)
    except RecursionError:
        raise ConfigurationError("the configuration's tables nest too deeply to be read") from None


def _copy(data: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _copy(v) if isinstance(v, Mapping) else v for k, v in data.items()}


def read_toml(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A TOML configuration file as a dict; :class:`ConfigurationError` naming ``path`` if it is
    missing, unreadable (a directory, no permission), not UTF-8, not valid TOML or nested deeper than
    it can be read, or if ``path`` holds a NUL (no file has such a name)."""
    import tomllib  # loaded on first use: a flow built from a mapping never needs it
    from pathlib import Path

    text = os.fsdecode(path)
    name = repr(secrets.redact_url(text))  # a URL given where a file belongs shows without its password
    if "\x00" in text:  # open() would refuse it with a ValueError
        raise ConfigurationError(f"configuration file {name} is no file's name: it holds a NUL character")
    try:
        with Path(path).open("rb") as file:
            return tomllib.load(file)
    except FileNotFoundError:
        raise ConfigurationError(f"configuration file {name} does not exist") from None
    except OSError as error:  # a directory, no permission, a read error
        reason = error.strerror or type(error).__name__
        raise ConfigurationError(f"configuration file {name} cannot be read: {reason}") from None
    except UnicodeDecodeError:
        raise ConfigurationError(f"configuration file {name} is not UTF-8 text (TOML must be)") from None
    except ValueError as error:  # TOMLDecodeError; or an integer of more digits than Python reads
        raise ConfigurationError(f"configuration file {name} is not valid TOML: {error}") from None
    except RecursionError:  # arrays or inline tables nested thousands deep: the reader recurses per level
        raise ConfigurationError(f"configuration file {name} nests arrays or tables too deeply to be read") from None


def apply_environment(data: dict[str, Any], environ: Mapping[str, str]) -> None:
    """Apply ``PAYCORE_*`` variables of ``environ`` to ``data`` (a double underscore nests)."""
    for name, value in sorted(environ.items()):
        if not name.startswith(ENV_PREFIX) or name == f"{ENV_PREFIX}CONFIG":
            continue
        path = [part.lower() for part in name[len(ENV_PREFIX) :].split("__")]
        if not all(path):
            raise ConfigurationError(f"environment variable {name} has an empty part")
        target = data
        for lowered in path[:-1]:
            part = _existing_key(target, lowered, name)
            existing = target.get(part)
            if isinstance(existing, str) and part in ("repository",):
                existing = {"url": existing} if "://" in existing else {"type": existing}
            if not isinstance(existing, dict):
                existing = {} if existing is None else existing
                if not isinstance(existing, dict):
                    raise ConfigurationError(f"environment variable {name} sets inside a non-table")
            target[part] = existing
            target = existing
        leaf = _existing_key(target, path[-1], name)
        if path in (["idempotency"], ["plugins_blocked"]):  # lists: comma-separated
            target[leaf] = [part.strip() for part in value.split(",") if part.strip()]
        else:
            target[leaf] = value


def _existing_key(table: Mapping[str, Any], lowered: str, variable: str) -> str:
    """The key of ``table`` that ``lowered`` (a part of a variable's name, which is upper case) names:
    the one spelled alike whatever its case (``ChezAwa`` for ``CHEZAWA``), else ``lowered`` itself."""
    found = [key for key in table if isinstance(key, str) and key.lower() == lowered]
    if len(found) > 1:
        raise ConfigurationError(
            f"environment variable {variable} names {lowered!r}, which is ambiguous here: "
            f"{', '.join(sorted(map(repr, found)))} differ only in case"
        )
    return found[0] if found else lowered


def read_flag(data: Mapping[str, Any], key: str) -> bool:
    """Setting ``key`` of ``data``: ``true``/``false`` (from text: also ``1``/``0``, ``yes``/``no``); unset, false."""
    raw = data.get(key, False)
    if isinstance(raw, str) and raw.strip().lower() in ("true", "1", "yes", "false", "0", "no", ""):
        return raw.strip().lower() in ("true", "1", "yes")
    if not isinstance(raw, bool):
        raise ConfigurationError(f"{key} must be true or false, not {shown_setting(raw)}")
    return raw


def read_positive_int(data: Mapping[str, Any], key: str, default: int, *, most: int | None = None) -> int:
    """Setting ``key`` of ``data``: a positive whole number (at most ``most``), or its text."""
    raw = data.get(key, default)
    value = raw if isinstance(raw, int) and not isinstance(raw, bool) else 0
    if isinstance(raw, str):
        try:
            value = int(raw.strip())
        except ValueError:
            value = 0
    if value <= 0:
        raise ConfigurationError(f"{key} must be a positive whole number, not {shown_setting(raw)}")
    if most is not None and value > most:
        raise ConfigurationError(f"{key} must be at most {most}, not {value}")
    return value


def read_seconds(data: Mapping[str, Any], key: str, default: float, most: float, in_words: str) -> float:
    """Setting ``key`` of ``data``: a duration, a positive number of seconds (or its text) up to ``most``."""
    return secrets.read_seconds(data.get(key, default), what=key, most=most, in_words=in_words)


def check_durations(seconds: Mapping[str, float], *, lease_over_timeout: float) -> None:
    """Refuse durations that do not fit together: ``idempotency_lease`` at least ``lease_over_timeout`` times
    ``provider_timeout``, ``idempotency_ttl`` at least ``idempotency_lease``."""
    timeout, lease, ttl = seconds["provider_timeout"], seconds["idempotency_lease"], seconds["idempotency_ttl"]
    # As decimals, as the settings are written: 3 x 1.1 in binary floating point is 3.3000000000000003, not 3.3.
    least = _decimal(timeout) * _decimal(lease_over_timeout)
    if _decimal(lease) < least:
        raise ConfigurationError(
            f"idempotency_lease ({lease:g}s) must exceed provider_timeout ({timeout:g}s) by a tenth at least "
            f"(>= {least.normalize():f}s): a key could be taken over while its request still runs, "
            "and a call is sent only while its answer can come back within its lease"
        )
    if ttl < lease:
        raise ConfigurationError(
            f"idempotency_ttl ({ttl:g}s) must be at least idempotency_lease ({lease:g}s): "
            "a key's result, and the payment id bound to it, must outlive any lease on the key"
        )


def _decimal(number: float) -> Decimal:
    """``number`` as the decimal its shortest text writes (``1.1``, not ``1.100000000000000088817841970012523``)."""
    return Decimal(repr(float(number)))


def read_names(data: Mapping[str, Any], key: str, what: str) -> tuple[str, ...]:
    """Setting ``key`` of ``data``: a list of non-empty names (in the environment, separated by commas)."""
    raw = data.get(key, [])
    if not isinstance(raw, list | tuple) or not all(isinstance(name, str) and name.strip() for name in raw):
        raise ConfigurationError(f'{key} must be a list of {what}, like ["dummy"], not {shown_setting(raw)}')
    return tuple(name.strip() for name in raw)


def read_time_zone(raw: Any, where: str) -> str | None:
    """``timezone`` of ``where``: unset, or an IANA time zone name (``Africa/Dakar``) this machine knows."""
    if raw is None:
        return None
    if not isinstance(raw, str):
        raise ConfigurationError(
            f"{where}: timezone must be an IANA name such as Africa/Dakar, not {shown_setting(raw)}"
        )
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError  # loaded only for a configuration that sets one

    try:
        ZoneInfo(raw)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a folder ("Africa"), a name too long
        raise ConfigurationError(
            f"{where}: unknown time zone {shown_setting(raw)}; use an IANA name such as Africa/Dakar or UTC"
        ) from None
    return raw


def read_webhook_url(raw: Any) -> str | None:
    """``webhook_url``: unset, an absolute http(s) base URL, or one with ``{code}`` (and maybe ``{tenant}``)."""
    if raw is None:
        return None
    try:
        url = wire.check_url(raw, what="webhook_url")
    except InvalidReport:
        # quoted redacted before it is cut short: a password's first characters never show
        quoted = shown_setting(raw)
        raise ConfigurationError(
            f"webhook_url must be an absolute http(s) URL of at most {wire.MAX_URL_LENGTH} characters"
            f" without spaces or control characters, such as 'https://pos.example/webhooks', not {quoted}"
        ) from None
    if "{" in url and ("{code}" not in url or re.search("[{}]", re.sub(r"\{(tenant|code)\}", "", url))):
        raise ConfigurationError(
            f"webhook_url {secrets.redact_url(url)!r}: a template holds {{code}}, may hold {{tenant}}, no other braces"
        )
    return url


def webhook_url_for(template: str | None, tenant: str | None, code: str) -> str | None:
    """The webhook URL of provider ``code`` of ``tenant`` from a base URL or a template.

    >>> webhook_url_for("https://shop.example/webhooks", "chez-awa", "wave")
    'https://shop.example/webhooks/chez-awa/wave'
    >>> webhook_url_for("https://shop.example/hooks/{tenant}/{code}", None, "wave")
    'https://shop.example/hooks/wave'
    >>> webhook_url_for("https://shop.example/webhooks", "le baobab?", "wave")
    'https://shop.example/webhooks/le%20baobab%3F/wave'
    """
    if template is None:
        return None
    if "{" not in template:
        template = template.rstrip("/") + "/{tenant}/{code}"
    if tenant is None:
        template = template.replace("{tenant}/", "").replace("/{tenant}", "")
    return template.replace("{tenant}", quote(tenant or "", safe="")).replace("{code}", quote(code, safe=""))

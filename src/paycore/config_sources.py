"""Where configuration comes from: a TOML file and ``PAYCORE_*`` environment variables.

Environment variables nest with a double underscore and override the file or
mapping they are applied to: ``PAYCORE_REPOSITORY=sqlite:///x.db``,
``PAYCORE_IDEMPOTENCY=redis,sqlalchemy``, ``PAYCORE_PROVIDERS__CASH__TYPE=cash``;
``PAYCORE_CONFIG`` names a TOML file. :func:`paycore.config.load_config` puts
them together.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, Final

from paycore.errors import ConfigurationError

__all__ = ["ENV_PREFIX", "apply_environment", "deep_copy", "read_toml"]

ENV_PREFIX: Final = "PAYCORE_"
"""The prefix of paycore's environment variables."""


def deep_copy(data: Mapping[str, Any]) -> dict[str, Any]:
    """A mutable copy of ``data`` with every nested mapping copied too."""
    return {k: deep_copy(v) if isinstance(v, Mapping) else v for k, v in data.items()}


def read_toml(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A TOML configuration file as a dict; :class:`ConfigurationError` if missing or invalid."""
    import tomllib  # loaded on first use: a flow built from a mapping never needs it
    from pathlib import Path

    try:
        with Path(path).open("rb") as file:
            return tomllib.load(file)
    except FileNotFoundError:
        raise ConfigurationError(f"configuration file {str(path)!r} does not exist") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigurationError(f"configuration file {str(path)!r} is not valid TOML: {error}") from None


def apply_environment(data: dict[str, Any], environ: Mapping[str, str]) -> None:
    """Apply ``PAYCORE_*`` variables of ``environ`` to ``data`` (a double underscore nests)."""
    for name, value in sorted(environ.items()):
        if not name.startswith(ENV_PREFIX) or name == f"{ENV_PREFIX}CONFIG":
            continue
        path = [part.lower() for part in name[len(ENV_PREFIX) :].split("__")]
        if not all(path):
            raise ConfigurationError(f"environment variable {name} has an empty part")
        target = data
        for part in path[:-1]:
            existing = target.get(part)
            if isinstance(existing, str) and part in ("repository",):
                existing = {"url": existing} if "://" in existing else {"type": existing}
            if not isinstance(existing, dict):
                existing = {} if existing is None else existing
                if not isinstance(existing, dict):
                    raise ConfigurationError(f"environment variable {name} sets inside a non-table")
            target[part] = existing
            target = existing
        leaf = path[-1]
        if path == ["idempotency"]:
            target[leaf] = [part.strip() for part in value.split(",") if part.strip()]
        else:
            target[leaf] = value

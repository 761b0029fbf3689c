"""Database settings some tests change for their while: ``ATOMIC_REQUESTS``, on ``default`` or a second alias."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Final

import pytest

SECOND_ALIAS: Final = "default_again"
"""A second alias of the ``default`` SQLite file, which :func:`atomic_requests_on` adds for a test."""


@contextmanager
def atomic_requests_on(alias: str, monkeypatch: pytest.MonkeyPatch, timeout: float) -> Iterator[None]:
    """``ATOMIC_REQUESTS`` on database ``alias``: ``default`` (SQLite, ``IMMEDIATE``), or :data:`SECOND_ALIAS`,
    added for the while as a second alias of the same file, whose request transaction locks paycore's writes
    as much. SQLite waits ``timeout`` seconds for a lock: a wait that fails, fails fast."""
    from django.db import connections

    default = connections["default"].settings_dict
    assert default["OPTIONS"]["transaction_mode"] == "IMMEDIATE"
    monkeypatch.setitem(default["OPTIONS"], "timeout", timeout)
    database = default
    if alias == SECOND_ALIAS:
        database = copy.deepcopy(default)
        monkeypatch.setitem(connections.settings, SECOND_ALIAS, database)
    monkeypatch.setitem(database, "ATOMIC_REQUESTS", True)
    connections["default"].close()  # reopened with the short timeout
    try:
        yield
    finally:
        connections["default"].close()  # not kept with the short timeout
        if alias == SECOND_ALIAS:
            connections[SECOND_ALIAS].close()
            del connections[SECOND_ALIAS]

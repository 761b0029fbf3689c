"""The default clock: the current time, timezone-aware UTC.

A flow reads the time through the clock it was built with
(``PaymentFlow.from_config(..., clock=...)``); :func:`utcnow` is the default,
and tests pass a clock they move by hand. This module imports only
:mod:`datetime`, so a signature can default to :func:`utcnow` without loading
the records.
"""

from __future__ import annotations

from datetime import UTC, datetime

__all__ = ["utcnow"]


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)

"""The default clock: the current time, timezone-aware UTC.

A flow reads the time through the clock it was built with
(``PaymentFlow.from_config(..., clock=...)``); :func:`utcnow` is the default,
and tests pass a clock they move by hand. This module imports only
:mod:`datetime`, so a signature can default to :func:`utcnow` without loading
the records.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

__all__ = ["checked_clock", "utcnow"]


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


def checked_clock(clock: Callable[[], datetime]) -> Callable[[], datetime]:
    """``clock`` read in UTC, once a reading of it is a timezone-aware datetime; else a
    :class:`~paycore.errors.ConfigurationError`. A naive time (``datetime.now``) would be refused as a caller's
    bad input by one store, kept by another and then compared with aware ones; a number (``time.time``) fails
    deep inside the first operation.

    A clock in a local zone (``datetime.now(ZoneInfo("Africa/Dakar"))``) is read in UTC: arithmetic on local
    wall times is wrong across a daylight-saving change (an hour before 03:10 on the night clocks go forward
    is 03:10 again), and a store comparing in UTC would disagree with one comparing wall times.
    """
    from paycore.errors import ConfigurationError

    try:
        now = clock()
    except Exception as error:
        raise ConfigurationError(f"the flow's clock failed when read: {type(error).__name__}: {error}") from None
    if not isinstance(now, datetime) or now.utcoffset() is None:
        what = "a naive datetime" if isinstance(now, datetime) else f"a {type(now).__name__}"
        raise ConfigurationError(
            f"the flow's clock must give a timezone-aware datetime, such as datetime.now(UTC); it gave {what}"
        )
    if clock is utcnow:
        return clock

    def in_utc() -> datetime:
        return clock().astimezone(UTC)

    return in_utc

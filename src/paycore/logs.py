"""The loggers paycore's modules log with: a handler that raises never fails what logs.

Logging is the application's: its handlers, filters and formatters run inside paycore's operations. A handler
that raises there (a full disk, a broken log shipper) is told on ``paycore.observability`` when any handler
still can, and the operation goes on: a provider's answer is still recorded, a key still completed.
"""

from __future__ import annotations

import logging
import sys
from typing import TYPE_CHECKING, Any, Final

__all__ = ["GuardedLogger", "guarded_logger", "report_failure"]

_own_log = logging.getLogger("paycore.observability")

_OWN_FRAMES: Final = 1 if sys.version_info >= (3, 11) else 2
"""Frames of this module between paycore's code and the logging call, as ``stacklevel`` counts them (before 3.11
it counts logging's own frames too, which it skips since)."""

if TYPE_CHECKING:
    _Adapter = logging.LoggerAdapter[logging.Logger]
else:
    _Adapter = logging.LoggerAdapter


def report_failure(what: str) -> None:
    """Tell, if anything still can, that paycore could not ``what`` (a handler, an exporter, an instrument
    raised); the caller goes on as if it had."""
    try:
        _own_log.error("paycore could not %s; the operation went on", what, exc_info=True)
    except Exception:  # the handler that failed may be this logger's too
        pass


class GuardedLogger(_Adapter):
    """A module's logger whose handlers never fail what logs: a handler that raises is told
    (:func:`report_failure`), and the code that logged goes on. ``extra`` passes through."""

    def process(self, msg: Any, kwargs: Any) -> tuple[Any, Any]:
        """The message and keywords as given (no adapter ``extra`` of its own)."""
        return msg, kwargs

    def log(self, level: int, msg: object, *args: object, **kwargs: Any) -> None:
        """Log as :meth:`logging.Logger.log` does; a handler's failure is told, never raised."""
        kwargs["stacklevel"] = kwargs.get("stacklevel", 1) + _OWN_FRAMES  # the record names paycore's caller
        try:
            super().log(level, msg, *args, **kwargs)
        except Exception:
            # The line itself is lost to every handler after the failing one: say which (its template, not its values).
            report_failure(f"log a line at {logging.getLevelName(level)} on {self.logger.name} ({str(msg)[:200]!r})")


def guarded_logger(name: str) -> GuardedLogger:
    """The logger ``name``, guarded (:class:`GuardedLogger`)."""
    return GuardedLogger(logging.getLogger(name), None)

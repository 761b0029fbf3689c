"""The loggers paycore's modules log with: a handler that raises never fails what logs, a value forges no line.

Logging is the application's: its handlers, filters and formatters run inside paycore's operations. A handler
that raises there (a full disk, a broken log shipper) is told on ``paycore.observability`` when any handler
still can, and the operation goes on: a provider's answer is still recorded, a key still completed.

A line's values may be another party's text: a gateway's error message, a refusal's reason. A line break
in one (``\n``, ``\r``, or any other a log reader splits lines at) is written escaped, as Python writes it,
so that no gateway can make a line of paycore's log say something paycore did not. A traceback logged with a
line (``exc_info``) is the formatter's to write, on lines of its own, the exception's text among them.
"""

from __future__ import annotations

import logging
import re
import sys
from typing import TYPE_CHECKING, Any, Final

__all__ = ["GuardedLogger", "guarded_logger", "on_one_line", "report_failure"]

_own_log = logging.getLogger("paycore.observability")

_OWN_FRAMES: Final = 1 if sys.version_info >= (3, 11) else 2
"""Frames of this module between paycore's code and the logging call, as ``stacklevel`` counts them (before 3.11
it counts logging's own frames too, which it skips since)."""

_LINE_BREAKS: Final = re.compile("[\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")
"""What ``str.splitlines`` splits at: a log reader may too."""


def on_one_line(value: object) -> object:
    """``value``, or its text with its line breaks escaped (``\\n``) when it is text, or an exception, that has any."""
    if isinstance(value, str):
        text = value
    elif isinstance(value, BaseException):
        try:
            text = str(value)
        except Exception:  # an exception that cannot say itself: logging says so, as for any argument
            return value
    else:
        return value
    if _LINE_BREAKS.search(text) is None:
        return value
    return _LINE_BREAKS.sub(lambda found: repr(found.group())[1:-1], text)


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
            if args and self.isEnabledFor(level):
                args = tuple(on_one_line(arg) for arg in args)
            super().log(level, msg, *args, **kwargs)
        except Exception:
            # The line itself is lost to every handler after the failing one: say which (its template, not its values).
            report_failure(f"log a line at {logging.getLevelName(level)} on {self.logger.name} ({str(msg)[:200]!r})")


def guarded_logger(name: str) -> GuardedLogger:
    """The logger ``name``, guarded (:class:`GuardedLogger`)."""
    return GuardedLogger(logging.getLogger(name), None)

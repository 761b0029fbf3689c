"""Logs, traces and metrics of the flow's operations and of every provider call.

Logging needs nothing: each operation and each provider call ends with one log line under the logger of
the module it belongs to (``paycore.flow``, ``paycore.provider_calls``). The line starts with a stable
event name (``paycore.operation``, ``paycore.provider_call``) followed by ``key=value`` pairs (a value
that is not a plain word quoted), and carries the same values in ``extra`` (``paycore_event``,
``paycore_operation``, ``paycore_payment_id``, ``paycore_outcome``...) for structured handlers. It names
the payment, never a secret, an amount or a body.

Traces and metrics go through OpenTelemetry's API when it is installed (``pip install paycore[otel]``);
without it, or with no SDK set up, they are skipped at no cost, and nothing here imports it until the
first operation. paycore installs no SDK: the application's tracer and meter providers receive everything
(or those given to :func:`use`). Each operation is a span ``paycore.<operation>`` with the provider calls
it made as child spans ``paycore.provider.<operation>``. Metric labels are bounded: operation, outcome,
provider code (one the flow has) and type, currency; payment ids are span attributes only, amounts nowhere.
"""

from __future__ import annotations

import functools
import inspect
import logging
import re
import time
from collections.abc import Callable, Coroutine, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any, Final, ParamSpec, TypeVar

from paycore.errors import (
    ConfigurationError,
    FlowClosed,
    PaycoreError,
    ProviderNotEnabled,
    ProviderNotSent,
    ValidationError,
)
from paycore.logs import GuardedLogger, guarded_logger, report_failure
from paycore.telemetry import (
    METRIC_LABELS,
    OPERATION_COUNTER,
    OPERATION_DURATION,
    PROVIDER_CALL_COUNTER,
    PROVIDER_CALL_DURATION,
    Telemetry,
)

__all__ = [
    "OPERATION_COUNTER",
    "OPERATION_DURATION",
    "PROVIDER_CALL_COUNTER",
    "PROVIDER_CALL_DURATION",
    "Observation",
    "log_call_failure",
    "log_failure",
    "observe_operation",
    "observe_provider_call",
    "observed_operation",
    "outcome_of",
    "quiet",
    "reset",
    "use",
]

P = ParamSpec("P")
R = TypeVar("R")

_PLAIN: Final = re.compile(r"[\w.:@/+-]{1,200}")  # a value a log line shows unquoted: no space, "=" or line break

OK: Final = "ok"
"""The outcome of an operation that returned."""
ANSWERED: Final = "answered"
"""The outcome of a provider call that got a definitive answer."""
UNKNOWN: Final = "unknown"
"""The outcome of a provider call that was sent and got no usable answer."""
NOT_SENT: Final = "not_sent"
"""The outcome of a provider call whose request never left."""

operation_log = guarded_logger("paycore.flow")
provider_call_log = guarded_logger("paycore.provider_calls")


def outcome_of(error: BaseException, *, provider_call: bool = False) -> str:
    """The outcome label of an operation that raised ``error``.

    A :class:`~paycore.errors.PaycoreError` is named by its class (``PaymentBusy``, ``IdempotencyKeyReused``...);
    anything else is ``error``, and a cancellation is ``cancelled``: a bounded set of labels. A ``provider_call``
    refused before it was sent is ``not_sent``, and one cut short is ``unknown``.
    """
    if provider_call and isinstance(error, ProviderNotSent | ValidationError):
        return NOT_SENT
    if isinstance(error, PaycoreError):
        return type(error).__name__
    if isinstance(error, Exception):
        return "error"
    return UNKNOWN if provider_call else "cancelled"  # a call cut short may have reached the provider


class Observation:
    """What an operation or a provider call learned while it ran: attributes and its outcome."""

    def __init__(self, attributes: Mapping[str, str | int]) -> None:
        self.attributes: dict[str, str | int] = dict(attributes)
        """The span attributes so far (``paycore.*``); metric labels are taken from them."""
        self.outcome: str | None = None
        """Set by the observed code, or from the exception it raised; ``ok`` otherwise."""

    def returned(self, result: object) -> None:
        """Add what ``result`` (a payment, a checkout, a refund, a list) tells about the operation."""
        self.attributes.update(_result_attributes(result))

    def answered(self, answer: object) -> None:
        """Mark a provider call answered: ``paycore.provider.outcome`` is what the provider said (of a refund: its
        status)."""
        self.outcome = ANSWERED
        reported = getattr(answer, "outcome", None)
        if reported is None:
            reported = getattr(answer, "status", None)  # a RefundUpdate's
        if reported is not None:
            self.attributes["paycore.provider.outcome"] = str(getattr(reported, "value", reported))

    def unknown(self) -> None:
        """Mark a provider call sent without a usable answer."""
        self.outcome = UNKNOWN


_NOT_BUILT: Final = object()
_telemetry: object = _NOT_BUILT
"""The telemetry in use: built at first use, ``None`` when OpenTelemetry is absent."""


def use(*, tracer_provider: Any = None, meter_provider: Any = None) -> None:
    """Send paycore's spans and metrics to these providers instead of OpenTelemetry's global ones.

    Either may be ``None`` for the global one. Raises :class:`~paycore.errors.ConfigurationError` when
    OpenTelemetry is not installed (``pip install paycore[otel]``).
    """
    global _telemetry
    try:
        _telemetry = Telemetry(tracer_provider, meter_provider)
    except ImportError as error:
        raise ConfigurationError(
            f"paycore.observability.use() needs OpenTelemetry's API ({error}); install paycore[otel]"
        ) from None


def reset() -> None:
    """Go back to OpenTelemetry's global providers (looked up again at the next operation)."""
    global _telemetry
    _telemetry = _NOT_BUILT


def _current() -> Telemetry | None:
    global _telemetry
    if _telemetry is _NOT_BUILT:
        try:
            _telemetry = Telemetry(None, None)
        except ImportError:
            _telemetry = None
        except Exception:  # the application's providers fail to make paycore's tracer or instruments
            _telemetry = None
            report_failure("set up its OpenTelemetry tracer and instruments")
    return _telemetry if isinstance(_telemetry, Telemetry) and _telemetry.recording else None


def observe_operation(operation: str, attributes: Mapping[str, str | int]) -> AbstractContextManager[Observation]:
    """Observe one flow operation: a span, its duration and count, and one log line."""
    attributes = {"paycore.operation": operation, **attributes}
    return _observe(f"paycore.{operation}", attributes, internal=True, log=operation_log, event="paycore.operation")


def observe_provider_call(
    operation: str, *, payment_id: str, provider_code: str, provider_type: str | None, currency: str
) -> AbstractContextManager[Observation]:
    """Observe one provider call: a client span, its duration and count, and one log line.

    A call refused before sending (:class:`~paycore.errors.ProviderNotSent`) is ``not_sent``, one cut short
    ``unknown``; the observed code marks the others :meth:`~Observation.answered` or :meth:`~Observation.unknown`.
    """
    attributes: dict[str, str | int] = {
        "paycore.operation": operation,
        "paycore.payment_id": payment_id,
        "paycore.provider.code": provider_code,
        "paycore.currency": currency,
    }
    if provider_type:
        attributes["paycore.provider.type"] = provider_type
    name = f"paycore.provider.{operation}"
    return _observe(name, attributes, internal=False, log=provider_call_log, event="paycore.provider_call")


@contextmanager
def _observe(
    name: str,
    attributes: Mapping[str, str | int],
    *,
    internal: bool,
    log: GuardedLogger,
    event: str,
) -> Iterator[Observation]:
    observation = Observation(attributes)
    telemetry = _current()
    started = time.perf_counter()
    span: Any = None
    span_context: Any = None
    if telemetry is not None:
        try:
            kind = telemetry.trace.SpanKind.INTERNAL if internal else telemetry.trace.SpanKind.CLIENT
            span_context = telemetry.tracer.start_as_current_span(name, kind=kind, end_on_exit=True)
            span = span_context.__enter__()
        except Exception:
            span = span_context = None
            report_failure(f"start the span {name}")
    error: BaseException | None = None
    try:
        yield observation
    except BaseException as raised:
        error = raised
        if isinstance(raised, ProviderNotEnabled | FlowClosed):  # a caller's text, never looked up: no metric label
            observation.attributes.pop("paycore.provider.code", None)
        if observation.outcome is None:
            observation.outcome = outcome_of(raised, provider_call=not internal)
        raise
    finally:
        outcome = observation.outcome or (OK if internal else ANSWERED)
        seconds = time.perf_counter() - started
        observation.attributes["paycore.outcome"] = outcome
        if telemetry is not None:  # what records it never changes what the operation did, nor what it says
            try:
                telemetry.record(seconds, observation.attributes, internal=internal)
            except Exception:
                report_failure(f"record the metrics of {name}")
            if span is not None:
                try:
                    telemetry.describe(span, observation.attributes, error)
                except Exception:
                    report_failure(f"describe the span {name}")
                try:
                    span_context.__exit__(None, None, None)
                except Exception:
                    report_failure(f"end the span {name}")
        _log(log, event, observation.attributes, seconds, failed=error is not None)


def quiet(log: GuardedLogger) -> bool:
    """True when nothing records spans or metrics and ``log`` writes no INFO line: only failures are logged then."""
    return _current() is None and not log.isEnabledFor(logging.INFO)


def log_failure(log: GuardedLogger, event: str, attributes: Mapping[str, str | int], started: float,
                error: BaseException, *, internal: bool) -> None:  # fmt: skip
    """Log ``error`` as :func:`observe_operation` (``internal``) or :func:`observe_provider_call` would, for code
    run without them because :func:`quiet` (``started``: its :func:`time.perf_counter` at the start)."""
    outcome = outcome_of(error, provider_call=not internal)
    _log(log, event, {**attributes, "paycore.outcome": outcome}, time.perf_counter() - started, failed=True)


def log_call_failure(what: str, payment_id: str, provider_code: str, currency: str, provider_type: str | None,
                     started: float, error: BaseException) -> None:  # fmt: skip
    """Log a provider call's failure as :func:`observe_provider_call` would, for one made without it (:func:`quiet`)."""
    attributes = {"paycore.operation": what, "paycore.payment_id": payment_id}
    attributes |= {"paycore.provider.code": provider_code, "paycore.currency": currency}
    if provider_type:
        attributes["paycore.provider.type"] = provider_type
    log_failure(provider_call_log, "paycore.provider_call", attributes, started, error, internal=False)


def _log(log: GuardedLogger, event: str, attributes: Mapping[str, str | int], seconds: float, *, failed: bool) -> None:
    level = logging.INFO
    if failed and attributes.get("paycore.outcome") in {"error", "cancelled", UNKNOWN}:
        level = logging.WARNING
    if not log.isEnabledFor(level):
        return
    pairs = " ".join(f"{key.removeprefix('paycore.')}={_plain(value)}" for key, value in attributes.items())
    extra = {key.replace(".", "_"): value for key, value in attributes.items()}
    log.log(level, "%s %s duration_ms=%.1f", event, pairs, seconds * 1000, extra={"paycore_event": event, **extra})


def _plain(value: str | int) -> str | int:
    """``value`` as a log line shows it: a plain word as it is, else quoted: a caller's text never forges a field."""
    return value if not isinstance(value, str) or _PLAIN.fullmatch(value) else repr(value[:200])


def observed_operation(
    operation: str, *, within: Callable[[Any], AbstractContextManager[object]] = lambda _: nullcontext()
) -> Callable[[Callable[P, Coroutine[Any, Any, R]]], Callable[P, Coroutine[Any, Any, R]]]:
    """Decorate an async method of the flow so that each call is observed as ``operation``, inside the context
    ``within(self)`` gives (where :func:`paycore.in_flight.flow_operation` counts it). The arguments name the payment
    (``payment_id``), the provider (``provider``), the currency (``amount``) and the tenant; the result adds what it
    tells (the payment's id, provider, currency and status)."""

    def decorate(method: Callable[P, Coroutine[Any, Any, R]]) -> Callable[P, Coroutine[Any, Any, R]]:
        positional = [
            parameter.name
            for parameter in inspect.signature(method).parameters.values()
            if parameter.kind in (parameter.POSITIONAL_ONLY, parameter.POSITIONAL_OR_KEYWORD)
        ]

        def attributes_of(args: tuple[object, ...], kwargs: Mapping[str, object]) -> dict[str, str | int]:
            return _argument_attributes({**dict(zip(positional, args, strict=False)), **kwargs})

        @functools.wraps(method)
        async def observed(*args: P.args, **kwargs: P.kwargs) -> R:
            # Observed outside ``within``: an operation it refuses (the flow closed) is logged and counted too.
            if quiet(operation_log):
                started = time.perf_counter()
                try:
                    with within(args[0]):
                        return await method(*args, **kwargs)
                except BaseException as error:
                    attributes = {"paycore.operation": operation, **attributes_of(args, kwargs)}
                    log_failure(operation_log, "paycore.operation", attributes, started, error, internal=True)
                    raise
            with observe_operation(operation, attributes_of(args, kwargs)) as observation:
                with within(args[0]):
                    result = await method(*args, **kwargs)
                observation.returned(result)
                return result

        return observed

    return decorate


def _argument_attributes(arguments: Mapping[str, object]) -> dict[str, str | int]:
    from paycore.money import Money  # only when something records: importing the flow loads no attrs

    found: dict[str, str | int] = {}
    payment_id = arguments.get("payment_id")
    if isinstance(payment_id, str):
        found["paycore.payment_id"] = payment_id
    provider = arguments.get("provider")
    if isinstance(provider, str):
        found["paycore.provider.code"] = provider
    amount = arguments.get("amount")
    if isinstance(amount, Money):
        found["paycore.currency"] = amount.currency
    tenant = arguments.get("tenant")
    if isinstance(tenant, str):
        found["paycore.tenant"] = tenant
    return found


def _result_attributes(result: object) -> dict[str, str | int]:
    from paycore.records import Checkout, Payment, Refund

    if isinstance(result, Checkout):
        result = result.payment
    if isinstance(result, Payment):
        return {
            "paycore.payment_id": result.id,
            "paycore.provider.code": result.provider,
            "paycore.currency": result.amount.currency,
            "paycore.payment.status": result.status.value,
            **({"paycore.tenant": result.tenant} if result.tenant is not None else {}),
        }
    if isinstance(result, Refund):
        return {
            "paycore.payment_id": result.payment_id,
            "paycore.refund_id": result.id,
            "paycore.currency": result.amount.currency,
            "paycore.refund.status": result.status.value,
        }
    if isinstance(result, list):  # one payment's id and status on the span and line; not its labels: one series
        told = _result_attributes(result[0]).items() if len(result) == 1 else ()
        return {"paycore.payments": len(result), **{key: value for key, value in told if key not in METRIC_LABELS}}
    return {}

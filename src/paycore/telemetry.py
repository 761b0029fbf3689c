"""The OpenTelemetry tracer and instruments paycore records to (:mod:`paycore.observability` observes with them).

Built at the first operation that records, from the application's providers (or those given to
:func:`paycore.observability.use`); OpenTelemetry's API is imported only then.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any, Final

__all__ = [
    "GLOBAL_PROVIDERS_RECHECK",
    "METRIC_LABELS",
    "OPERATION_COUNTER",
    "OPERATION_DURATION",
    "PROVIDER_CALL_COUNTER",
    "PROVIDER_CALL_DURATION",
    "Telemetry",
]

OPERATION_DURATION: Final = "paycore.operation.duration"
"""Histogram of a flow operation's duration, in seconds."""
OPERATION_COUNTER: Final = "paycore.operations"
"""Counter of flow operations, labelled by outcome."""
PROVIDER_CALL_DURATION: Final = "paycore.provider.call.duration"
"""Histogram of a provider call's duration, in seconds."""
PROVIDER_CALL_COUNTER: Final = "paycore.provider.calls"
"""Counter of provider calls, labelled by outcome."""
GLOBAL_PROVIDERS_RECHECK: Final = 1.0
"""Seconds between two looks at OpenTelemetry's global providers: an SDK set up at run time is used from then on."""
METRIC_LABELS: Final = frozenset(
    {"paycore.operation", "paycore.outcome", "paycore.provider.code", "paycore.provider.type", "paycore.currency"}
)
"""The only attributes that become metric labels: each takes few values (no id, no amount)."""


class Telemetry:
    """The tracer and the four instruments, from one tracer provider and one meter provider."""

    def __init__(self, tracer_provider: Any, meter_provider: Any) -> None:
        from opentelemetry import metrics, trace

        from paycore import __version__

        self.trace = trace
        self.metrics = metrics
        self.explicit = tracer_provider is not None or meter_provider is not None
        self._silent_tracer_providers = (trace.ProxyTracerProvider, trace.NoOpTracerProvider)
        # The meter provider types that record nothing: the API's no-op one and its global proxy.
        self._silent_meter_providers: tuple[type, ...] = (metrics.NoOpMeterProvider,)
        try:
            from opentelemetry.metrics._internal import _ProxyMeterProvider
        except ImportError:  # pragma: no cover - another API layout: its proxy counts as recording
            pass
        else:
            self._silent_meter_providers += (_ProxyMeterProvider,)
        self._recording = False
        self._recheck_at = 0.0
        self.tracer = (tracer_provider or trace.get_tracer_provider()).get_tracer("paycore", __version__)
        meter = (meter_provider or metrics.get_meter_provider()).get_meter("paycore", __version__)
        self.operation_duration = meter.create_histogram(
            OPERATION_DURATION, unit="s", description="How long a paycore flow operation took"
        )
        self.operations = meter.create_counter(
            OPERATION_COUNTER, unit="{operation}", description="paycore flow operations, by outcome"
        )
        self.provider_call_duration = meter.create_histogram(
            PROVIDER_CALL_DURATION, unit="s", description="How long a call to a payment provider took"
        )
        self.provider_calls = meter.create_counter(
            PROVIDER_CALL_COUNTER, unit="{call}", description="Calls to payment providers, by outcome"
        )

    @property
    def recording(self) -> bool:
        """True when spans or metrics go somewhere: providers given to :func:`use`, or global SDK ones."""
        if self.explicit:
            return True
        now = time.monotonic()
        if now >= self._recheck_at:  # looking the global providers up reads the environment: once per interval
            self._recording = not isinstance(
                self.trace.get_tracer_provider(), self._silent_tracer_providers
            ) or not isinstance(self.metrics.get_meter_provider(), self._silent_meter_providers)
            self._recheck_at = now + GLOBAL_PROVIDERS_RECHECK
        return self._recording

    def record(self, seconds: float, attributes: Mapping[str, str | int], *, internal: bool) -> None:
        """Record one operation (``internal``) or provider call that took ``seconds``: its duration and count,
        labelled by the attributes that are :data:`METRIC_LABELS`."""
        labels = {key: value for key, value in attributes.items() if key in METRIC_LABELS}
        duration, counter = (
            (self.operation_duration, self.operations)
            if internal
            else (self.provider_call_duration, self.provider_calls)
        )
        duration.record(seconds, labels)
        counter.add(1, labels)

    def describe(self, span: Any, attributes: Mapping[str, str | int], error: BaseException | None) -> None:
        """Give ``span`` the observation's ``attributes``, and an error status naming ``error``'s class if it failed."""
        span.set_attributes(attributes)
        if error is not None:
            span.set_attribute("paycore.error", type(error).__name__)
            span.set_status(self.trace.Status(self.trace.StatusCode.ERROR, type(error).__name__))

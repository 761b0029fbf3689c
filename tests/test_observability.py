"""What an operator sees of paycore: spans, metrics and log lines of each operation.

OpenTelemetry's SDK, with its in-memory exporter and reader, stands in for the
application's tracing and metrics backends.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from paycore import Money, observability
from paycore.errors import (
    CaptureExceedsAuthorized,
    FlowClosed,
    ProviderNotEnabled,
    ProviderNotSent,
    ProviderOutcomeUnknown,
)
from paycore.flow import PaymentFlow
from paycore.status import Outcome
from paycore.testing.fake import FakeProvider

from .conftest import SECRET

pytestmark = pytest.mark.anyio

XOF_5000 = Money.of("5000", "XOF")


class Telemetry:
    """The spans and metrics paycore sent to in-memory SDK providers."""

    def __init__(self) -> None:
        self.exporter = InMemorySpanExporter()
        self.reader = InMemoryMetricReader()
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.meter_provider = MeterProvider(metric_readers=[self.reader])

    def spans(self, name: str | None = None) -> list[ReadableSpan]:
        """Finished spans, in the order they ended (children before parents)."""
        found = list(self.exporter.get_finished_spans())
        return [span for span in found if name is None or span.name == name]

    def points(self, metric: str) -> list[tuple[dict[str, Any], Any]]:
        """``(labels, data point)`` of every series of ``metric``."""
        data = self.reader.get_metrics_data()
        found: list[tuple[dict[str, Any], Any]] = []
        for resource in data.resource_metrics if data is not None else ():
            for scope in resource.scope_metrics:
                for item in scope.metrics:
                    if item.name == metric:
                        found.extend((dict(point.attributes or {}), point) for point in item.data.data_points)
        return found


@pytest.fixture
def telemetry() -> Iterator[Telemetry]:
    """paycore's spans and metrics, sent to in-memory providers for the test's length."""
    sink = Telemetry()
    observability.use(tracer_provider=sink.tracer_provider, meter_provider=sink.meter_provider)
    yield sink
    observability.reset()


async def _paid_and_refunded(flow: PaymentFlow, fake: FakeProvider) -> str:
    fake.script("initiate", "pending")
    checkout = await flow.create_payment(amount=XOF_5000, provider="fake", order_id="T1", idempotency_key="pay-T1")
    fake.settle(checkout.payment.id, Outcome.SUCCEEDED)
    body, headers = fake.webhook(checkout.payment.id)
    await flow.handle_webhook("fake", body, headers)
    await flow.refund(checkout.payment.id, amount=Money.of("1000", "XOF"), idempotency_key="refund-T1")
    return checkout.payment.id


async def test_each_operation_is_a_span_named_for_it(
    flow: PaymentFlow, fake: FakeProvider, telemetry: Telemetry
) -> None:
    await _paid_and_refunded(flow, fake)
    names = [span.name for span in telemetry.spans() if span.parent is None]
    assert names == ["paycore.create_payment", "paycore.handle_webhook", "paycore.refund"]


async def test_a_provider_call_is_a_child_span_of_its_operation(
    flow: PaymentFlow, fake: FakeProvider, telemetry: Telemetry
) -> None:
    await _paid_and_refunded(flow, fake)
    (initiate,) = telemetry.spans("paycore.provider.initiate")
    (create,) = telemetry.spans("paycore.create_payment")
    assert initiate.parent is not None
    assert initiate.parent.span_id == create.context.span_id
    (refund_call,) = telemetry.spans("paycore.provider.refund")
    (refund,) = telemetry.spans("paycore.refund")
    assert refund_call.parent is not None
    assert refund_call.parent.span_id == refund.context.span_id


async def test_an_operation_span_names_the_payment_provider_currency_and_outcome(
    flow: PaymentFlow, fake: FakeProvider, telemetry: Telemetry
) -> None:
    payment_id = await _paid_and_refunded(flow, fake)
    (create,) = telemetry.spans("paycore.create_payment")
    attributes = dict(create.attributes or {})
    assert attributes["paycore.payment_id"] == payment_id
    assert attributes["paycore.provider.code"] == "fake"
    assert attributes["paycore.currency"] == "XOF"
    assert attributes["paycore.outcome"] == "ok"
    assert attributes["paycore.payment.status"] == "processing"
    (webhook,) = telemetry.spans("paycore.handle_webhook")
    assert dict(webhook.attributes or {})["paycore.provider.code"] == "fake"


async def test_a_provider_call_span_says_what_the_provider_answered(
    flow: PaymentFlow, fake: FakeProvider, telemetry: Telemetry
) -> None:
    payment_id = await _paid_and_refunded(flow, fake)
    (initiate,) = telemetry.spans("paycore.provider.initiate")
    attributes = dict(initiate.attributes or {})
    assert attributes["paycore.payment_id"] == payment_id
    assert attributes["paycore.outcome"] == "answered"
    assert attributes["paycore.provider.outcome"] == "pending"
    (refund,) = telemetry.spans("paycore.provider.refund")  # what the provider said of the refund: its status
    assert dict(refund.attributes or {})["paycore.provider.outcome"] == "succeeded"


async def test_a_refused_operation_is_an_error_span_named_by_its_error(
    flow: PaymentFlow, authorized: Callable[..., Any], telemetry: Telemetry
) -> None:
    payment = await authorized()
    with pytest.raises(CaptureExceedsAuthorized):
        await flow.capture(payment.id, amount=Money.of("9000", "XOF"), idempotency_key="too-much")
    (capture,) = telemetry.spans("paycore.capture")
    assert capture.status.status_code is StatusCode.ERROR
    assert dict(capture.attributes or {})["paycore.outcome"] == "CaptureExceedsAuthorized"


async def test_an_operation_refused_because_the_flow_closed_is_a_span_a_count_and_a_log_line(
    flow: PaymentFlow, fake: FakeProvider, telemetry: Telemetry, caplog: pytest.LogCaptureFixture
) -> None:
    """A webhook answered 503 while the process shut down left no span, no count and no line: the refusal was
    raised before the operation was observed."""
    fake.script("initiate", "pending")
    payment = (await flow.create_payment(amount=XOF_5000, provider="fake", order_id="T1")).payment
    fake.settle(payment.id, Outcome.SUCCEEDED)
    body, headers = fake.webhook(payment.id)
    await flow.aclose()
    with caplog.at_level(logging.INFO, logger="paycore"), pytest.raises(FlowClosed):
        await flow.handle_webhook("fake", body, headers)
    (span,) = telemetry.spans("paycore.handle_webhook")
    assert dict(span.attributes or {})["paycore.outcome"] == "FlowClosed"
    webhooks = [
        attributes["paycore.outcome"]
        for attributes, _ in telemetry.points("paycore.operations")
        if attributes.get("paycore.operation") == "handle_webhook"
    ]
    assert webhooks == ["FlowClosed"]
    (line,) = [record.getMessage() for record in caplog.records if record.name == "paycore.flow"]
    assert "FlowClosed" in line


async def test_a_call_that_was_not_sent_is_counted_as_not_sent(
    flow: PaymentFlow, fake: FakeProvider, telemetry: Telemetry
) -> None:
    fake.script("initiate", "not_sent")
    with pytest.raises(ProviderNotSent):
        await flow.create_payment(amount=XOF_5000, provider="fake", order_id="o", idempotency_key="k")
    (call,) = telemetry.spans("paycore.provider.initiate")
    assert dict(call.attributes or {})["paycore.outcome"] == "not_sent"
    assert {labels["paycore.outcome"] for labels, _ in telemetry.points(observability.PROVIDER_CALL_COUNTER)} == {
        "not_sent"
    }


async def test_a_call_without_a_usable_answer_is_counted_as_unknown(
    flow: PaymentFlow, fake: FakeProvider, telemetry: Telemetry
) -> None:
    fake.script("initiate", "lost")
    await flow.create_payment(amount=XOF_5000, provider="fake", order_id="o", idempotency_key="k")
    (call,) = telemetry.spans("paycore.provider.initiate")
    assert dict(call.attributes or {})["paycore.outcome"] == "unknown"


async def test_a_provider_call_names_the_provider_type_when_given(
    flow: PaymentFlow, fake: FakeProvider, telemetry: Telemetry
) -> None:
    checkout = await flow.create_payment(amount=XOF_5000, provider="fake", order_id="o", idempotency_key="k")
    await flow.calls.ask(fake.check_status(checkout.payment), checkout.payment, None, provider=fake)
    (poll,) = telemetry.spans("paycore.provider.check_status")
    assert dict(poll.attributes or {})["paycore.provider.type"] == "fake"


async def test_operations_are_counted_and_timed_by_outcome(
    flow: PaymentFlow, fake: FakeProvider, authorized: Callable[..., Any], telemetry: Telemetry
) -> None:
    await _paid_and_refunded(flow, fake)
    payment = await authorized(order_id="T2")
    with pytest.raises(CaptureExceedsAuthorized):
        await flow.capture(payment.id, amount=Money.of("9000", "XOF"), idempotency_key="too-much")
    counts = {
        (labels["paycore.operation"], labels["paycore.outcome"]): point.value
        for labels, point in telemetry.points(observability.OPERATION_COUNTER)
    }
    assert counts == {
        ("create_payment", "ok"): 2,
        ("handle_webhook", "ok"): 1,
        ("refund", "ok"): 1,
        ("capture", "CaptureExceedsAuthorized"): 1,
    }
    durations = telemetry.points(observability.OPERATION_DURATION)
    assert sum(point.count for _, point in durations) == 5
    assert all(point.sum >= 0 for _, point in durations)


async def test_metric_labels_carry_no_id_and_no_amount(
    flow: PaymentFlow, fake: FakeProvider, telemetry: Telemetry
) -> None:
    payment_id = await _paid_and_refunded(flow, fake)
    for metric in (
        observability.OPERATION_COUNTER,
        observability.OPERATION_DURATION,
        observability.PROVIDER_CALL_COUNTER,
        observability.PROVIDER_CALL_DURATION,
    ):
        series = telemetry.points(metric)
        assert series, f"{metric} was not recorded"
        for labels, _ in series:
            assert set(labels) <= observability.METRIC_LABELS
            assert payment_id not in labels.values()
            assert "5000" not in " ".join(map(str, labels.values()))


async def test_a_provider_code_the_flow_does_not_have_never_becomes_a_metric_label(
    flow: PaymentFlow, telemetry: Telemetry
) -> None:
    for code in (f"probe-{n}" for n in range(20)):  # what anyone can send to the webhook door
        with pytest.raises(ProviderNotEnabled):
            await flow.handle_webhook(code, b"{}", {})
    codes = {labels.get("paycore.provider.code") for labels, _ in telemetry.points(observability.OPERATION_COUNTER)}
    assert codes == {None}


@pytest.mark.parametrize("body", [b"x" * 2_000_000, "not bytes"], ids=["too-large", "not-bytes"])
async def test_a_refused_body_posted_under_a_made_up_provider_code_never_labels_a_metric(
    flow: PaymentFlow, telemetry: Telemetry, body: object
) -> None:
    for code in (f"probe-{n}" for n in range(5)):
        with pytest.raises(ProviderNotEnabled):
            await flow.handle_webhook(code, body, {})  # type: ignore[arg-type]
    codes = {labels.get("paycore.provider.code") for labels, _ in telemetry.points(observability.OPERATION_COUNTER)}
    assert codes == {None}


async def test_a_provider_call_cut_short_is_counted_as_unknown_and_warned_of(
    flow: PaymentFlow, fake: FakeProvider, telemetry: Telemetry, caplog: pytest.LogCaptureFixture
) -> None:
    import anyio

    fake.script("initiate", "hang")  # the provider has the request; its answer is slow to come
    with anyio.move_on_after(0.05):
        await flow.create_payment(amount=XOF_5000, provider="fake", order_id="o", idempotency_key="k")
    (call,) = telemetry.spans("paycore.provider.initiate")
    assert dict(call.attributes or {})["paycore.outcome"] == "unknown"
    outcomes = {labels["paycore.outcome"] for labels, _ in telemetry.points(observability.PROVIDER_CALL_COUNTER)}
    assert outcomes == {"unknown"}
    assert [r.levelno for r in caplog.records if r.name == "paycore.provider_calls"] == [logging.WARNING]


async def test_a_list_of_one_payment_names_it_on_the_span_but_never_splits_the_metric_series(
    flow: PaymentFlow, fake: FakeProvider, telemetry: Telemetry
) -> None:
    payment_id = await _paid_and_refunded(flow, fake)
    (webhook,) = telemetry.spans("paycore.handle_webhook")
    assert dict(webhook.attributes or {})["paycore.payment_id"] == payment_id
    labels = [labels for labels, _ in telemetry.points(observability.OPERATION_COUNTER)
              if labels["paycore.operation"] == "handle_webhook"]  # fmt: skip
    assert labels == [{"paycore.operation": "handle_webhook", "paycore.provider.code": "fake", "paycore.outcome": "ok"}]


async def test_a_callers_text_in_a_log_line_is_quoted_and_forges_no_field_or_line(
    flow: PaymentFlow, caplog: pytest.LogCaptureFixture
) -> None:
    forged = "cash outcome=ok\nINFO paycore.operation operation=refund payment_id=pay_victim outcome=ok"
    with caplog.at_level(logging.INFO, logger="paycore"), pytest.raises(ProviderNotEnabled):
        await flow.handle_webhook("fake", b"{}", {}, tenant=forged)
    (line,) = [record.getMessage() for record in caplog.records if record.name == "paycore.flow"]
    assert "\n" not in line
    assert "tenant='cash outcome=ok\\nINFO" in line  # one quoted value, its line break shown, not made
    assert line.endswith("outcome=ProviderNotEnabled duration_ms=" + line.rsplit("duration_ms=", 1)[1])


async def test_each_operation_logs_one_line_with_its_event_name_and_payment(
    flow: PaymentFlow, fake: FakeProvider, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="paycore"):
        payment_id = await _paid_and_refunded(flow, fake)
    operations = [record for record in caplog.records if record.name == "paycore.flow"]
    assert [getattr(record, "paycore_operation", None) for record in operations] == [
        "create_payment",
        "handle_webhook",
        "refund",
    ]
    for record in operations:
        message = record.getMessage()
        assert message.startswith("paycore.operation ")
        assert f"payment_id={payment_id}" in message
        assert "outcome=ok" in message
    calls = [record for record in caplog.records if record.name == "paycore.provider_calls"]
    assert [record.getMessage().split()[0] for record in calls] == ["paycore.provider_call"] * 2


async def test_log_lines_never_carry_a_secret_an_amount_or_a_body(
    flow: PaymentFlow, fake: FakeProvider, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG, logger="paycore"):
        await _paid_and_refunded(flow, fake)
    text = "\n".join(record.getMessage() for record in caplog.records)
    assert SECRET not in text
    assert "5000" not in text
    assert "1000" not in text
    assert "{" not in text


async def test_without_a_tracer_provider_operations_still_run(flow: PaymentFlow, fake: FakeProvider) -> None:
    observability.reset()
    checkout = await flow.create_payment(amount=XOF_5000, provider="fake", order_id="o", idempotency_key="k")
    assert checkout.payment.provider == "fake"


BLOCK_OPENTELEMETRY = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name == "opentelemetry" or name.startswith("opentelemetry."):
            raise ImportError(f"No module named {name!r}")
        return None
sys.meta_path.insert(0, Block())
"""


def test_the_core_imports_and_runs_a_payment_without_opentelemetry() -> None:
    script = BLOCK_OPENTELEMETRY + textwrap.dedent(
        """
        import anyio
        import paycore.testing.fake, paycore_memory.plugin
        from paycore import Money, PaymentFlow, observability
        from paycore.errors import ConfigurationError

        async def main():
            config = {"providers": {"fake": {"type": "fake", "webhook_secret": "s"}}}
            plugins = [paycore.testing.fake, paycore_memory.plugin]
            async with PaymentFlow.from_config(config, plugins=plugins, entry_points=False, environ={}) as flow:
                checkout = await flow.create_payment(
                    amount=Money.of("5000", "XOF"), provider="fake", order_id="o", idempotency_key="k"
                )
                print(checkout.payment.status)
            try:
                observability.use()
            except ConfigurationError as error:
                print("refused:", error)
            assert not any(name.startswith("opentelemetry") for name in sys.modules)

        anyio.run(main)
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "succeeded"
    assert lines[1].startswith("refused:")
    assert "paycore[otel]" in lines[1]


# -- what records an operation never changes it -------------------------------------------------------------


class Broken(Exception):
    """What a broken log handler, span processor or instrument raises."""


class RaisingHandler(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        raise Broken(f"the handler of {record.name} is broken")


class RaisingSpanProcessor(SimpleSpanProcessor):
    def __init__(self, where: str) -> None:
        super().__init__(InMemorySpanExporter())
        self.where = where

    def on_start(self, span: Any, parent_context: Any = None) -> None:
        if self.where == "start":
            raise Broken("on_start is broken")

    def on_end(self, span: ReadableSpan) -> None:
        if self.where == "end":
            raise Broken("on_end is broken")


class RaisingInstrument:
    def record(self, *args: object, **kwargs: object) -> None:
        raise Broken("the histogram is broken")

    def add(self, *args: object, **kwargs: object) -> None:
        raise Broken("the counter is broken")


class RaisingMeterProvider:
    def get_meter(self, *args: object, **kwargs: object) -> Any:
        return type("Meter", (), {"create_histogram": lambda *a, **k: RaisingInstrument(),
                                   "create_counter": lambda *a, **k: RaisingInstrument()})()  # fmt: skip


@pytest.fixture(params=["log handler", "span start", "span end", "instruments"])
def broken_recording(request: pytest.FixtureRequest) -> Iterator[str]:
    """One part of what records paycore's operations raises whenever it is used."""
    handler = RaisingHandler()
    if request.param == "log handler":
        for name in ("paycore.flow", "paycore.provider_calls"):
            logging.getLogger(name).addHandler(handler)
            logging.getLogger(name).setLevel(logging.INFO)
    elif request.param.startswith("span"):
        provider = TracerProvider()
        provider.add_span_processor(RaisingSpanProcessor(request.param.removeprefix("span ")))
        observability.use(tracer_provider=provider)
    else:
        observability.use(meter_provider=RaisingMeterProvider())
    yield request.param
    for name in ("paycore.flow", "paycore.provider_calls"):
        logging.getLogger(name).removeHandler(handler)
        logging.getLogger(name).setLevel(logging.NOTSET)
    observability.reset()


async def test_a_broken_log_handler_exporter_or_meter_changes_no_operation(
    flow: PaymentFlow, fake: FakeProvider, broken_recording: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The provider has done the work: what should only have recorded it never turns it into a failure."""
    payment_id = await _paid_and_refunded(flow, fake)
    stored = await flow.get_payment(payment_id)
    assert stored.pending_call is None, "every answer was recorded"
    assert [(refund.amount, refund.status.value) for refund in stored.refunds] == [
        (Money.of("1000", "XOF"), "succeeded")
    ]
    replayed = await flow.refund(payment_id, amount=Money.of("1000", "XOF"), idempotency_key="refund-T1")
    assert replayed.status.value == "succeeded", "the key kept its result"
    assert [op for op, _ in fake.calls].count("refund") == 1
    assert "paycore could not" in caplog.text, "the failure is told where it can be"
    if broken_recording == "log handler":
        assert "could not log a line at INFO on paycore.flow ('%s %s duration_ms=%.1f')" in caplog.text, "which line"


async def test_a_log_handler_that_raises_on_every_paycore_line_changes_no_operation(
    flow: PaymentFlow, fake: FakeProvider
) -> None:
    """Also the lines paycore's modules write of their own (an unknown outcome's warning, a failure's traceback)."""
    handler, root = RaisingHandler(), logging.getLogger("paycore")
    root.addHandler(handler)
    try:
        payment_id = await _paid_and_refunded(flow, fake)
        fake.script("refund", "lost")
        lost = await flow.refund(payment_id, amount=Money.of("1000", "XOF"), idempotency_key="refund-2")
        assert lost.status.value == "pending"
        stored = await flow.get_payment(payment_id)
        assert stored.pending_call is not None
        assert stored.pending_call.unknown, "the lost answer was recorded as unknown, not left in flight"
    finally:
        root.removeHandler(handler)


async def test_a_line_paycore_writes_names_the_function_that_wrote_it(
    flow: PaymentFlow, fake: FakeProvider, caplog: pytest.LogCaptureFixture
) -> None:
    """Its guarded logger is no frame of the record: %(funcName)s and %(pathname)s point into the code that logged."""
    fake.script("initiate", "lost")
    with caplog.at_level(logging.WARNING, logger="paycore.provider_calls"):
        await flow.create_payment(amount=XOF_5000, provider="fake", order_id="T9")
    (record,) = [record for record in caplog.records if record.getMessage().startswith("outcome of initiate")]
    assert (record.funcName, record.pathname.rsplit("/", 1)[-1]) == ("_answer", "provider_calls.py")


async def test_a_gateway_s_text_with_line_breaks_forges_no_line_of_the_log(
    flow: PaymentFlow, fake: FakeProvider, caplog: pytest.LogCaptureFixture
) -> None:
    """A gateway's error message is another party's text: its line breaks are written escaped."""
    forged = "INFO paycore.flow paycore.operation operation=refund outcome=ok"

    async def garbled(payment: Any) -> Any:
        raise ProviderOutcomeUnknown(f"the gateway answered 500 x\n{forged}\r\u2028")

    fake.initiate = garbled  # type: ignore[method-assign]
    with caplog.at_level(logging.INFO, logger="paycore"):
        await flow.create_payment(amount=XOF_5000, provider="fake", order_id="T10")
    (unknown,) = [record for record in caplog.records if record.getMessage().startswith("outcome of initiate")]
    assert unknown.getMessage().endswith(f"answered 500 x\\n{forged}\\r\\u2028")
    assert all(len(record.getMessage().splitlines()) == 1 for record in caplog.records)


def test_an_exception_that_cannot_say_itself_fails_no_line_and_nothing_that_logs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from paycore.logs import guarded_logger

    class Unsayable(Exception):
        def __str__(self) -> str:
            raise AttributeError("body")  # a gateway SDK's error reading an attribute it never set

    with caplog.at_level(logging.WARNING, logger="paycore"):
        guarded_logger("paycore.reaper").warning("could not settle stale payment %s: %s", "pay_1", Unsayable())
        guarded_logger("paycore.reaper").warning("could not settle stale payment %s: %s", "pay_2", "x\ny")
    assert "pay_2: x\\ny" in caplog.text


def test_a_line_a_handler_lost_is_named_by_its_template(caplog: pytest.LogCaptureFixture) -> None:
    from paycore.logs import guarded_logger

    handler, logger = RaisingHandler(), logging.getLogger("paycore.provider_calls")
    logger.addHandler(handler)
    try:
        guarded_logger("paycore.provider_calls").warning("outcome of %s is unknown: %s", "refund", "a secret reason")
    finally:
        logger.removeHandler(handler)
    assert "could not log a line at WARNING on paycore.provider_calls ('outcome of %s is unknown: %s')" in caplog.text
    assert "a secret reason" not in caplog.text.split("Traceback")[0], "its template, never its values"

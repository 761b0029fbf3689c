"""Hooks called through pluggy's relay: wrappers run, failures are attributed to their plugin."""

from __future__ import annotations

import gc
import logging
import types
import warnings
from collections.abc import Generator
from typing import Any

import anyio.lowlevel
import pluggy
import pytest
from attrs import frozen

from paycore import hookimpl
from paycore.errors import PaymentRejected, PluginLoadError, UnsupportedCurrency
from paycore.hookcalls import call_registration_hook, current_plugin, notify_observers, validate_payment
from paycore.plugins import create_plugin_manager

pytestmark = pytest.mark.anyio


@frozen
class Event:
    """Stands in for a PaymentEvent: the hooks only pass it on."""

    kind: str = "succeeded"


@frozen
class Payment:
    """Stands in for a Payment: the hooks only pass it on."""

    id: str = "pay_1"


EVENT, PAYMENT = Event(), Payment()


def _manager(*plugins: object) -> pluggy.PluginManager:
    return create_plugin_manager(list(plugins), entry_points=False)


def _named(name: str, **hooks: Any) -> types.ModuleType:
    plugin = types.ModuleType(name)
    for hook_name, function in hooks.items():
        setattr(plugin, hook_name, function)
    return plugin


class Observer:
    """Appends ``name`` to ``calls`` for each event, synchronously or from a coroutine."""

    def __init__(self, name: str, calls: list[str], *, asynchronous: bool = False, fails: bool = False) -> None:
        self.name, self.calls, self.asynchronous, self.fails = name, calls, asynchronous, fails

    @hookimpl
    def paycore_payment_event(self, event: Event, payment: Payment) -> Any:
        if not self.asynchronous:
            self._observe(event)
            return None
        return self._observe_later(event)

    async def _observe_later(self, event: Event) -> None:
        await anyio.lowlevel.checkpoint()
        self._observe(event)

    def _observe(self, event: Event) -> None:
        if self.fails:
            raise RuntimeError(f"{self.name} is down")
        self.calls.append(f"{self.name}:{event.kind}")


class Validator:
    """Appends ``name`` to ``calls``; refuses or crashes when told to."""

    def __init__(self, name: str, calls: list[str], *, asynchronous: bool = False, error: Exception | None = None):
        self.name, self.calls, self.asynchronous, self.error = name, calls, asynchronous, error

    @hookimpl
    def paycore_validate_payment(self, payment: Payment) -> Any:
        if not self.asynchronous:
            self._check()
            return None
        return self._check_later()

    async def _check_later(self) -> None:
        await anyio.lowlevel.checkpoint()
        self._check()

    def _check(self) -> None:
        self.calls.append(self.name)
        if self.error is not None:
            raise self.error


class Around:
    """A ``wrapper=True`` implementation of both hooks that records when it runs."""

    def __init__(self, calls: list[str]) -> None:
        self.calls = calls

    @hookimpl(wrapper=True)
    def paycore_payment_event(self, event: Event, payment: Payment) -> Generator[None, list[object], list[object]]:
        self.calls.append("around:before")
        results = yield
        self.calls.append(f"around:after {len(results)} results")
        return results

    @hookimpl(wrapper=True)
    def paycore_validate_payment(self, payment: Payment) -> Generator[None, list[object], list[object]]:
        self.calls.append("around:before")
        results = yield
        self.calls.append(f"around:after {len(results)} results")
        return results


# -- paycore_payment_event ------------------------------------------------------------------


async def test_a_wrapper_observer_runs_around_the_other_observers() -> None:
    calls: list[str] = []
    manager = _manager(Observer("audit", calls), Observer("mail", calls, asynchronous=True), Around(calls))
    await notify_observers(manager, events=[EVENT], payment=PAYMENT)
    assert calls == ["around:before", "audit:succeeded", "around:after 1 results", "mail:succeeded"]


async def test_an_observer_that_raises_is_logged_by_name_and_the_others_still_run(
    caplog: pytest.LogCaptureFixture,
) -> None:
    calls: list[str] = []
    failing = _named("ledger_sync", paycore_payment_event=Observer("ledger", calls, fails=True).paycore_payment_event)
    manager = _manager(Observer("before", calls), failing, Observer("after", calls))
    with caplog.at_level(logging.ERROR):
        await notify_observers(manager, events=[EVENT], payment=PAYMENT)
    assert sorted(calls) == ["after:succeeded", "before:succeeded"]
    assert "plugin 'ledger_sync' failed observing event succeeded of payment pay_1" in caplog.text
    assert "ledger is down" in caplog.text


async def test_an_observer_whose_awaitable_fails_is_isolated_too(caplog: pytest.LogCaptureFixture) -> None:
    calls: list[str] = []
    failing = _named(
        "slow_ledger",
        paycore_payment_event=Observer("ledger", calls, asynchronous=True, fails=True).paycore_payment_event,
    )
    manager = _manager(Observer("first", calls, asynchronous=True), failing, Observer("last", calls, asynchronous=True))
    with caplog.at_level(logging.ERROR):
        await notify_observers(manager, events=[EVENT], payment=PAYMENT)
    assert sorted(calls) == ["first:succeeded", "last:succeeded"]
    assert "plugin 'slow_ledger' failed observing event succeeded of payment pay_1" in caplog.text


async def test_a_failing_observer_wrapper_never_reaches_the_caller(caplog: pytest.LogCaptureFixture) -> None:
    class BrokenWrapper:
        @hookimpl(wrapper=True)
        def paycore_payment_event(self, event: Event, payment: Payment) -> Generator[None, Any, Any]:
            yield
            raise RuntimeError("wrapper broke")

    with caplog.at_level(logging.ERROR):
        await notify_observers(_manager(Observer("audit", []), BrokenWrapper()), events=[EVENT], payment=PAYMENT)
    assert "wrapper broke" in caplog.text


async def test_observers_are_wrapped_once_however_often_they_are_called(caplog: pytest.LogCaptureFixture) -> None:
    failing = _named("flaky", paycore_payment_event=Observer("x", [], fails=True).paycore_payment_event)
    manager = _manager(failing)
    with caplog.at_level(logging.ERROR):
        for _ in range(3):
            await notify_observers(manager, events=[EVENT], payment=PAYMENT)
    assert caplog.text.count("plugin 'flaky' failed observing") == 3


# -- paycore_validate_payment -------------------------------------------------------------


async def test_a_wrapper_validator_runs_around_the_other_validators() -> None:
    calls: list[str] = []
    manager = _manager(Validator("limits", calls), Validator("tenant", calls, asynchronous=True), Around(calls))
    await validate_payment(manager, payment=PAYMENT)
    assert calls == ["around:before", "limits", "around:after 1 results", "tenant"]


async def test_a_wrapper_validator_sees_a_rejection_and_it_still_refuses() -> None:
    calls: list[str] = []
    manager = _manager(Validator("limits", calls, error=PaymentRejected("over the limit")), Around(calls))
    with pytest.raises(PaymentRejected, match="over the limit"):
        await validate_payment(manager, payment=PAYMENT)
    assert calls == ["around:before", "limits"]


@pytest.mark.parametrize("asynchronous", [False, True])
async def test_a_validator_that_crashes_refuses_the_payment_naming_the_plugin(asynchronous: bool) -> None:
    crashing = Validator("limits", [], asynchronous=asynchronous, error=KeyError("limits service unreachable"))
    plugin = _named("limits_service", paycore_validate_payment=crashing.paycore_validate_payment)
    with pytest.raises(PaymentRejected) as raised:
        await validate_payment(_manager(plugin), payment=PAYMENT)
    assert str(raised.value) == "validation plugin 'limits_service' failed (KeyError); payment refused"
    assert isinstance(raised.value.__cause__, KeyError)


@pytest.mark.parametrize("asynchronous", [False, True])
async def test_a_validators_paycore_error_propagates_as_it_is(asynchronous: bool) -> None:
    refusal = UnsupportedCurrency("this shop takes XOF, not EUR")
    with pytest.raises(UnsupportedCurrency) as raised:
        await validate_payment(
            _manager(Validator("currency", [], asynchronous=asynchronous, error=refusal)), payment=PAYMENT
        )
    assert raised.value is refusal


async def test_a_refusal_closes_the_coroutines_other_validators_returned() -> None:
    calls: list[str] = []

    class FirstAndAsync(Validator):
        @hookimpl(tryfirst=True)
        def paycore_validate_payment(self, payment: Payment) -> Any:
            return super().paycore_validate_payment(payment)

    manager = _manager(
        Validator("limits", calls, error=PaymentRejected("over the limit")),
        FirstAndAsync("slow", calls, asynchronous=True),
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(PaymentRejected):
            await validate_payment(manager, payment=PAYMENT)
        gc.collect()
    assert calls == ["limits"]
    assert [str(w.message) for w in caught if "never awaited" in str(w.message)] == []


@pytest.mark.parametrize("asynchronous", [False, True])
@pytest.mark.parametrize(
    ("answer", "told"),
    [
        (False, "validation plugin 'limits_service' refused payment pay_1: it returned False"),
        ("over the 10 000 XOF limit", "validation plugin 'limits_service' refused payment pay_1: 'over the 10 000"),
        (PaymentRejected("over the limit"), "over the limit"),
        (0, "it returned 0"),
    ],
)
async def test_a_validator_that_returns_its_refusal_instead_of_raising_it_still_refuses(
    asynchronous: bool, answer: object, told: str
) -> None:
    def refuse(payment: Payment) -> object:
        if asynchronous:

            async def later() -> object:
                return answer

            return later()
        return answer

    plugin = _named("limits_service", paycore_validate_payment=hookimpl(refuse))
    with pytest.raises(PaymentRejected) as raised:
        await validate_payment(_manager(plugin), payment=PAYMENT)
    assert str(raised.value).startswith(told) or told in str(raised.value)


@pytest.mark.parametrize("answer", [None, True])
async def test_a_validator_that_returns_none_or_true_lets_the_payment_through(answer: object) -> None:
    plugin = _named("limits_service", paycore_validate_payment=hookimpl(lambda payment: answer))
    await validate_payment(_manager(plugin), payment=PAYMENT)


async def test_validators_pass_a_payment_they_all_accept() -> None:
    calls: list[str] = []
    await validate_payment(_manager(Validator("a", calls), Validator("b", calls, asynchronous=True)), payment=PAYMENT)
    assert sorted(calls) == ["a", "b"]


# -- registration hooks -------------------------------------------------------------------


def test_register_knows_which_plugin_is_registering() -> None:
    @hookimpl
    def paycore_register_commands(register: Any) -> None:
        register("hello")

    seen: list[tuple[str, str]] = []
    manager = _manager(_named("greeter", paycore_register_commands=paycore_register_commands))
    call_registration_hook(manager, "paycore_register_commands", lambda name: seen.append((name, current_plugin())))
    assert seen == [("hello", "greeter")]


def test_a_registration_hook_that_raises_stops_loading_naming_the_plugin() -> None:
    @hookimpl
    def paycore_demo_steps(register: Any) -> None:
        raise ValueError("no steps today")

    manager = _manager(_named("sleepy_demo", paycore_demo_steps=paycore_demo_steps))
    with pytest.raises(PluginLoadError, match="plugin 'sleepy_demo' failed in paycore_demo_steps: ValueError"):
        call_registration_hook(manager, "paycore_demo_steps", lambda *args, **kwargs: None)


def test_register_kept_and_called_after_its_hook_is_refused() -> None:
    kept: list[Any] = []

    @hookimpl
    def paycore_register_commands(register: Any) -> None:
        kept.append(register)

    manager = _manager(_named("hoarder", paycore_register_commands=paycore_register_commands))
    call_registration_hook(manager, "paycore_register_commands", lambda name: current_plugin())
    with pytest.raises(PluginLoadError, match="register was called outside a paycore registration hook"):
        kept[0]("late")


def test_only_registration_hooks_are_called_as_registration_hooks() -> None:
    with pytest.raises(ValueError, match="'paycore_payment_event' is not a registration hook"):
        call_registration_hook(_manager(), "paycore_payment_event", lambda: None)

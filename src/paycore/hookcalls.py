"""Calling paycore's hooks through pluggy's relay, each plugin's failure attributed to it.

pluggy calls a hook's implementations in turn and stops at the first exception.
paycore needs one policy per kind of hook:

* registration hooks (``paycore_register_*``, ``paycore_demo_steps``,
  ``paycore_report_sections``): a failure (``sys.exit()`` included) stops loading
  (or the report) with a :class:`~paycore.errors.PluginLoadError` naming the
  plugin, as does an ``async def`` implementation (its coroutine is closed, never
  run); ``register`` knows which plugin is calling it (:func:`current_plugin`);
* observers (``paycore_payment_event``): a failure is logged naming the plugin and
  the other observers still run; an awaitable an observer returns is awaited with
  the same isolation;
* validators (``paycore_validate_payment``): fail closed; a
  :class:`~paycore.errors.PaycoreError` propagates as is, any other failure
  refuses the payment with a :class:`~paycore.errors.PaymentRejected` naming the
  plugin.

Before a hook is called, each of its implementations that is not a wrapper has its
function wrapped, once, with the hook's policy; then the hook is called through
``plugin_manager.hook``, so ``@hookimpl(wrapper=True)``, ``tryfirst`` and
``trylast`` behave as pluggy documents. Wrappers run around the synchronous
calls; awaitables are awaited after the relay returns, in call order.
"""

from __future__ import annotations

import functools
import inspect
import weakref
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, Final

import anyio
import pluggy

from paycore.awaiting import run_to_end
from paycore.errors import DuplicateRegistration, PaycoreError, PaymentRejected, PluginLoadError
from paycore.logs import guarded_logger
from paycore.wire import shown

if TYPE_CHECKING:
    from paycore.records import Payment, PaymentEvent

__all__ = [
    "REGISTRATION_HOOKS",
    "call_registration_hook",
    "close_unawaited",
    "current_plugin",
    "describe_failure",
    "note_distribution",
    "notify_observers",
    "validate_payment",
]

log = guarded_logger(__name__)

REGISTRATION_HOOKS: Final = frozenset(
    {
        "paycore_register_providers",
        "paycore_register_repositories",
        "paycore_register_idempotency_stores",
        "paycore_register_commands",
        "paycore_demo_steps",
        "paycore_report_sections",
    }
)
"""Hooks that receive a ``register`` callable; a failure in one stops loading."""

_POLICY_ATTRIBUTE: Final = "__paycore_hook_policy__"

_current_plugin: ContextVar[str | None] = ContextVar("paycore_current_plugin", default=None)
_started: ContextVar[list[Awaitable[object]] | None] = ContextVar("paycore_started_awaitables", default=None)
"""Awaitables the implementations of the hook being called returned, to close if the relay fails."""

Policy = Callable[[Callable[..., object], str, Sequence[str]], Callable[..., object]]


def current_plugin() -> str:
    """The name of the plugin whose registration hook is running (for ``register`` callables).

    :class:`PluginLoadError` if none is: ``register`` was kept and called later.
    """
    plugin = _current_plugin.get()
    if plugin is None:
        raise PluginLoadError("register was called outside a paycore registration hook; call it from the hook itself")
    return plugin


def call_registration_hook(plugin_manager: pluggy.PluginManager, hook_name: str, register: object) -> None:
    """Call registration hook ``hook_name`` of every plugin with ``register``, through the relay.

    ``register`` finds the calling plugin with :func:`current_plugin`. A plugin
    that raises (``SystemExit`` included; a ``KeyboardInterrupt`` propagates), or
    whose implementation is an ``async def``, stops loading with a
    :class:`PluginLoadError` naming it and its distribution
    (:class:`DuplicateRegistration` and :class:`PluginLoadError` raised by
    ``register`` propagate as they are).
    """
    if hook_name not in REGISTRATION_HOOKS:
        raise ValueError(f"{hook_name!r} is not a registration hook; expected one of {sorted(REGISTRATION_HOOKS)}")
    hook = getattr(plugin_manager.hook, hook_name)
    _apply_policy(hook, "registration", _attributed_registration(_distributions.get(plugin_manager, {})))
    hook(register=register)


async def notify_observers(
    plugin_manager: pluggy.PluginManager, *, events: Sequence[PaymentEvent], payment: Payment
) -> None:
    """Tell every ``paycore_payment_event`` observer about each of ``events``, in order; no failure escapes.

    An observer that raises, or whose awaitable raises, is logged naming it; the
    others still run. The events are committed: an async observer runs to its end
    even when the caller is cancelled (the cancellation comes after it), so no
    observer misses one; under asyncio its awaitable runs in a task of its own (with a
    copy of the caller's context), which asyncio's own ``Task.cancel()`` cannot cut short.
    Whether any observer listens is asked once for all of ``events``.
    """
    hook = plugin_manager.hook.paycore_payment_event
    if not events or not hook.get_hookimpls():
        return  # nobody listens: nothing to wrap or call
    _apply_policy(hook, "observer", _isolated_observer)
    telling = _Telling(hook, events, payment)
    try:
        with anyio.CancelScope(shield=True):  # a committed event is told whole, even to a cancelled caller
            await telling.tell()
    except anyio.get_cancelled_exc_class():
        # asyncio's own Task.cancel() goes through the shield: the observer it met ran to its end all the same,
        # and what is left is told in a task of its own before the cancel is raised.
        await run_to_end(telling.tell)
        raise


class _Telling:
    """The events to tell observers, and where the telling stands (the observers' awaitables of one event)."""

    def __init__(self, hook: Any, events: Sequence[PaymentEvent], payment: Payment) -> None:
        self.hook, self.payment = hook, payment
        self.events = list(events)
        self.waiting: list[Awaitable[Any]] = []
        self.event: PaymentEvent | None = None

    async def tell(self) -> None:
        """Tell what is left: the awaitables of the event being told, then each event after it, in order."""
        while True:
            while self.waiting:
                await self._awaited(self.waiting.pop(0))
            if not self.events:
                return
            self.event = event = self.events.pop(0)
            try:
                results = _call_relay(self.hook, event=event, payment=self.payment)
            except Exception:
                log.exception("a paycore_payment_event wrapper failed on event %s of payment %s", event.kind,
                              self.payment.id)  # fmt: skip
                continue
            self.waiting = [result for result in results if inspect.isawaitable(result)]

    async def _awaited(self, result: Awaitable[Any]) -> None:
        try:
            await run_to_end(lambda: result)  # under asyncio in a task of its own: no cancellation cuts it short
        except Exception as failure:
            self._failed(failure)
        except BaseException as cut:  # the caller's cancellation, raised once the awaitable ended, maybe failing
            if isinstance(cut.__cause__, Exception):
                self._failed(cut.__cause__)
            raise

    def _failed(self, failure: Exception) -> None:
        assert self.event is not None
        log.error(
            "an awaitable from a paycore_payment_event wrapper failed on event %s of payment %s",
            self.event.kind,
            self.payment.id,
            exc_info=failure,
        )


async def validate_payment(plugin_manager: pluggy.PluginManager, *, payment: Payment) -> None:
    """Ask every ``paycore_validate_payment`` policy about ``payment``; fail closed.

    A :class:`~paycore.errors.PaycoreError` (a policy's
    :class:`~paycore.errors.PaymentRejected`) propagates as is; any other failure,
    raised or from an awaitable, becomes a :class:`PaymentRejected` naming the plugin.
    """
    hook = plugin_manager.hook.paycore_validate_payment
    if not hook.get_hookimpls():
        return  # no policy: nothing can refuse
    _apply_policy(hook, "validator", _fail_closed_validator)
    try:
        results = _call_relay(hook, payment=payment)
        for result in results:
            if inspect.isawaitable(result):
                await result
    except PaycoreError:
        raise
    except Exception as error:
        log.exception("a paycore_validate_payment wrapper failed on payment %s", payment.id)
        raise PaymentRejected(
            f"a paycore_validate_payment wrapper failed ({type(error).__name__}); payment refused"
        ) from error


def _call_relay(hook: pluggy.HookCaller, **arguments: object) -> list[object]:
    """Call ``hook`` through the relay; if it raises, close the awaitables already returned."""
    started: list[Awaitable[object]] = []
    token = _started.set(started)
    try:
        return list(hook(**arguments))
    except BaseException:
        for awaitable in started:
            close_unawaited(awaitable)
        raise
    finally:
        _started.reset(token)


def _track(awaitable: Awaitable[object]) -> None:
    started = _started.get()
    if started is not None:
        started.append(awaitable)


def _apply_policy(hook: pluggy.HookCaller, name: str, policy: Policy) -> None:
    """Wrap each non-wrapper implementation of ``hook`` with ``policy``, once."""
    for impl in hook.get_hookimpls():
        if impl.wrapper or impl.hookwrapper or getattr(impl.function, _POLICY_ATTRIBUTE, None) == name:
            continue
        wrapped = policy(impl.function, impl.plugin_name, tuple(impl.argnames))
        setattr(wrapped, _POLICY_ATTRIBUTE, name)
        # pluggy types HookImpl.function as Final but keeps it a plain attribute; replacing it
        # is how one implementation is wrapped while the relay still drives the call.
        impl.function = wrapped  # type: ignore[misc]


def _attributed_registration(distributions: Mapping[str, str]) -> Policy:
    """The registration policy; ``distributions`` names the distribution of each plugin, for messages."""

    def policy(function: Callable[..., object], plugin: str, argnames: Sequence[str]) -> Callable[..., object]:
        who = f"plugin {plugin!r}"
        if plugin in distributions:
            who += f" ({distributions[plugin]})"

        @functools.wraps(function)
        def attributed(*args: object) -> object:
            token = _current_plugin.set(plugin)
            try:
                result = function(*args)
            except (DuplicateRegistration, PluginLoadError):
                raise
            except (Exception, SystemExit) as error:  # a KeyboardInterrupt stays one
                raise PluginLoadError(f"{who} failed in {function.__name__}: {describe_failure(error)}") from error
            finally:
                _current_plugin.reset(token)
            if inspect.isawaitable(result):
                close_unawaited(result)
                raise PluginLoadError(
                    f"{who} implements {function.__name__} as a coroutine, which registered nothing; "
                    "a registration hook must be a plain function (def, not async def)"
                )
            return result

        return attributed

    return policy


def describe_failure(error: BaseException) -> str:
    """``"RuntimeError: boom"``, for a message naming the plugin that raised ``error``."""
    if isinstance(error, SystemExit):
        return f"SystemExit: the plugin called sys.exit({error.code!r})"
    return f"{type(error).__name__}: {error}"


def close_unawaited(awaitable: object) -> None:
    """Close ``awaitable`` (a coroutine) that will never be awaited, so no RuntimeWarning says so."""
    close = getattr(awaitable, "close", None)
    if inspect.iscoroutine(awaitable) and callable(close):
        close()


def note_distribution(plugin_manager: pluggy.PluginManager, plugin: str, distribution: str) -> None:
    """Record that ``plugin`` of ``plugin_manager`` came from ``distribution`` (``"acme-pay 1.0"``)."""
    _distributions.setdefault(plugin_manager, {})[plugin] = distribution


_distributions: weakref.WeakKeyDictionary[pluggy.PluginManager, dict[str, str]] = weakref.WeakKeyDictionary()
"""The distribution each entry-point plugin came from, by manager and plugin name."""


def _isolated_observer(function: Callable[..., object], plugin: str, argnames: Sequence[str]) -> Callable[..., object]:
    @functools.wraps(function)
    def isolated(*args: object) -> object:
        subject = _describe_event(dict(zip(argnames, args, strict=False)))
        try:
            result = function(*args)
        except Exception:
            log.exception("plugin %r failed observing %s", plugin, subject)
            return None
        if inspect.isawaitable(result):
            _track(result)
            isolated_result = _await_isolated(result, plugin, subject)
            _track(isolated_result)
            return isolated_result
        return result

    return isolated


async def _await_isolated(awaitable: Awaitable[object], plugin: str, subject: str) -> None:
    try:
        await awaitable
    except Exception:
        log.exception("plugin %r failed observing %s", plugin, subject)


def _describe_event(arguments: dict[str, Any]) -> str:
    event, payment = arguments.get("event"), arguments.get("payment")
    kind = getattr(event, "kind", None)
    payment_id = getattr(payment, "id", None)
    return f"event {kind or '?'} of payment {payment_id or '?'}"


def _fail_closed_validator(
    function: Callable[..., object], plugin: str, argnames: Sequence[str]
) -> Callable[..., object]:
    @functools.wraps(function)
    def fail_closed(*args: object) -> object:
        payment_id = getattr(dict(zip(argnames, args, strict=False)).get("payment"), "id", "?")
        try:
            result = function(*args)
        except PaycoreError:
            raise
        except Exception as error:
            raise _refusal(plugin, payment_id, error) from error
        if inspect.isawaitable(result):
            _track(result)
            checked = _await_fail_closed(result, plugin, payment_id)
            _track(checked)
            return checked
        _returned(result, plugin, payment_id)
        return None

    return fail_closed


async def _await_fail_closed(awaitable: Awaitable[object], plugin: str, payment_id: str) -> None:
    try:
        result = await awaitable
    except PaycoreError:
        raise
    except Exception as error:
        raise _refusal(plugin, payment_id, error) from error
    _returned(result, plugin, payment_id)


def _returned(result: object, plugin: str, payment_id: str) -> None:
    """A policy says yes by returning ``None`` (or ``True``); anything else it returns refuses the payment (fail
    closed): a :class:`~paycore.errors.PaycoreError` is raised as it is, any other value as a refusal naming it."""
    if result is None or result is True:
        return
    if isinstance(result, PaycoreError):
        raise result
    reason = shown(result) if isinstance(result, str) and result.strip() else f"it returned {shown(result)}"
    raise PaymentRejected(f"validation plugin {plugin!r} refused payment {payment_id}: {reason}")


def _refusal(plugin: str, payment_id: str, error: Exception) -> PaymentRejected:
    log.error("validation plugin %r failed on payment %s", plugin, payment_id, exc_info=error)
    return PaymentRejected(f"validation plugin {plugin!r} failed ({type(error).__name__}); payment refused")

"""The process's one :class:`~paycore.flow.PaymentFlow`, configured from Django settings.

``settings.PAYCORE`` is what :meth:`PaymentFlow.from_config` takes (a mapping
shaped like paycore's TOML file, or the path of such a file); its
``repository`` defaults to ``"django"``, the project's default database, and the
idempotency store follows the repository. Django-only options live in
``settings.PAYCORE_DJANGO``, read and checked here only (:func:`django_options`;
any other key is refused):

``PLUGINS``
    Plugin modules (dotted paths) or objects registered in code, beside the
    installed entry points.
``BLOCKING_BACKEND``
    The event loop :func:`blocking_flow` runs on: ``"asyncio"`` (default) or ``"trio"``.
``ORDER_RESOLVER``
    ``(request, order_id) -> (Money, description) | None``: what an order costs.
``TENANT_RESOLVER``
    ``(request) -> str | None``: the tenant of a request; ``None`` (or no
    resolver) is "no tenant": the views show such a request only payments
    without a tenant, never every tenant's.
``PAYMENT_METADATA``
    ``(request, order_id, provider_code) -> dict``: metadata of a payment the views start.
``PROVIDER_FILTER``
    ``(request, providers) -> providers``: of the tenant's providers (a dict by
    code), those this request may pay with; the pay form and the
    ``paycore_providers`` tag offer only these (e.g. cash, taken in person, for staff only).
``WEBHOOK_ALLOWED_IPS``
    Addresses or networks allowed to deliver webhooks (unset: any sender).
``TRUSTED_PROXIES``
    Peers whose ``X-Forwarded-For`` is believed.

The callables may be given as dotted paths.

:func:`flow` (async code: async views, tasks) builds a flow for each event loop
that asks, since a provider's connections belong to the loop they were opened
on: one per process under ASGI, one per request under WSGI, where Django runs
each async view on a new loop; the flow of a loop that closed is dropped.
:func:`blocking_flow` (sync views, management commands) builds one per process.
Both read the settings once, build lazily and are thread-safe, and a process
forked after building one (a pre-forking server) builds its own instead of
sharing its parent's. Changing ``PAYCORE`` or ``PAYCORE_DJANGO`` with
``override_settings`` forgets them (tests).
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import sys
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final, TypeAlias, cast

from attrs import define, field, frozen

from paycore.blocking import BlockingPaymentFlow
from paycore.config import PaycoreConfig, load_config
from paycore.config_sources import read_toml
from paycore.errors import ConfigurationError
from paycore.flow import PaymentFlow
from paycore.plugins import implements_a_hook
from paycore.secrets import redact_url, shown_setting
from paycore_django.callers import caller_transaction
from paycore_django.loop_ends import close_at_loop_end, let_go

__all__ = [
    "BLOCKING_BACKENDS",
    "OPTION_KEYS",
    "DjangoBlockingPaymentFlow",
    "DjangoOptions",
    "IpNetwork",
    "blocking_flow",
    "django_options",
    "flow",
    "flow_plugins",
    "paycore_config",
    "repository_database",
    "reset",
]

BLOCKING_BACKENDS: Final = ("asyncio", "trio")
"""Event loops :func:`blocking_flow` can run on."""

OPTION_KEYS: Final = (
    "BLOCKING_BACKEND",
    "ORDER_RESOLVER",
    "PAYMENT_METADATA",
    "PLUGINS",
    "PROVIDER_FILTER",
    "TENANT_RESOLVER",
    "TRUSTED_PROXIES",
    "WEBHOOK_ALLOWED_IPS",
)
"""Every key ``settings.PAYCORE_DJANGO`` may hold."""

IpNetwork: TypeAlias = ipaddress.IPv4Network | ipaddress.IPv6Network
"""An address or network of ``WEBHOOK_ALLOWED_IPS`` / ``TRUSTED_PROXIES``."""

DEFAULT_REPOSITORY: Final = "django"
"""The repository of a Django project that names none: the project's default database."""


@frozen
class DjangoOptions:
    """``settings.PAYCORE_DJANGO``, checked: every Django-only option of paycore."""

    plugins: tuple[object, ...] = ()
    """Plugin modules or objects registered in code (beside entry points)."""
    blocking_backend: str = "asyncio"
    """The event loop of :func:`blocking_flow`."""
    order_resolver: Callable[..., Any] | None = None
    """``(request, order_id) -> (Money, description) | None``; ``None``: not set."""
    tenant_resolver: Callable[..., Any] | None = None
    """``(request) -> str | None``; ``None``: requests have no tenant."""
    payment_metadata: Callable[..., Any] | None = None
    """``(request, order_id, provider_code) -> dict``; ``None``: no metadata."""
    provider_filter: Callable[..., Any] | None = None
    """``(request, providers) -> providers``; ``None``: every provider of the tenant is offered."""
    webhook_allowed_ips: tuple[IpNetwork, ...] | None = None
    """The networks allowed to deliver webhooks; ``None``: any sender."""
    trusted_proxies: tuple[IpNetwork, ...] = ()
    """The peers whose ``X-Forwarded-For`` is believed."""


def _raw_options() -> Mapping[str, Any]:
    from django.conf import settings

    options = getattr(settings, "PAYCORE_DJANGO", None)
    if options is None:
        return {}
    if not isinstance(options, Mapping):
        raise ConfigurationError(f"settings.PAYCORE_DJANGO must be a dict, not {type(options).__name__}")
    return options


def _imported(path: str, where: str, hint: str, *, module: bool = False) -> object:
    """What the dotted ``path`` of the setting ``where`` names: (``module``: a module, else) an object in a module.

    A path that is no dotted path (``""``, ``".relative"``), a module that is not there and a module whose code
    raises while imported are each a :class:`ConfigurationError` naming the setting, never the import's own error
    (a ``ValueError``, a ``TypeError``, whatever the module raised), which a system check would not report.
    """
    import importlib

    from django.utils.module_loading import import_string

    if not all(path.split(".")):
        raise ConfigurationError(f"{where} is not a dotted path (a name, or names joined by dots); {hint}")
    missing: ImportError | None = None
    try:
        if module:
            try:
                return importlib.import_module(path)
            except ImportError as error:
                missing = error
        return import_string(path)
    except ImportError as error:
        raise ConfigurationError(f"{where} cannot be imported ({missing or error}); {hint}") from None
    except Exception as error:  # the module's own code raised while it was imported
        raise ConfigurationError(
            f"{where} cannot be imported: importing it raised {type(error).__name__}: "
            f"{redact_url(str(error))[:200]}; {hint}"
        ) from error


def _hooked(value: object, where: str) -> bool:
    """Whether ``value`` implements a paycore hook; :class:`ConfigurationError` naming the setting ``where`` when its
    attributes cannot be listed (a lazy object whose setup fails)."""
    try:
        return implements_a_hook(value)
    except Exception as error:
        raise ConfigurationError(
            f"{where} cannot be read as a plugin: listing its attributes raised {type(error).__name__}: "
            f"{redact_url(str(error))[:200]}"
        ) from error


def _plugin(value: object, index: int) -> object:
    """A ``PLUGINS`` entry: a module, a class or an object with a paycore hook implementation as is; a dotted
    path imported (a module, else an object in one), which must name such a plugin. Anything else (a tuple, a
    number, an app's package given for its plugin module) is a slip, which would register a plugin doing
    nothing: refused."""
    where = f"PAYCORE_DJANGO['PLUGINS'][{index}]"
    if _hooked(value, where):
        return value
    if not isinstance(value, str):
        raise ConfigurationError(
            f"{where} = {shown_setting(value)} is neither a plugin module's dotted path nor a plugin (a module, a "
            "class, or an object with @paycore.hookimpl methods); give a dotted path, e.g. 'myshop.paycore_plugin'"
        )
    hint = "give a plugin module's dotted path, e.g. 'myshop.paycore_plugin'"
    plugin = _imported(value, f"{where} = {value!r}", hint, module=True)
    if not _hooked(plugin, f"{where} = {value!r}"):
        raise ConfigurationError(
            f"{where} = {value!r} names {shown_setting(plugin)}, which implements no paycore hook (nothing in it "
            f"is marked @paycore.hookimpl); {hint}"
        )
    return plugin


def _callable(options: Mapping[str, Any], name: str) -> Callable[..., Any] | None:
    """The callable ``PAYCORE_DJANGO[name]`` names (itself or its dotted path), or ``None`` when unset."""
    value = options.get(name)
    if value is None:
        return None
    if isinstance(value, str):
        value = _imported(
            value,
            f"PAYCORE_DJANGO[{name!r}] = {value!r}",
            "give a callable or its dotted path, e.g. 'shop.payments.resolve_order'",
        )
    if not callable(value):
        raise ConfigurationError(f"PAYCORE_DJANGO[{name!r}] must be a callable or its dotted path, not {value!r}")
    found: Callable[..., Any] = value
    return found


def _networks(options: Mapping[str, Any], name: str) -> tuple[IpNetwork, ...] | None:
    """The addresses and networks ``PAYCORE_DJANGO[name]`` lists, or ``None`` when unset."""
    raw = options.get(name)
    if raw is None:
        return None
    if isinstance(raw, (str, bytes, Mapping)) or not isinstance(raw, Iterable):
        raise ConfigurationError(
            f"PAYCORE_DJANGO[{name!r}] must be a list of addresses or networks (e.g. ['203.0.113.0/24']), not {raw!r}"
        )
    networks = []
    for entry in raw:
        try:
            networks.append(ipaddress.ip_network(str(entry), strict=False))
        except ValueError:
            raise ConfigurationError(
                f"PAYCORE_DJANGO[{name!r}] holds {entry!r}, which is not an IP address or network "
                "(e.g. '203.0.113.7' or '203.0.113.0/24')"
            ) from None
    return tuple(networks)


def django_options() -> DjangoOptions:
    """``settings.PAYCORE_DJANGO``, every key read and checked; :class:`ConfigurationError` names a wrong one.

    The one reader of that setting: the flow, the views, the order helpers and
    the system checks all take their options from here.
    """
    options = _raw_options()
    unknown = sorted(str(key) for key in options if key not in OPTION_KEYS)
    if unknown:
        raise ConfigurationError(
            f"PAYCORE_DJANGO has unknown key(s) {unknown}; the known keys are {', '.join(OPTION_KEYS)}"
        )
    raw_plugins = options.get("PLUGINS", ())
    if isinstance(raw_plugins, (str, bytes)) or not isinstance(raw_plugins, (list, tuple)):
        raise ConfigurationError(
            f"PAYCORE_DJANGO['PLUGINS'] must be a list of dotted module paths, not {raw_plugins!r}"
        )
    backend = options.get("BLOCKING_BACKEND", "asyncio")
    if backend not in BLOCKING_BACKENDS:
        raise ConfigurationError(
            f"PAYCORE_DJANGO['BLOCKING_BACKEND'] must be one of {', '.join(BLOCKING_BACKENDS)}, not {backend!r}"
        )
    return DjangoOptions(
        plugins=tuple(_plugin(value, index) for index, value in enumerate(raw_plugins)),
        blocking_backend=backend,
        order_resolver=_callable(options, "ORDER_RESOLVER"),
        tenant_resolver=_callable(options, "TENANT_RESOLVER"),
        payment_metadata=_callable(options, "PAYMENT_METADATA"),
        provider_filter=_callable(options, "PROVIDER_FILTER"),
        webhook_allowed_ips=_networks(options, "WEBHOOK_ALLOWED_IPS"),
        trusted_proxies=_networks(options, "TRUSTED_PROXIES") or (),
    )


def paycore_config() -> PaycoreConfig:
    """``settings.PAYCORE`` as a :class:`PaycoreConfig`, the repository defaulting to ``"django"``.

    ``PAYCORE_*`` environment variables override it, as everywhere in paycore.
    """
    from django.conf import settings

    raw = getattr(settings, "PAYCORE", None)
    data: dict[str, Any]
    if raw is None:
        data = {}
    elif isinstance(raw, (str, os.PathLike)):
        data = read_toml(raw)
    elif isinstance(raw, Mapping):
        data = dict(raw)
    else:
        raise ConfigurationError(
            f"settings.PAYCORE must be a dict or the path of a paycore TOML file, not {type(raw).__name__}"
        )
    data.setdefault("repository", DEFAULT_REPOSITORY)
    return load_config(data)


def flow_plugins(options: DjangoOptions) -> tuple[object, ...]:
    """The plugins registered in code with the process's flow: the ``django`` adapter and ``PLUGINS``."""
    from paycore_django import plugin

    return (plugin, *options.plugins)


def _build_flow(options: DjangoOptions, config: PaycoreConfig) -> PaymentFlow:
    return PaymentFlow.from_config(config, plugins=flow_plugins(options))


@define
class _Flows:
    """The flows of one process, and the settings they are built from (read once)."""

    pid: int
    options: DjangoOptions | None = None
    """``PAYCORE_DJANGO``, read and checked on first use."""
    config: PaycoreConfig | None = None
    """``PAYCORE``, read and checked on first use."""
    by_loop: dict[object, PaymentFlow] = field(factory=dict)
    """The flow of each event loop (:func:`_running_loop`; ``None``: code outside any loop)."""
    blocking: BlockingPaymentFlow | None = None


_lock = threading.Lock()
_flows = _Flows(pid=os.getpid())


def _current() -> _Flows:
    """This process's flows; a forked child starts without its parent's."""
    global _flows
    if _flows.pid != os.getpid():
        _flows = _Flows(pid=os.getpid())
    return _flows


def _settings(current: _Flows) -> tuple[DjangoOptions, PaycoreConfig]:
    """The options and configuration ``current``'s flows are built from, read on first use (under ``_lock``)."""
    return _options(current), _config(current)


def _options(current: _Flows) -> DjangoOptions:
    if current.options is None:
        current.options = django_options()
    return current.options


def _config(current: _Flows) -> PaycoreConfig:
    if current.config is None:
        current.config = paycore_config()
    return current.config


def _running_loop() -> object | None:
    """The event loop running in this thread: an asyncio loop, a trio run's token; ``None`` outside async code."""
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        pass
    trio = sys.modules.get("trio")
    if trio is None:
        return None
    try:
        token: object = trio.lowlevel.current_trio_token()
    except RuntimeError:
        return None
    return token


def _ended(loop: object) -> bool:
    """Whether ``loop`` (of :func:`_running_loop`) is gone for good: a closed asyncio loop, a finished trio run."""
    if loop is None:
        return False
    if isinstance(loop, asyncio.AbstractEventLoop):
        return loop.is_closed()
    import trio

    try:
        cast("trio.lowlevel.TrioToken", loop).run_sync_soon(_nothing)
    except trio.RunFinishedError:
        return True
    return False


def _nothing() -> None:
    """What :func:`_ended` asks a trio run to do, to learn whether it still runs."""


def _forget_ended_loops(current: _Flows) -> None:
    """Drop the flows of loops that are gone (under ``_lock``): their providers' connections went with them."""
    for loop in [loop for loop in current.by_loop if _ended(loop)]:
        del current.by_loop[loop]
        let_go(loop)


def flow() -> PaymentFlow:
    """The :class:`PaymentFlow` of the running event loop, built from settings on its first use (for async code).

    A provider's connections (an ``httpx.AsyncClient``) belong to the event loop
    they were opened on, so each loop gets a flow of its own: one for the whole
    process under ASGI, one per request under WSGI (Django runs each async view
    on a new loop there), one per ``asyncio.run`` of a task. The settings are
    read once. A loop's flow is closed on that loop as its runner winds it down
    (``asyncio.run``, Django's ``async_to_sync``, a trio run ending:
    :mod:`paycore_django.loop_ends`), and dropped once the loop has ended, when
    another loop asks for its flow. Called outside any running
    loop, it returns the flow of code outside loops (one per process), which
    must then be used on one loop only.
    """
    loop = _running_loop()
    found = _current().by_loop.get(loop)
    if found is not None:
        return found
    with _lock:
        current = _current()
        found = current.by_loop.get(loop)
        if found is None:
            _forget_ended_loops(current)
            found = current.by_loop[loop] = _build_flow(*_settings(current))
            close_at_loop_end(loop, found)
        return found


class DjangoBlockingPaymentFlow(BlockingPaymentFlow):
    """The :class:`BlockingPaymentFlow` of :func:`blocking_flow`, aware of the caller's transactions.

    A call made from a thread inside a transaction (``transaction.atomic()``,
    ``ATOMIC_REQUESTS``) while ``payment_event`` has receivers is warned about
    once, and waits for those receivers some seconds at most instead of for as
    long as they run: one waiting for a row the caller's transaction holds would
    otherwise hang the caller for good (:mod:`paycore_django.callers`).
    """

    def around_call(self, method: Callable[..., Any]) -> Callable[..., Any]:
        """``method``, run as a call made inside the calling thread's transactions when it is in any (with
        ``payment_event`` receivers to tell): asked on the caller's thread, before every call."""
        held = caller_transaction()
        return method if held is None else held.around(method)


def blocking_flow() -> BlockingPaymentFlow:
    """The process's :class:`DjangoBlockingPaymentFlow`, opened on first use (for sync code).

    It runs its own :class:`PaymentFlow` (same configuration as :func:`flow`)
    on an event loop in a background thread, closed when the interpreter exits.
    """
    found = _current().blocking
    if found is not None:
        return found
    with _lock:
        current = _current()
        if current.blocking is None:
            options, config = _settings(current)
            blocking = DjangoBlockingPaymentFlow(_build_flow(options, config), backend=options.blocking_backend)
            blocking.open()
            _close_at_exit(blocking)
            current.blocking = blocking
        return current.blocking


def _close_at_exit(blocking: BlockingPaymentFlow) -> None:
    """Close ``blocking`` before the interpreter joins its threads (its loop thread would block exit)."""
    pid = os.getpid()

    def close() -> None:
        if os.getpid() == pid:
            blocking.close()

    register = getattr(threading, "_register_atexit", None)
    if register is None:  # pragma: no cover - every supported Python has it
        import atexit

        atexit.register(close)
    else:
        register(close)


def repository_database() -> str:
    """The database alias of the ``django`` repository ``PAYCORE`` configures (its ``using``, ``"default"``
    unless set); ``"default"`` when the repository is of another type. The admin reads payments there."""
    with _lock:
        repository = _config(_current()).repository
    if repository.type != DEFAULT_REPOSITORY:
        return "default"
    return str(repository.settings.get("using", "default"))


def reset() -> None:
    """Forget the process's flows (closing the blocking one); the next call builds them from settings."""
    global _flows
    with _lock:
        previous, _flows = _current(), _Flows(pid=os.getpid())
    if previous.blocking is not None:
        previous.blocking.close()

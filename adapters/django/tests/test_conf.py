"""``paycore_django.flow()`` (one per event loop) and ``blocking_flow()`` (one per process), from Django settings."""

from __future__ import annotations

import asyncio
import gc
import http.server
import os
import subprocess
import sys
import threading
import weakref
from collections.abc import Iterator
from typing import Any

import anyio
import httpx
import pytest
from django.http import HttpRequest, JsonResponse
from django.test import Client, override_settings
from django.urls import path

import paycore
import paycore.testing.fake
import paycore_django
from paycore.errors import ConfigurationError
from paycore.flow import PaymentFlow
from paycore.money import Money
from paycore.status import PaymentStatus
from paycore_django import conf
from paycore_django.orders import resolve_order
from paycore_django.storage import DjangoIdempotencyStore, DjangoPaymentRepository

SECRET = "whsec_conf"
FAKE = {
    "PAYCORE": {"providers": {"fake": {"type": "fake", "webhook_secret": SECRET}}},
    "PAYCORE_DJANGO": {"PLUGINS": ["paycore.testing.fake"]},
}


@pytest.fixture(autouse=True)
def _fresh_flows() -> Any:
    conf.reset()
    yield
    conf.reset()


def test_the_default_repository_and_store_are_django_on_the_default_database() -> None:
    flow = paycore_django.flow()
    assert isinstance(flow.repository, DjangoPaymentRepository)
    assert isinstance(flow.idempotency_store, DjangoIdempotencyStore)
    assert flow.repository.using == flow.idempotency_store.using == "default"


def test_every_thread_gets_the_same_flow() -> None:
    seen: list[object] = []
    threads = [threading.Thread(target=lambda: seen.append(paycore_django.flow())) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(seen) == 8
    assert all(flow is seen[0] for flow in seen)
    assert paycore_django.flow() is seen[0]


def test_a_forked_process_builds_its_own_flow(monkeypatch: pytest.MonkeyPatch) -> None:
    parent = paycore_django.flow()
    monkeypatch.setattr(os, "getpid", lambda: -1)
    child = paycore_django.flow()
    assert child is not parent
    assert paycore_django.flow() is child


def test_changing_the_settings_builds_a_new_flow() -> None:
    before = paycore_django.flow()
    with override_settings(**FAKE):
        during = paycore_django.flow()
        assert during is not before
        assert during.provider("fake").name == "fake"
    assert paycore_django.flow() is not during


@pytest.mark.django_db(transaction=True)
def test_sync_code_pays_through_the_blocking_flow() -> None:
    with override_settings(**FAKE):
        blocking = paycore_django.blocking_flow()
        assert paycore_django.blocking_flow() is blocking
        checkout = blocking.create_payment(
            amount=Money.of("2500", "XOF"), provider="fake", order_id="T3-9", idempotency_key="bk-1"
        )
        stored = blocking.get_payment(checkout.payment.id)
        assert stored.status is PaymentStatus.SUCCEEDED
        assert [p.id for p in blocking.list_payments(order_id="T3-9")] == [checkout.payment.id]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"PAYCORE": ["repository", "django"]}, r"settings.PAYCORE must be a dict or the path .* not list"),
        ({"PAYCORE": {"repository": {"type": "django", "using": "payments"}}}, r"'default', .*not 'payments'"),
        ({"PAYCORE": {"repository": {"type": "django", "url": "x"}}}, r"unknown setting\(s\) \['url'\]"),
        ({"PAYCORE": {"repository": "django", "currency": "XOF"}}, r"unknown configuration key\(s\) \['currency'\]"),
        ({"PAYCORE_DJANGO": "PLUGINS"}, r"PAYCORE_DJANGO must be a dict, not str"),
        ({"PAYCORE_DJANGO": {"PLUGINS": "paycore.testing.fake"}}, r"\['PLUGINS'\] must be a list"),
        ({"PAYCORE_DJANGO": {"PLUGINS": ["myshop.no_such_plugin"]}}, r"\['PLUGINS'\]\[0\] = 'myshop.no_such_plugin'"),
        ({"PAYCORE_DJANGO": {"BLOCKING_BACKEND": "gevent"}}, r"asyncio, trio, not 'gevent'"),
        (
            {"PAYCORE_DJANGO": {"ORDER_RESOLVE": "shop.resolve"}},
            r"unknown key\(s\) \['ORDER_RESOLVE'\]; the known keys are BLOCKING_BACKEND, ORDER_RESOLVER, ",
        ),
        ({"PAYCORE_DJANGO": {"ORDER_RESOLVER": "shop.no_such.resolve"}}, r"\['ORDER_RESOLVER'\] = 'shop.no_such"),
        ({"PAYCORE_DJANGO": {"TENANT_RESOLVER": 42}}, r"\['TENANT_RESOLVER'\] must be a callable .*not 42"),
        ({"PAYCORE_DJANGO": {"PAYMENT_METADATA": "os.sep"}}, r"\['PAYMENT_METADATA'\] must be a callable"),
        ({"PAYCORE_DJANGO": {"PROVIDER_FILTER": ["cash"]}}, r"\['PROVIDER_FILTER'\] must be a callable"),
        ({"PAYCORE_DJANGO": {"WEBHOOK_ALLOWED_IPS": "10.0.0.1"}}, r"\['WEBHOOK_ALLOWED_IPS'\] must be a list"),
        ({"PAYCORE_DJANGO": {"TRUSTED_PROXIES": ["10.0.0.0/8", "proxy"]}}, r"holds 'proxy', which is not an IP"),
    ],
)
def test_wrong_settings_are_configuration_errors_naming_the_value(overrides: dict[str, Any], message: str) -> None:
    with override_settings(**overrides), pytest.raises(ConfigurationError, match=message):
        paycore_django.flow()


def _tenant_of_request(request: object) -> str:
    return "chez-awa"


def test_every_django_option_is_read_and_checked_in_one_place() -> None:
    options = {
        "PLUGINS": ["paycore.testing.fake"],
        "BLOCKING_BACKEND": "trio",
        "ORDER_RESOLVER": "paycore_django.orders.resolve_order",
        "TENANT_RESOLVER": _tenant_of_request,
        "WEBHOOK_ALLOWED_IPS": ["203.0.113.7", "2001:db8::/32"],
        "TRUSTED_PROXIES": ["10.0.0.0/8"],
    }
    with override_settings(PAYCORE_DJANGO=options):
        read = conf.django_options()
    assert read.plugins == (paycore.testing.fake,)
    assert read.blocking_backend == "trio"
    assert read.order_resolver is resolve_order
    assert read.tenant_resolver is _tenant_of_request
    assert read.payment_metadata is None
    assert [str(network) for network in read.webhook_allowed_ips or ()] == ["203.0.113.7/32", "2001:db8::/32"]
    assert [str(network) for network in read.trusted_proxies] == ["10.0.0.0/8"]


def test_no_django_options_is_no_resolver_and_any_webhook_sender() -> None:
    with override_settings(PAYCORE_DJANGO=None):
        read = conf.django_options()
    assert (read.order_resolver, read.tenant_resolver, read.webhook_allowed_ips, read.trusted_proxies) == (
        None,
        None,
        None,
        (),
    )


def test_use_tz_off_is_refused() -> None:
    with override_settings(USE_TZ=False), pytest.raises(ConfigurationError, match="USE_TZ = True"):
        DjangoPaymentRepository()


def test_flows_outside_django_do_not_import_django() -> None:
    code = (
        "import sys; from paycore.flow import PaymentFlow; flow = PaymentFlow.from_config(None); "
        "import paycore_django.plugin; print(sorted(flow.registry.repositories), 'django' in sys.modules)"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PAYCORE_", "DJANGO_"))}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env).stdout
    repositories, imported = out.rsplit(" ", 1)
    assert "'django'" in repositories
    assert imported.strip() == "False"


def test_building_a_django_repository_without_django_set_up_says_how_to_fix_it() -> None:
    code = (
        "from paycore.flow import PaymentFlow\n"
        "try:\n    PaymentFlow.from_config({'repository': 'django'})\n"
        "except Exception as error:\n    print(type(error).__name__, error)\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PAYCORE_", "DJANGO_"))}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env).stdout
    assert out.startswith("ConfigurationError repository 'django': Django is not set up")


# -- one flow per event loop -------------------------------------------------------------------


class _Gateway(http.server.BaseHTTPRequestHandler):
    """A payment gateway that accepts every payment, and keeps the connection open (HTTP/1.1)."""

    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""


CLIENTS: list[GatewayProvider] = []
"""Every :class:`GatewayProvider` built (one per flow)."""


class GatewayProvider(paycore.testing.fake.FakeProvider):
    """The fake provider, which first tells a gateway over HTTP with one ``httpx.AsyncClient`` it keeps open,
    as the real providers do: the client's connections belong to the event loop they were opened on."""

    name = "gateway"
    settings_names = frozenset({"webhook_secret", "base_url"})

    def __init__(self, context: Any) -> None:
        super().__init__(context)
        self.client: httpx.AsyncClient | None = None
        CLIENTS.append(self)

    async def aclose(self) -> None:
        if self.client is not None:
            await self.client.aclose()
        await super().aclose()

    async def initiate(self, payment: Any) -> Any:
        if self.client is None:
            self.client = httpx.AsyncClient(base_url=str(self.settings["base_url"]))
        (await self.client.post("/payments", json={"id": payment.id})).raise_for_status()
        return await super().initiate(payment)


class GatewayPlugin:
    """Registers :class:`GatewayProvider`."""

    @staticmethod
    @paycore.hookimpl
    def paycore_register_providers(register: Any) -> None:
        register(GatewayProvider)


async def pay_order(request: HttpRequest, order_id: str) -> JsonResponse:
    """An async view of the project paying an order through ``paycore_django.flow()``."""
    checkout = await paycore_django.flow().create_payment(
        amount=Money.of("2500", "XOF"), provider="gateway", order_id=order_id
    )
    return JsonResponse({"status": checkout.payment.status.value})


async def flow_only(request: HttpRequest) -> JsonResponse:
    """An async view that only asks for the flow (what every view calling paycore does first)."""
    return JsonResponse({"flow": type(paycore_django.flow()).__name__})


urlpatterns = [path("pay/<str:order_id>/", pay_order), path("flow/", flow_only)]


@pytest.fixture
def gateway() -> Iterator[str]:
    """A gateway on a free loopback port, served by a thread; its base URL."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Gateway)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.mark.django_db(transaction=True)
def test_an_async_view_served_by_wsgi_pays_on_each_request(gateway: str) -> None:
    config = {"providers": {"gateway": {"type": "gateway", "webhook_secret": SECRET, "base_url": gateway}}}
    with override_settings(ROOT_URLCONF=__name__, PAYCORE=config, PAYCORE_DJANGO={"PLUGINS": [GatewayPlugin()]}):
        client = Client(raise_request_exception=False)  # WSGI: each request runs the view on a new event loop
        CLIENTS.clear()
        answers = [client.get(f"/pay/T{number}/") for number in range(3)]
        assert [(answer.status_code, answer.json()) for answer in answers] == [(200, {"status": "succeeded"})] * 3
        assert [p.status for p in paycore_django.blocking_flow().list_payments()] == [PaymentStatus.SUCCEEDED] * 3
        # Each request's flow was closed on its loop as the loop ended: no connection left to the collector.
        per_request = [provider for provider in CLIENTS if provider.client is not None]
        assert len(per_request) == 3
        assert all(provider.client is not None and provider.client.is_closed for provider in per_request)


@pytest.mark.django_db(transaction=True)
def test_a_flow_built_per_wsgi_request_leaves_no_database_connection_object_behind() -> None:
    """Building a loop's flow asked ``connections[alias]`` in the loop's thread: asgiref kept that connection
    object after the loop ended, one per request of an async view (about 4 KiB each, for good)."""
    from django.db.backends.base.base import BaseDatabaseWrapper

    def alive() -> int:
        gc.collect()
        return sum(issubclass(type(thing), BaseDatabaseWrapper) for thing in gc.get_objects())  # no lazy object set up

    with override_settings(ROOT_URLCONF=__name__):
        client = Client()
        assert client.get("/flow/").status_code == 200
        before = alive()
        for _ in range(30):
            assert client.get("/flow/").json() == {"flow": "PaymentFlow"}
        assert alive() <= before + 2


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_the_flow_of_an_event_loop_is_closed_on_it_as_its_runner_ends_the_loop(backend: str) -> None:
    async def on_this_loop() -> PaymentFlow:
        return paycore_django.flow()

    built = anyio.run(on_this_loop, backend=backend)
    assert built.in_flight.closed
    anyio.run(on_this_loop, backend=backend)  # another loop asks: the ended one's flow is dropped
    assert all(flow is not built for flow in conf._current().by_loop.values())


@pytest.mark.parametrize("steps", [0, 1, 5])
def test_a_task_asking_for_the_flow_as_its_loop_winds_down_gets_the_loop_s_own(
    steps: int, caplog: pytest.LogCaptureFixture
) -> None:
    """Not a second flow, built on a loop that is ending, which no one would close."""
    asked: list[PaymentFlow] = []

    async def winding_down() -> None:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            for _ in range(steps):
                await asyncio.sleep(0)
            asked.append(paycore_django.flow())
            raise

    async def serve() -> None:
        asked.append(paycore_django.flow())
        asyncio.get_running_loop().create_task(winding_down())
        await asyncio.sleep(0.01)

    asyncio.run(serve())
    first, *then = asked
    assert then == [first]
    assert first.in_flight.closed
    assert "destroyed but it is pending" not in caplog.text


def test_each_event_loop_gets_its_flow_and_that_of_a_closed_loop_is_let_go() -> None:
    async def on_this_loop() -> tuple[PaymentFlow, PaymentFlow]:
        return paycore_django.flow(), paycore_django.flow()

    first, again = asyncio.run(on_this_loop())
    assert first is again
    gone = weakref.ref(first)
    del first, again
    second, _ = asyncio.run(on_this_loop())
    gc.collect()
    assert gone() is None
    assert second is not None


def test_the_flow_of_a_loop_closed_as_it_stood_is_let_go_without_a_word(caplog: pytest.LogCaptureFixture) -> None:
    """A runner that closes its loop without winding it down (``run_until_complete``, then ``close``) leaves the
    closing task pending: neither it nor the flow may outlive the loop, and asyncio must not call it destroyed."""

    async def on_this_loop() -> PaymentFlow:
        return paycore_django.flow()

    for _ in range(3):
        loop = asyncio.new_event_loop()
        gone = weakref.ref(loop.run_until_complete(on_this_loop()))
        loop.close()
    asyncio.run(on_this_loop())  # a new loop asks: those of the closed ones are let go
    gc.collect()
    assert gone() is None
    assert "destroyed but it is pending" not in caplog.text


class Unlistable:
    """A lazy object whose setup fails when its attributes are listed."""

    def __dir__(self) -> list[str]:
        raise RuntimeError("lazy plugin setup failed: settings not configured")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"PLUGINS": ["paycore.testing.fake", ""]}, r"\['PLUGINS'\]\[1\] = '' is not a dotted path"),
        ({"PLUGINS": [".relative"]}, r"\['PLUGINS'\]\[0\] = '.relative' is not a dotted path"),
        ({"ORDER_RESOLVER": ".x.y"}, r"\['ORDER_RESOLVER'\] = '.x.y' is not a dotted path"),
        ({"TENANT_RESOLVER": "shop..tenant"}, r"\['TENANT_RESOLVER'\] = 'shop..tenant' is not a dotted path"),
        ({"PLUGINS": ["paycore.testing.fake", None]}, r"\['PLUGINS'\]\[1\] = None is neither"),
        ({"PLUGINS": [3]}, r"\['PLUGINS'\]\[0\] = 3 is neither"),
        ({"PLUGINS": [("paycore.testing.fake",)]}, r"\['PLUGINS'\]\[0\] = \('paycore.testing.fake',\) is neither"),
        ({"PLUGINS": [{"myshop": "plugin"}]}, r"\['PLUGINS'\]\[0\] = \{'myshop': 'plugin'\} is neither"),
        ({"PLUGINS": [object()]}, r"\['PLUGINS'\]\[0\] = .* is neither"),
        ({"PLUGINS": ["decimal"]}, r"\['PLUGINS'\]\[0\] = 'decimal' names .* which implements no paycore hook"),
        ({"PLUGINS": ["decimal.Decimal"]}, r"\['PLUGINS'\]\[0\] = 'decimal.Decimal' names .* implements no paycore"),
        ({"PLUGINS": [dict]}, r"\['PLUGINS'\]\[0\] = .* is neither"),
        ({"PLUGINS": [Unlistable()]}, r"\['PLUGINS'\]\[0\] cannot be read as a plugin: .* settings not configured"),
    ],
)
def test_a_setting_that_is_no_dotted_path_is_a_configuration_error(options: dict[str, Any], message: str) -> None:
    # These were a raw ValueError or TypeError from importlib.
    with override_settings(PAYCORE_DJANGO=options), pytest.raises(ConfigurationError, match=message):
        paycore_django.flow()


@pytest.mark.parametrize(
    ("setting", "value", "named"),
    [
        ("PLUGINS", ["paycore_boom_at_import"], r"\['PLUGINS'\]\[0\] = 'paycore_boom_at_import'"),
        ("PLUGINS", ["paycore_boom_at_import.plugin"], r"\['PLUGINS'\]\[0\] = 'paycore_boom_at_import.plugin'"),
        (
            "ORDER_RESOLVER",
            "paycore_boom_at_import.resolve",
            r"\['ORDER_RESOLVER'\] = 'paycore_boom_at_import.resolve'",
        ),
    ],
)
def test_a_module_that_raises_while_imported_is_a_configuration_error_naming_the_setting(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch, setting: str, value: object, named: str
) -> None:
    (tmp_path / "paycore_boom_at_import.py").write_text("raise RuntimeError('boom at import')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with (
        override_settings(PAYCORE_DJANGO={setting: value}),
        pytest.raises(ConfigurationError, match=rf"{named} cannot be imported: importing it raised RuntimeError: boom"),
    ):
        paycore_django.flow()

"""``paycore.asgi``: the framework-free webhook endpoint and what it answers when."""

from __future__ import annotations

import contextlib
import json
import logging
import socket
from collections.abc import AsyncIterator, Callable
from functools import partial
from typing import Any

import anyio
import httpx
import pytest
import sniffio

from paycore import Money, hookimpl
from paycore.asgi import create_app
from paycore.errors import StorageUnavailable
from paycore.flow import PaymentFlow
from paycore.hookspecs import AdapterContext, RepositoryRegistrar
from paycore.records import Payment
from paycore.status import Outcome, PaymentStatus
from paycore.testing.fake import FakeProvider
from paycore_memory import MemoryRepository

pytestmark = pytest.mark.anyio

SECRET = "whsec-test"


class SwitchableRepository(MemoryRepository):
    """The memory repository, with a switch that makes it fail like a database that went away."""

    def __init__(self) -> None:
        super().__init__()
        self.failure: Exception | None = None
        self.closed = False

    def _check(self) -> None:
        if self.failure is not None:
            raise self.failure

    async def get(self, payment_id: str) -> Payment:
        self._check()
        return await super().get(payment_id)

    async def save(self, *args: Any, **kwargs: Any) -> Any:
        self._check()
        return await super().save(*args, **kwargs)

    async def update(self, *args: Any, **kwargs: Any) -> Any:
        self._check()
        return await super().update(*args, **kwargs)

    async def aclose(self) -> None:
        self.closed = True
        await super().aclose()


class SwitchablePlugin:
    """Registers repository type ``switchable`` and remembers the instance it built."""

    def __init__(self) -> None:
        self.built: SwitchableRepository | None = None

    @hookimpl
    def paycore_register_repositories(self, register: RepositoryRegistrar) -> None:
        def build(context: AdapterContext) -> SwitchableRepository:
            self.built = SwitchableRepository()
            return self.built

        register("switchable", build)


@pytest.fixture
def storage() -> SwitchablePlugin:
    return SwitchablePlugin()


@pytest.fixture
async def flow(make_flow: Callable[..., PaymentFlow], storage: SwitchablePlugin) -> AsyncIterator[PaymentFlow]:
    """A flow with ``fake`` enabled without a tenant and for tenant ``chez-awa``, on switchable storage."""
    fake = {"type": "fake", "webhook_secret": SECRET}
    config = {
        "repository": "switchable",
        "idempotency": "memory",
        "providers": {"fake": fake},
        "tenants": {"chez-awa": {"providers": {"fake": fake}}},
    }
    async with make_flow(config, plugins=(storage,)) as opened:
        yield opened


@pytest.fixture
def repository(storage: SwitchablePlugin, flow: PaymentFlow) -> SwitchableRepository:
    assert storage.built is not None
    return storage.built


@pytest.fixture
async def client(flow: PaymentFlow) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client posting to ``create_app(flow)`` in the same process."""
    transport = httpx.ASGITransport(app=create_app(flow, manage_flow=False))
    async with httpx.AsyncClient(transport=transport, base_url="http://shop.test") as http:
        yield http


async def waiting_payment(flow: PaymentFlow, tenant: str | None = None) -> tuple[Payment, FakeProvider]:
    """A payment awaiting the customer at the fake provider."""
    fake = flow.provider("fake", tenant=tenant)
    assert isinstance(fake, FakeProvider)
    fake.script("initiate", "pending")
    checkout = await flow.create_payment(
        amount=Money.of("5000", "XOF"), provider="fake", order_id="T12-0042", tenant=tenant
    )
    fake.settle(checkout.payment.id, Outcome.SUCCEEDED)
    return checkout.payment, fake


async def test_a_signed_webhook_is_answered_200_once_committed(flow: PaymentFlow, client: httpx.AsyncClient) -> None:
    payment, fake = await waiting_payment(flow)
    body, headers = fake.webhook(payment.id)
    response = await client.post("/fake", content=body, headers=headers)
    assert response.status_code == 200
    assert response.json() == {"received": True, "payments": [payment.id]}
    assert (await flow.get_payment(payment.id)).status is PaymentStatus.SUCCEEDED


async def test_a_tenant_path_reaches_the_tenants_provider(flow: PaymentFlow, client: httpx.AsyncClient) -> None:
    payment, fake = await waiting_payment(flow, tenant="chez-awa")
    body, headers = fake.webhook(payment.id)
    response = await client.post("/chez-awa/fake", content=body, headers=headers)
    assert response.status_code == 200
    assert (await flow.get_payment(payment.id)).status is PaymentStatus.SUCCEEDED


@pytest.mark.parametrize("tenant", ["le baobab", "a?b", "a#b", "%2F", "café"])
async def test_a_webhook_reaches_a_tenant_named_with_what_a_url_escapes_at_the_url_its_provider_was_given(
    make_flow: Callable[..., PaymentFlow], tenant: str
) -> None:
    fake = {"type": "fake", "webhook_secret": SECRET}
    config = {"webhook_url": "https://pos.example/hooks", "tenants": {tenant: {"providers": {"fake": fake}}}}
    async with make_flow(config) as flow:
        payment, provider = await waiting_payment(flow, tenant=tenant)
        given = httpx.URL(provider.context.webhook_url or "")
        assert given.host == "pos.example"
        body, headers = provider.webhook(payment.id)
        app = create_app(flow, prefix="/hooks", manage_flow=False)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://pos.example") as http:
            response = await http.post(given.raw_path.decode(), content=body, headers=headers)
        assert response.status_code == 200, response.text
        assert (await flow.get_payment(payment.id, tenant=tenant)).status is PaymentStatus.SUCCEEDED


async def test_a_tenants_payment_is_not_found_on_another_tenants_path(
    flow: PaymentFlow, client: httpx.AsyncClient
) -> None:
    payment, fake = await waiting_payment(flow, tenant="chez-awa")
    body, headers = fake.webhook(payment.id)
    response = await client.post("/fake", content=body, headers=headers)
    assert response.status_code == 404
    assert (await flow.get_payment(payment.id)).status is PaymentStatus.PROCESSING


async def test_a_bad_signature_is_answered_401_and_changes_nothing(
    flow: PaymentFlow, client: httpx.AsyncClient
) -> None:
    payment, fake = await waiting_payment(flow)
    body, headers = fake.webhook(payment.id, secret="not-the-secret")
    response = await client.post("/fake", content=body, headers=headers)
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_signature"
    after = await flow.get_payment(payment.id)
    assert (after.status, after.version) == (PaymentStatus.PROCESSING, payment.version)


async def test_a_signed_but_unreadable_body_is_answered_400(flow: PaymentFlow, client: httpx.AsyncClient) -> None:
    from paycore.testing.fake import SIGNATURE_HEADER, sign

    body = b"{not json"
    response = await client.post("/fake", content=body, headers={SIGNATURE_HEADER: sign(body, SECRET)})
    assert response.status_code == 400
    assert response.json()["error"] == "malformed_webhook"


async def test_an_unknown_provider_is_answered_404(client: httpx.AsyncClient) -> None:
    response = await client.post("/nope", content=b"{}")
    assert response.status_code == 404
    assert "'nope'" in response.json()["detail"]


async def test_an_event_for_an_unknown_payment_is_answered_404(flow: PaymentFlow, client: httpx.AsyncClient) -> None:
    from paycore.testing.fake import SIGNATURE_HEADER, sign

    report = {"id": "evt_1", "payment_id": "pay_missing", "outcome": "succeeded", "captured": [5000, "XOF"]}
    body = json.dumps(report).encode()
    response = await client.post("/fake", content=body, headers={SIGNATURE_HEADER: sign(body, SECRET)})
    assert response.status_code == 404


async def test_a_signed_event_of_money_without_its_amount_is_answered_400(
    flow: PaymentFlow, client: httpx.AsyncClient
) -> None:
    from paycore.testing.fake import SIGNATURE_HEADER, sign

    for captured in (None, [0, "XOF"]):
        report = {"id": "evt_2", "payment_id": "pay_missing", "outcome": "succeeded", "captured": captured}
        body = json.dumps(report).encode()
        response = await client.post("/fake", content=body, headers={SIGNATURE_HEADER: sign(body, SECRET)})
        assert response.status_code == 400, response.text
        assert response.json()["error"] == "malformed_webhook"


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH", "OPTIONS"])
async def test_only_post_is_accepted_and_the_refusal_names_it(client: httpx.AsyncClient, method: str) -> None:
    response = await client.request(method, "/fake")
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    assert response.json()["error"] == "method_not_allowed"


async def test_a_head_request_gets_the_headers_without_a_body(client: httpx.AsyncClient) -> None:
    response = await client.head("/fake")
    assert (response.status_code, response.headers["allow"], response.content) == (405, "POST", b"")


@pytest.mark.parametrize("path", ["/", "/a/b/c"])
async def test_paths_other_than_provider_or_tenant_and_provider_are_404(client: httpx.AsyncClient, path: str) -> None:
    assert (await client.post(path, content=b"{}")).status_code == 404


@pytest.mark.parametrize(("method", "path", "status"), [("POST", "/a/b/c", 404), ("GET", "/fake", 405)])
async def test_a_delivery_the_door_refuses_is_logged_naming_its_path(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture, method: str, path: str, status: int
) -> None:
    caplog.set_level(logging.INFO, logger="paycore.asgi")
    response = await client.request(method, path, content=b"{}")
    assert response.status_code == status
    (record,) = [r for r in caplog.records if r.name == "paycore.asgi"]
    assert (record.levelno, record.getMessage().split(" refused: ")[0]) == (logging.INFO, f"webhook {path!r}")


async def test_a_body_above_the_limit_is_answered_413(flow: PaymentFlow) -> None:
    transport = httpx.ASGITransport(app=create_app(flow, manage_flow=False, max_body_bytes=10))
    async with httpx.AsyncClient(transport=transport, base_url="http://shop.test") as http:
        response = await http.post("/fake", content=b"x" * 11)
    assert response.status_code == 413


async def test_storage_down_is_answered_503_so_the_sender_retries_and_the_retry_lands(
    flow: PaymentFlow, client: httpx.AsyncClient, repository: SwitchableRepository
) -> None:
    payment, fake = await waiting_payment(flow)
    body, headers = fake.webhook(payment.id)
    repository.failure = StorageUnavailable("connection refused by the database at 10.0.0.5")
    refused = await client.post("/fake", content=body, headers=headers)
    assert refused.status_code == 503
    assert refused.headers["retry-after"] == "1"
    assert "10.0.0.5" not in refused.text
    repository.failure = None
    assert (await flow.get_payment(payment.id)).status is PaymentStatus.PROCESSING
    retried = await client.post("/fake", content=body, headers=headers)
    assert retried.status_code == 200
    assert (await flow.get_payment(payment.id)).status is PaymentStatus.SUCCEEDED


async def test_a_503_logged_for_a_path_holding_a_line_break_forges_no_line(
    flow: PaymentFlow, client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    await flow.aclose()  # shutting down: every delivery is answered 503, whatever its path
    response = await client.post("/fake%0ACRITICAL paycore refund approved", content=b"{}")
    assert response.status_code == 503
    (logged,) = [record.getMessage() for record in caplog.records if record.name == "paycore.asgi"]
    assert logged == "webhook '/fake\\nCRITICAL paycore refund approved' answered 503: FlowClosed"


async def test_an_unexpected_error_is_answered_500_without_details(
    flow: PaymentFlow, client: httpx.AsyncClient, repository: SwitchableRepository
) -> None:
    payment, fake = await waiting_payment(flow)
    body, headers = fake.webhook(payment.id)
    repository.failure = RuntimeError("password=hunter2 in the DSN")
    response = await client.post("/fake", content=body, headers=headers)
    assert response.status_code == 500
    assert "hunter2" not in response.text
    assert response.json()["error"] == "internal_error"


async def test_a_repeated_delivery_is_answered_200_and_changes_nothing_more(
    flow: PaymentFlow, client: httpx.AsyncClient
) -> None:
    payment, fake = await waiting_payment(flow)
    body, headers = fake.webhook(payment.id, event_id="evt_once")
    await client.post("/fake", content=body, headers=headers)
    events_before = len(await flow.list_events(payment.id))
    again = await client.post("/fake", content=body, headers=headers)
    assert again.status_code == 200
    assert len(await flow.list_events(payment.id)) == events_before


async def test_a_prefix_is_honoured(flow: PaymentFlow) -> None:
    payment, fake = await waiting_payment(flow)
    body, headers = fake.webhook(payment.id)
    transport = httpx.ASGITransport(app=create_app(flow, prefix="/webhooks/", manage_flow=False))
    async with httpx.AsyncClient(transport=transport, base_url="http://shop.test") as http:
        assert (await http.post("/fake", content=body, headers=headers)).status_code == 404
        assert (await http.post("/webhooks/fake", content=body, headers=headers)).status_code == 200


async def test_a_mount_point_given_as_root_path_is_stripped_like_a_framework_mount(flow: PaymentFlow) -> None:
    payment, fake = await waiting_payment(flow)
    body, headers = fake.webhook(payment.id)
    transport = httpx.ASGITransport(app=create_app(flow, manage_flow=False), root_path="/payments/hooks")
    async with httpx.AsyncClient(transport=transport, base_url="http://shop.test") as http:
        response = await http.post("/payments/hooks/fake", content=body, headers=headers)
    assert response.status_code == 200


async def test_the_lifespan_opens_the_flow_and_closes_it_on_shutdown(
    make_flow: Callable[..., PaymentFlow], storage: SwitchablePlugin
) -> None:
    flow = make_flow({"repository": "switchable", "idempotency": "memory"}, plugins=(storage,))
    app = create_app(flow)
    to_app, app_receives = anyio.create_memory_object_stream[dict[str, Any]](2)
    app_sends, from_app = anyio.create_memory_object_stream[dict[str, Any]](2)
    async with anyio.create_task_group() as task_group:
        task_group.start_soon(app, {"type": "lifespan"}, app_receives.receive, app_sends.send)
        await to_app.send({"type": "lifespan.startup"})
        assert (await from_app.receive())["type"] == "lifespan.startup.complete"
        assert storage.built is not None
        assert not storage.built.closed
        await to_app.send({"type": "lifespan.shutdown"})
        assert (await from_app.receive())["type"] == "lifespan.shutdown.complete"
    assert storage.built.closed


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.asynccontextmanager
async def _served(app: Any, port: int, **uvicorn_options: Any) -> AsyncIterator[None]:
    """``app`` served on ``127.0.0.1:port`` for the while: by hypercorn under trio, by uvicorn under asyncio."""
    async with anyio.create_task_group() as task_group:
        if sniffio.current_async_library() == "trio":
            from hypercorn.config import Config
            from hypercorn.trio import serve

            config = Config()
            config.bind = [f"127.0.0.1:{port}"]
            config.loglevel = "WARNING"
            stop = anyio.Event()
            await task_group.start(partial(serve, app, config, shutdown_trigger=stop.wait))
            try:
                yield
            finally:
                stop.set()
        else:
            import uvicorn

            options = {"host": "127.0.0.1", "port": port, "log_level": "warning", **uvicorn_options}
            server = uvicorn.Server(uvicorn.Config(app, **options))
            task_group.start_soon(server.serve)
            with anyio.fail_after(10):
                while not server.started:  # noqa: ASYNC110 - uvicorn offers no event to wait on
                    await anyio.sleep(0.01)
            try:
                yield
            finally:
                server.should_exit = True


async def test_a_real_server_hosts_the_app_uvicorn_under_asyncio_hypercorn_under_trio(
    make_flow: Callable[..., PaymentFlow],
) -> None:
    flow = make_flow({"providers": {"fake": {"type": "fake", "webhook_secret": SECRET}}})
    port = _free_port()
    async with _served(create_app(flow), port):
        payment, fake = await waiting_payment(flow)
        body, headers = fake.webhook(payment.id)
        async with httpx.AsyncClient() as http:
            response = await http.post(f"http://127.0.0.1:{port}/fake", content=body, headers=headers)
        assert response.status_code == 200
        assert (await flow.get_payment(payment.id)).status is PaymentStatus.SUCCEEDED


async def _drive(app: Any, scope: dict[str, Any], messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Run ``app`` on ``scope``, receiving ``messages`` (then nothing: waiting past them fails the test);
    what it sent."""
    received, sent = iter(messages), []

    async def receive() -> dict[str, Any]:
        try:
            return next(received)
        except StopIteration:
            raise AssertionError("the app waited for another message") from None

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    with anyio.fail_after(5):
        await app(scope, receive, send)
    return sent


WEBSOCKET = {"type": "websocket", "path": "/fake", "root_path": "", "headers": [], "subprotocols": []}


async def test_a_websocket_upgrade_is_refused_by_closing_it_before_it_is_accepted(flow: PaymentFlow) -> None:
    sent = await _drive(create_app(flow, manage_flow=False), WEBSOCKET, [{"type": "websocket.connect"}])
    assert sent == [{"type": "websocket.close"}]  # servers answer 403, where a silent return is their 500


async def test_a_websocket_whose_client_left_before_connecting_is_sent_nothing(flow: PaymentFlow) -> None:
    left = {"type": "websocket.disconnect", "code": 1006}
    assert await _drive(create_app(flow, manage_flow=False), WEBSOCKET, [left]) == []


async def test_a_connection_of_a_type_not_served_ends_at_once(flow: PaymentFlow) -> None:
    assert await _drive(create_app(flow, manage_flow=False), {"type": "webtransport", "path": "/fake"}, []) == []


async def test_a_failed_close_at_shutdown_is_told_to_the_server_and_every_other_part_is_closed(
    make_flow: Callable[..., PaymentFlow], storage: SwitchablePlugin, caplog: pytest.LogCaptureFixture
) -> None:
    fake = {"type": "fake", "webhook_secret": SECRET}
    flow = make_flow(
        {"repository": "switchable", "idempotency": "memory", "providers": {"fake": fake}}, plugins=(storage,)
    )

    async def fail() -> None:
        raise RuntimeError("the provider's HTTP client would not close")

    flow.provider("fake").aclose = fail  # type: ignore[method-assign]
    sent = await _drive(
        create_app(flow), {"type": "lifespan"}, [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
    )
    assert sent == [
        {"type": "lifespan.startup.complete"},
        {"type": "lifespan.shutdown.failed", "message": "RuntimeError: the provider's HTTP client would not close"},
    ]
    assert storage.built is not None
    assert storage.built.closed
    (logged,) = [record for record in caplog.records if record.name == "paycore.asgi"]
    assert (logged.levelno, logged.getMessage()) == (logging.ERROR, "could not close the payment flow")


class _Errors(logging.Handler):
    """Keeps the messages logged at ERROR or above."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


UPGRADE = (
    b"GET /fake HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)


async def test_a_real_server_answers_a_websocket_upgrade_403_and_logs_no_error(
    make_flow: Callable[..., PaymentFlow],
) -> None:
    flow = make_flow({"providers": {"fake": {"type": "fake", "webhook_secret": SECRET}}})
    port, errors = _free_port(), _Errors()
    loggers = [logging.getLogger(name) for name in ("uvicorn.error", "hypercorn.error", "paycore")]
    for logger in loggers:
        logger.addHandler(errors)
    try:
        async with _served(create_app(flow), port, ws="wsproto"):
            answer = b""
            with anyio.fail_after(10):
                async with await anyio.connect_tcp("127.0.0.1", port) as connection:
                    await connection.send(UPGRADE)
                    while b"\r\n" not in answer:
                        answer += await connection.receive()
    finally:
        for logger in loggers:
            logger.removeHandler(errors)
    assert answer.split(b"\r\n")[0].split(b" ")[:2] == [b"HTTP/1.1", b"403"]
    assert errors.messages == []

"""What the Django admin's tests share: the flow the admin serves, clients, payments to act on, and the
changelist's actions posted as an operator's browser posts them.

``test_web_admin.py``, ``test_admin_audit_log.py`` and ``test_admin_resolve_payment.py`` import it as a
top-level module (``from admin_testing import ...``), as the others import ``paycore_django_test_databases``:
conftest.py puts this folder on ``sys.path`` when it configures Django. It is no test module, so under
``--import-mode=importlib`` it is loaded once, where a test module imported by another is loaded twice.

Its two fixtures, :func:`flow_on_each_backend` and :func:`superuser_client`, are used by assigning them to a
test module's own names (``flow = admin_testing.flow_on_each_backend``): pytest registers a fixture under the
name it has in the module.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from html.parser import HTMLParser
from typing import Any, Final

import pytest
from django.contrib.admin.utils import quote
from django.contrib.auth.models import Permission, User
from django.contrib.contenttypes.models import ContentType
from django.test import Client

import paycore.testing.fake
import paycore_django
from paycore.blocking import BlockingPaymentFlow
from paycore.money import Money
from paycore.status import FraudStatus, RefundStatus
from paycore_django.models import Payment as PaymentRow

SECRET: Final = "whsec_fake_0123456789abcdef"
"""The fake provider's webhook secret in :data:`CONFIG`."""

CONFIG: Final[dict[str, Any]] = {
    "repository": "django",
    "idempotency": "django",
    "providers": {"fake": {"type": "fake", "webhook_secret": SECRET}},
}
"""paycore's configuration in these tests: the Django ORM's repository and idempotency store, a fake provider."""

CHANGELIST: Final = "/admin/paycore_django/payment/"
"""The admin's list of payments, where its actions are posted."""

BACKENDS: Final = ("asyncio", "trio")
"""The event loops a blocking flow's portal runs on, each a param of :func:`flow_on_each_backend`."""

XOF_8000: Final = Money.of("8000", "XOF")
"""What a customer sent of a 10 000 XOF bill, in the tests of an underpaid payment."""


def page_of(payment_id: str, view: str = "change") -> str:
    """The admin URL of a payment's ``view`` page: its id quoted as the admin quotes it (``_`` is its escape)."""
    return f"{CHANGELIST}{quote(payment_id)}/{view}/"


@contextmanager
def served_flow(monkeypatch: pytest.MonkeyPatch, backend: str = "asyncio") -> Iterator[BlockingPaymentFlow]:
    """A blocking flow on the Django ORM, its portal on ``backend``, served as the process's flow to the admin
    for the while; closed after."""
    blocking = BlockingPaymentFlow.from_config(CONFIG, plugins=[paycore.testing.fake], backend=backend).open()
    monkeypatch.setattr(paycore_django, "blocking_flow", lambda: blocking)
    monkeypatch.setattr(paycore_django, "flow", lambda: blocking.flow)
    try:
        yield blocking
    finally:
        blocking.close()


@pytest.fixture(params=BACKENDS)
def flow_on_each_backend(
    transactional_db: None, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> Iterator[BlockingPaymentFlow]:
    """A blocking flow on the Django ORM, its portal on asyncio or trio, served as the process's flow to the admin."""
    with served_flow(monkeypatch, request.param) as blocking:
        yield blocking


@pytest.fixture
def superuser_client(flow: BlockingPaymentFlow) -> Client:
    """A client logged in as ``boss``, a superuser, once the test module's ``flow`` is served."""
    client = Client()
    client.force_login(User.objects.create_superuser("boss", "boss@example.com", "pw"))
    return client


def staff_client(*codenames: str) -> Client:
    """A client logged in as ``clerk``, a staff user who may view payments and has the permissions ``codenames``."""
    user = User.objects.create_user("clerk", "clerk@example.com", "pw", is_staff=True)
    content_type = ContentType.objects.get_for_model(PaymentRow)
    for codename in ("view_payment", *codenames):
        user.user_permissions.add(Permission.objects.get(codename=codename, content_type=content_type))
    client = Client()
    client.force_login(user)
    return client


def fake(flow: BlockingPaymentFlow) -> paycore.testing.fake.FakeProvider:
    """The flow's fake provider, to script its answers and settle its payments."""
    provider = flow.flow.provider("fake")
    assert isinstance(provider, paycore.testing.fake.FakeProvider)
    return provider


def paid(flow: BlockingPaymentFlow, *, capture: bool = True) -> str:
    """A 12 500 XOF payment of order T4-17, captured (or only authorized, ``capture=False``); its id."""
    checkout = flow.create_payment(amount=Money.of("12500", "XOF"), provider="fake", order_id="T4-17", capture=capture)
    return checkout.payment.id


def paid_in_eur(flow: BlockingPaymentFlow) -> str:
    """A 3 000.00 EUR payment, captured; its id."""
    return flow.create_payment(amount=Money.of("3000.00", "EUR"), provider="fake", order_id="web-9").payment.id


def flagged(flow: BlockingPaymentFlow) -> str:
    """A payment as :func:`paid` makes, then flagged for review (fraud status ``review``); its id."""
    payment_id = paid(flow)
    flow.set_fraud_status(payment_id, FraudStatus.REVIEW)
    return payment_id


def pending_refund(flow: BlockingPaymentFlow, payment_id: str, amount: str = "2500") -> str:
    """A refund of ``amount`` XOF the provider accepted as pending: its outcome awaits a report."""
    fake(flow).script("refund", "pending")
    refund = flow.refund(payment_id, amount=Money.of(amount, "XOF"))
    assert refund.status is RefundStatus.PENDING
    return refund.id


def act(client: Client, action: str, *ids: str, **extra: str) -> Any:
    """Post ``action`` on the payments ``ids`` from the changelist, with the fields ``extra``; the page it ends on."""
    return client.post(CHANGELIST, {"action": action, "_selected_action": list(ids), **extra}, follow=True)


def action_names(client: Client) -> set[str]:
    """The actions the changelist offers to ``client``'s user."""
    page = client.get(CHANGELIST)
    assert page.status_code == 200
    form = page.context["action_form"]
    return {name for name, _ in form.fields["action"].choices if name}


def told(response: Any) -> list[tuple[int, str]]:
    """The messages the admin showed after an action, with their levels, as the page shows them to the operator
    (the admin's template writes each with its first letter made a capital)."""
    sent = [(message.level, str(message)) for message in response.context["messages"]]
    page = _MessageList()
    page.feed(response.content.decode())
    assert len(page.shown) == len(sent), f"the page shows {page.shown}, the action sent {sent}"
    return [(level, text) for (level, _), text in zip(sent, page.shown, strict=True)]


class _MessageList(HTMLParser):
    """The texts of the admin page's message list, in order."""

    def __init__(self) -> None:
        super().__init__()
        self.shown: list[str] = []
        self._depth = 0  # inside the message list: how many of its elements are open

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self._depth:
            self._depth += 1
            if tag == "li" and self._depth == 2:
                self.shown.append("")
        elif tag == "ul" and "messagelist" in (dict(attrs).get("class") or "").split():
            self._depth = 1

    def handle_endtag(self, tag: str) -> None:
        if self._depth:
            self._depth -= 1

    def handle_data(self, data: str) -> None:
        if self._depth >= 2 and self.shown:
            self.shown[-1] += data


class _HiddenInputs(HTMLParser):
    """The hidden inputs of a page's forms, as a browser posts them back."""

    def __init__(self) -> None:
        super().__init__()
        self.fields: list[tuple[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "input" and found.get("type") == "hidden" and found.get("name"):
            self.fields.append((str(found["name"]), found.get("value") or ""))


def hidden_fields(page: Any) -> list[tuple[str, str]]:
    """The names and values of the hidden inputs of ``page``'s forms, in order, as a browser posts them back."""
    parser = _HiddenInputs()
    parser.feed(page.content.decode())
    return parser.fields


def confirm(client: Client, page: Any, url: str, **form: str) -> Any:
    """Fill ``form`` into the confirmation ``page`` and apply it, as the operator's browser does."""
    assert page.status_code == 200
    data: dict[str, list[str]] = {}
    for name, value in hidden_fields(page):
        data.setdefault(name, []).append(value)
    return client.post(url, {**data, **form}, follow=True)


def select_all(client: Client, action: str, shown: str, url: str = CHANGELIST) -> Any:
    """Tick ``shown``, then "select all N payments" (``select_across``), and run ``action``: its confirmation page."""
    return client.post(url, {"action": action, "select_across": "1", "_selected_action": [shown], "index": "0"})

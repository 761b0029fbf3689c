"""The peer: getpaid-core's signed payment lifecycle, driven the way ``benchmarks/bench.py`` drives paycore's.

getpaid-core (``pip install -r benchmarks/requirements.txt``: version 3.2 or
later, Python 3.12 or later) is the framework-agnostic core of django-getpaid.
When ``getpaid_core`` 3.x imports, :func:`unavailable` returns ``None`` and
``bench.py`` times :func:`lifecycles` against paycore's memory lifecycle,
round by round; otherwise the table's peer rows say why it is not installed.

The lifecycle, on getpaid-core's released ``PaymentFlow``
(``src/getpaid_core/flow.py``) over an in-memory repository:

1. ``create_payment(order, backend_slug)``: the flow checks the backend is
   registered and asks the repository to ``create`` the payment;
2. ``prepare(payment)``: the backend's ``prepare_transaction`` (the dummy
   backend: a redirect URL), the ``PREPARED`` transition, ``save``;
3. a *paid* callback: its JSON body is signed with HMAC-SHA256 (what the
   provider does, inside the timed loop as paycore's ``FakeProvider`` signs
   its webhooks), parsed, the payment loaded by id, and
   ``handle_callback(payment, data, headers, raw_body=body)``:
   ``verify_callback`` checks the signature over the raw body in constant
   time, ``handle_callback`` maps it to ``PAYMENT_CAPTURED`` with a provider
   event id (getpaid's replay dedupe), ``save``;
4. ``start_refund(payment, amount=15.00)``: a partial refund the dummy backend
   accepts, ``REFUND_STARTED``, ``save``;
5. a signed *refund confirmed* callback, as in 3 (``REFUND_CONFIRMED``).

What this assumes of getpaid-core's API, read from its source (paths in
``django-getpaid/python-getpaid-core``):

* ``flow.PaymentFlow(repository, config=..., registry=...)``; ``create_payment(order,
  backend_slug, **kwargs)`` calls ``repository.create(order=, backend=,
  amount_required=, currency=, description=, provider_data=)``; ``prepare``,
  ``handle_callback(payment, data, headers, **kwargs)`` (the keyword
  arguments reach the processor's ``verify_callback`` and
  ``handle_callback``), ``start_refund(payment, amount)``
  (``src/getpaid_core/flow.py``, ``PaymentFlow``);
* ``processor.BaseProcessor(payment, config)`` with ``get_setting``;
  ``verify_callback(data, headers, **kwargs)`` raising
  ``exceptions.InvalidCallbackError`` (``src/getpaid_core/processor.py``,
  ``src/getpaid_core/exceptions.py``);
* ``backends.dummy.DummyProcessor``: its ``verify_callback`` is a documented
  no-op, so a subclass here (slug ``paycore-bench-signed``) verifies the
  signature; its ``handle_callback`` maps ``{"event": "payment_confirmed",
  "paid_amount", "event_id"}`` and ``{"event": "refund_confirmed",
  "refunded_amount", "event_id"}``; its ``start_refund`` accepts any amount
  (``src/getpaid_core/backends/dummy.py``);
* ``registry.PluginRegistry()`` with ``register(processor_class)`` and
  ``get_by_slug`` (``src/getpaid_core/registry.py``);
* the ``protocols.PaymentRepository`` and ``protocols.Payment`` / ``Order``
  shapes (``src/getpaid_core/protocols.py``), ``enums.PaymentStatus.NEW``
  and ``enums.FraudStatus.UNKNOWN`` (``src/getpaid_core/enums.py``).

The repository: getpaid-core ships no in-memory repository for its released
``PaymentFlow``; its only one, ``durable.InMemoryDurableRepository``, serves
``durable.DurablePaymentFlow``, which creates no payments (facts are seeded
into its constructor) and whose dispatch (``execute_operation``) the project
documents as its next, unreleased major. So :class:`DictRepository` is the
repository getpaid-core's own tests and benchmarks use (``tests/conftest.py``,
``MockRepository``): a dictionary of payment objects. It does less than
paycore's (no version check, no event records, no idempotency keys on create
and refund: getpaid's released flow has none), which makes the ratio a
conservative one for paycore.

This driver could not be run where it was written (getpaid-core 3.x needs
Python 3.12 and was not on the package mirror): ``bench.py`` reports any
exception from it as "peer failed: <error>" instead of stopping.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import sys
import time
from decimal import Decimal
from functools import cache
from importlib import metadata
from typing import Any

SLUG = "paycore-bench-signed"
SECRET = "whsec-bench"
SIGNATURE_HEADER = "x-bench-signature"
AMOUNT = Decimal("50.00")
REFUND = Decimal("15.00")
CURRENCY = "PLN"
IMPORT_STATEMENT = "import getpaid_core"
"""What ``bench.py`` times in a fresh interpreter, beside ``from paycore import PaymentFlow``."""
DISTRIBUTIONS = ("getpaid-core", "python-getpaid-core")
"""The names getpaid-core has been published under."""


def version() -> str | None:
    """The installed getpaid-core's version (its distribution's, else ``getpaid_core.__version__``), or ``None``."""
    for name in DISTRIBUTIONS:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    try:
        import getpaid_core
    except ImportError:
        return None
    return str(getattr(getpaid_core, "__version__", "unknown"))


def unavailable() -> str | None:
    """Why the peer cannot run here, or ``None`` when getpaid-core 3.x imports."""
    try:
        import getpaid_core
    except ImportError as error:
        if isinstance(error, ModuleNotFoundError) and error.name == "getpaid_core" and sys.version_info < (3, 12):
            python = ".".join(map(str, sys.version_info[:2]))
            return f"getpaid-core 3.x needs Python >= 3.12, this is {python}"
        return f"getpaid_core does not import ({error})"
    found = version() or str(getattr(getpaid_core, "__version__", "unknown"))
    try:
        major = int(found.split(".", 1)[0])
    except ValueError:
        return f"getpaid_core {found}: not a version this driver knows"
    if major < 3:
        return f"getpaid_core {found} is older than 3.x (the driver needs the 3.x flow)"
    return None


def sign(body: bytes) -> str:
    """The HMAC-SHA256 signature the peer's "provider" puts on a callback body."""
    return hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()


class Order:
    """An order as getpaid-core's ``protocols.Order`` describes one."""

    def __init__(self, order_id: str) -> None:
        self.order_id = order_id

    def get_total_amount(self) -> Decimal:
        return AMOUNT

    def get_buyer_info(self) -> dict[str, str]:
        return {"email": "guest@example.com"}

    def get_description(self) -> str:
        return f"Table order {self.order_id}"

    def get_currency(self) -> str:
        return CURRENCY

    def get_items(self) -> list[dict[str, Any]]:
        return []

    def get_return_url(self, success: bool | None = None) -> str:
        return "/return/"


class Payment:
    """A payment with the attributes of getpaid-core's ``protocols.Payment``.

    No slots: getpaid's state engine caches its applied event ids on the object.
    """

    def __init__(self, payment_id: str, **fields: Any) -> None:
        from getpaid_core.enums import FraudStatus, PaymentStatus

        self.id = payment_id
        self.order: Order = fields["order"]
        self.amount_required: Decimal = fields["amount_required"]
        self.currency: str = fields["currency"]
        self.backend: str = fields["backend"]
        self.description: str | None = fields.get("description")
        self.provider_data: dict[str, Any] = dict(fields.get("provider_data") or {})
        self.status: str = PaymentStatus.NEW
        self.external_id: str | None = None
        self.amount_paid = Decimal("0")
        self.amount_locked = Decimal("0")
        self.amount_refunded = Decimal("0")
        self.fraud_status: str = FraudStatus.UNKNOWN
        self.fraud_message = ""


class DictRepository:
    """getpaid-core's ``protocols.PaymentRepository`` on a dictionary, as its tests' ``MockRepository``."""

    def __init__(self) -> None:
        self.payments: dict[str, Payment] = {}
        self._ids = itertools.count(1)

    async def get_by_id(self, payment_id: str) -> Payment:
        return self.payments[payment_id]

    async def create(self, **fields: Any) -> Payment:
        payment = Payment(f"gp-{next(self._ids)}", **fields)
        self.payments[payment.id] = payment
        return payment

    async def save(self, payment: Payment) -> Payment:
        self.payments[payment.id] = payment
        return payment

    async def update_status(self, payment_id: str, status: str, **fields: Any) -> Payment:
        payment = self.payments[payment_id]
        payment.status = status
        for name, value in fields.items():
            setattr(payment, name, value)
        return payment

    async def list_by_order(self, order_id: str) -> list[Payment]:
        return [p for p in self.payments.values() if p.order.order_id == order_id]


@cache
def _processor_class() -> type[Any]:
    """The dummy backend with callbacks verified by HMAC-SHA256 over the raw body."""
    from getpaid_core.backends.dummy import DummyProcessor
    from getpaid_core.exceptions import InvalidCallbackError

    class SignedDummyProcessor(DummyProcessor):  # type: ignore[misc]
        slug = SLUG
        display_name = "Dummy (signed callbacks)"
        accepted_currencies = (CURRENCY,)

        async def verify_callback(self, data: dict[str, Any], headers: dict[str, str], **kwargs: Any) -> None:
            body = kwargs.get("raw_body")
            given = headers.get(SIGNATURE_HEADER)
            if not isinstance(body, bytes) or not given:
                raise InvalidCallbackError("unsigned callback")
            expected = hmac.new(str(self.get_setting("webhook_secret")).encode(), body, hashlib.sha256).hexdigest()
            if not hmac.compare_digest(given, expected):
                raise InvalidCallbackError("the callback signature does not match")

    return SignedDummyProcessor


def build() -> tuple[Any, DictRepository]:
    """A getpaid-core ``PaymentFlow`` on a fresh :class:`DictRepository`, its registry discovered already."""
    from getpaid_core.flow import PaymentFlow
    from getpaid_core.registry import PluginRegistry

    registry = PluginRegistry()
    registry.register(_processor_class())
    registry.get_by_slug(SLUG)  # entry-point discovery happens here, outside any timing
    repository = DictRepository()
    flow = PaymentFlow(repository, config={SLUG: {"webhook_secret": SECRET}}, registry=registry)
    return flow, repository


async def _callback(flow: Any, repository: DictRepository, report: dict[str, Any]) -> Payment:
    """The provider signs ``report``; the application parses it, loads the payment, hands it to the flow."""
    body = json.dumps(report).encode()
    headers = {SIGNATURE_HEADER: sign(body), "content-type": "application/json"}
    data = json.loads(body)
    payment = await repository.get_by_id(data["payment_id"])
    await flow.handle_callback(payment, data, headers, raw_body=body)
    return payment


async def lifecycle(flow: Any, repository: DictRepository, tag: str) -> None:
    """Create, prepare, signed paid callback, partial refund, signed refund-confirmed callback."""
    payment = await flow.create_payment(Order(f"T-{tag}"), SLUG)
    await flow.prepare(payment)
    paid = {"payment_id": payment.id, "event": "payment_confirmed", "paid_amount": str(AMOUNT), "event_id": f"{tag}-p"}
    await _callback(flow, repository, paid)
    await flow.start_refund(payment, amount=REFUND)
    refunded = {
        "payment_id": payment.id,
        "event": "refund_confirmed",
        "refunded_amount": str(REFUND),
        "event_id": f"{tag}-r",
    }
    final = await _callback(flow, repository, refunded)
    if final.amount_paid != AMOUNT or final.amount_refunded != REFUND:
        raise AssertionError(f"getpaid lifecycle ended paid {final.amount_paid}, refunded {final.amount_refunded}")


async def lifecycles(count: int, tag: str = "") -> float:
    """Seconds for ``count`` lifecycles on a fresh flow (after one warm-up lifecycle)."""
    flow, repository = build()
    await lifecycle(flow, repository, f"{tag}warm")
    started = time.perf_counter()
    for number in range(count):
        await lifecycle(flow, repository, f"{tag}{number}")
    return time.perf_counter() - started


async def retained_setup(warm: int) -> tuple[Any, DictRepository]:
    """A flow that has run ``warm`` lifecycles (so caches are filled before memory is traced)."""
    flow, repository = build()
    for number in range(warm):
        await lifecycle(flow, repository, f"warm{number}")
    return flow, repository


if __name__ == "__main__":
    reason = unavailable()
    if reason is not None:
        raise SystemExit(f"peer not installed: {reason}")
    import anyio

    seconds = anyio.run(lifecycles, 1000) / 1000
    print(f"getpaid-core {version()}: {seconds * 1e6:.1f} us per signed lifecycle")

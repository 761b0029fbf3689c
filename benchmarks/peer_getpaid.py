"""The peer: getpaid-core's signed payment lifecycle, driven the way ``benchmarks/bench.py`` drives paycore's.

getpaid-core (``pip install -r benchmarks/requirements.txt``: the PyPI
distribution ``python-getpaid-core``, 3.2 or later, Python 3.12 or later) is
the framework-agnostic core of django-getpaid. When ``getpaid_core`` 3.x
imports, :func:`unavailable` returns ``None`` and ``bench.py`` times
:func:`lifecycles` against paycore's memory lifecycle, round by round;
otherwise the table's peer rows say why it is not installed.

Checked against python-getpaid-core 3.2.0 from PyPI on Python 3.12.1: every
name below was read in the installed package (``getpaid_core/``) and the
lifecycle runs to the end.

The lifecycle, on getpaid-core's ``PaymentFlow`` (``flow.py``) over an
in-memory repository:

1. ``create_payment(order, backend_slug)``: the flow checks the backend is
   registered and asks the repository to ``create`` the payment (``new``);
2. ``prepare(payment)``: the backend's ``prepare_transaction`` (the dummy
   backend: a redirect URL), the ``PREPARED`` event (``prepared``), ``save``;
3. a *paid* callback: its JSON body is signed with HMAC-SHA256 (what the
   provider does, inside the timed loop as paycore's ``FakeProvider`` signs
   its webhooks), parsed, the payment loaded by id, and
   ``handle_callback(payment, data, headers, raw_body=body)``:
   ``verify_callback`` checks the signature over the raw body in constant
   time (``hmac.compare_digest``), the dummy backend's ``handle_callback``
   maps it to ``PAYMENT_CAPTURED`` of 50.00 with a provider event id
   (getpaid's replay dedupe, ``provider_data["applied_event_ids"]``), the
   state engine (``fsm.apply_payment_update``) moves it to ``paid``, ``save``;
4. ``start_refund(payment, amount=15.00)``: a partial refund the dummy backend
   accepts, the ``REFUND_REQUESTED`` event (``refund_started``), ``save``;
5. a signed *refund confirmed* callback, as in 3: ``REFUND_CONFIRMED`` of
   15.00. getpaid-core has no partially refunded status: a payment refunded
   in part goes back to ``partially_paid`` (``PaymentStatus.PARTIAL``) with
   ``amount_refunded`` 15.00 (``refunded`` is for a full refund only).

Every lifecycle checks it reached ``paid`` after step 3 and ``partially_paid``
with 50.00 paid and 15.00 refunded after step 5 (two comparisons each), and
once per run, after the warm-up, a callback whose body is not the one signed
must be refused: a driver that stops reaching those states fails loudly
("peer failed: ..." in the table) instead of timing nothing.

What this relies on of getpaid-core's API:

* ``flow.PaymentFlow(repository, config=..., registry=...)``; ``create_payment(order,
  backend_slug, **kwargs)`` calls ``repository.create(order=, backend=,
  amount_required=, currency=, description=, provider_data=)``; ``prepare``,
  ``handle_callback(payment, data, headers, **kwargs)`` (the keyword
  arguments reach the processor's ``verify_callback`` and
  ``handle_callback``), ``start_refund(payment, amount)``; the processor is
  built per call as ``processor_class(payment, config=config[backend_slug])``;
* ``processor.BaseProcessor`` with ``get_setting``; ``verify_callback(data,
  headers, **kwargs)`` raising ``exceptions.InvalidCallbackError``;
* ``backends.dummy.DummyProcessor``: its ``verify_callback`` is a documented
  no-op, so a subclass here (slug ``paycore-bench-signed``) verifies the
  signature; its ``handle_callback`` maps ``{"event": "payment_confirmed",
  "paid_amount", "event_id"}`` and ``{"event": "refund_confirmed",
  "refunded_amount", "event_id"}``; its ``start_refund`` accepts any amount;
* ``registry.PluginRegistry()`` with ``register(processor_class)`` and
  ``get_by_slug`` (whose first call discovers the ``getpaid.backends`` entry
  points: :func:`build` makes it before any timing);
* the ``protocols.PaymentRepository`` and ``protocols.Payment`` / ``Order``
  shapes, ``enums.PaymentStatus`` and ``enums.FraudStatus.UNKNOWN``.

The repository: getpaid-core 3.2.0 ships none, only the
``protocols.PaymentRepository`` contract (of which the flow calls ``create``
and ``save``). So :class:`DictRepository` is the one getpaid-core's own tests
use (``tests/conftest.py``, ``MockRepository``): a dictionary of payment
objects. It does less than paycore's (no version check, no event records, no
idempotency keys on create and refund: getpaid's flow has none), which makes
the ratio a conservative one for paycore.
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
DISTRIBUTION = "python-getpaid-core"
"""The name getpaid-core 3.x is published under on PyPI."""
PAID = "paid"
PARTIALLY_PAID = "partially_paid"
"""``PaymentStatus.PAID`` and ``PaymentStatus.PARTIAL``: after the paid callback, after the partial refund's."""


def version() -> str | None:
    """The installed getpaid-core's version (its distribution's, else ``getpaid_core.__version__``), or ``None``."""
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        pass
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
        """The amount the payment must collect."""
        return AMOUNT

    def get_buyer_info(self) -> dict[str, str]:
        """The buyer, as ``types.BuyerInfo``."""
        return {"email": "guest@example.com"}

    def get_description(self) -> str:
        """The payment's description."""
        return f"Table order {self.order_id}"

    def get_currency(self) -> str:
        """The order's currency (one the backend accepts)."""
        return CURRENCY

    def get_items(self) -> list[dict[str, Any]]:
        """The order's lines (none: the lifecycle does not use them)."""
        return []

    def get_return_url(self, success: bool | None = None) -> str:
        """Where the buyer returns after paying."""
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


async def lifecycle(flow: Any, repository: DictRepository, tag: str) -> Payment:
    """Create, prepare, signed paid callback, partial refund, signed refund-confirmed callback; the payment."""
    payment = await flow.create_payment(Order(f"T-{tag}"), SLUG)
    await flow.prepare(payment)
    paid = {"payment_id": payment.id, "event": "payment_confirmed", "paid_amount": str(AMOUNT), "event_id": f"{tag}-p"}
    if (await _callback(flow, repository, paid)).status != PAID:
        raise AssertionError(f"getpaid payment {payment.id} is {payment.status} after its paid callback")
    await flow.start_refund(payment, amount=REFUND)
    refunded = {
        "payment_id": payment.id,
        "event": "refund_confirmed",
        "refunded_amount": str(REFUND),
        "event_id": f"{tag}-r",
    }
    final = await _callback(flow, repository, refunded)
    if final.status != PARTIALLY_PAID or final.amount_paid != AMOUNT or final.amount_refunded != REFUND:
        raise AssertionError(
            f"getpaid lifecycle ended {final.status}, paid {final.amount_paid}, refunded {final.amount_refunded}"
        )
    return final


async def _refuses_forgery(flow: Any, payment: Payment) -> None:
    """A callback whose raw body is not the one signed is refused, and changes nothing."""
    from getpaid_core.exceptions import InvalidCallbackError

    report = {"payment_id": payment.id, "event": "refund_confirmed", "refunded_amount": "0.01", "event_id": "forged"}
    signed = json.dumps(report).encode()
    body = signed.replace(b'"0.01"', f'"{AMOUNT}"'.encode())
    try:
        await flow.handle_callback(payment, json.loads(body), {SIGNATURE_HEADER: sign(signed)}, raw_body=body)
    except InvalidCallbackError:
        if payment.amount_refunded == REFUND:
            return
    raise AssertionError("getpaid-core accepted a callback whose body does not match its signature")


async def retained_setup(warm: int, tag: str = "") -> tuple[Any, DictRepository]:
    """A flow that has run ``warm`` lifecycles (caches filled) and refused a forged callback, outside any timing."""
    flow, repository = build()
    for number in range(max(warm, 1)):
        payment = await lifecycle(flow, repository, f"{tag}warm{number}")
    await _refuses_forgery(flow, payment)
    return flow, repository


async def lifecycles(count: int, tag: str = "") -> float:
    """Seconds for ``count`` lifecycles on a fresh flow (after one warm-up lifecycle)."""
    flow, repository = await retained_setup(1, tag)
    started = time.perf_counter()
    for number in range(count):
        await lifecycle(flow, repository, f"{tag}{number}")
    return time.perf_counter() - started


if __name__ == "__main__":
    reason = unavailable()
    if reason is not None:
        raise SystemExit(f"peer not installed: {reason}")
    import anyio

    seconds = anyio.run(lifecycles, 1000) / 1000
    print(f"getpaid-core {version()}: {seconds * 1e6:.1f} us per signed lifecycle")

"""paycore's views: the webhook endpoint, paying for an order, and the pages a customer returns to.

* :func:`webhook` (``POST <tenant>/<code>/`` and ``POST <code>/``) hands a
  provider's delivery to ``flow().handle_webhook`` and answers exactly as
  :mod:`paycore.asgi` does: 200 once the event is committed (a repeated
  delivery too), 401 bad signature, 400 unreadable, 404 unknown provider or
  payment, 405 not POST (with ``Allow: POST``), 413 too large, 503 busy or storage down (with
  ``Retry-After``), 500 otherwise; 403 from an address outside
  ``WEBHOOK_ALLOWED_IPS`` when that allowlist is set.
* :func:`pay` shows the :class:`~paycore_django.forms.PaymentMethodForm` for an
  order and starts a payment of what is still due of the total ``ORDER_RESOLVER``
  gives, never an amount from the browser; then sends the customer to the
  provider's next action. An order with a payment under way gets no second
  one, and a paid order none. A payment the provider or the storage failed to
  start is told to the customer in a generic sentence, and logged for the operator.
* :func:`payment_status` (the return, success and failure pages) and
  :func:`order_return` (where providers send the customer back: the payment
  its ``payment=`` names, else the order's paid or latest one) ask a
  pollable provider for the payment's state before showing it: the page
  shows what is true, whatever URL the customer came back to.

A view never acts unscoped. Every request belongs to the tenant
``TENANT_RESOLVER`` gives it, and ``None`` (no resolver, or one that does not
know the request, e.g. an unknown host) is "no tenant": the request sees only
payments stored without a tenant, never every tenant's (which is what
``tenant=None`` means to :class:`~paycore.flow.PaymentFlow`, for trusted
server-side code). Another tenant's payment is not found (404).

No view runs inside a request-wide transaction (``ATOMIC_REQUESTS``), on any
database: each is marked :func:`~paycore_django.databases.non_atomic_requests`
(Django's bare ``transaction.non_atomic_requests`` exempts ``default`` only, and
refuses an async view when another database has ``ATOMIC_REQUESTS``). paycore's
units of work run on a worker thread, on a connection of their own, and commit
there; under the request's ``atomic()`` they would only wait for its locks
(SQLite in ``IMMEDIATE`` mode takes its write lock at ``BEGIN``: "database is locked").
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Any, Final

from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.crypto import salted_hmac
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods

import paycore_django
from paycore.asgi import classify_webhook_error, declared_body_size
from paycore.blocking import BlockingPaymentFlow
from paycore.errors import IdempotencyError, MoneyError, PaycoreError, PaymentNotFound, ValidationError
from paycore.logs import guarded_logger
from paycore.money import Money
from paycore.operations import was_never_sent
from paycore.records import Checkout, Payment
from paycore.status import PaymentStatus
from paycore.wire import quoted
from paycore_django.conf import IpNetwork, django_options
from paycore_django.databases import non_atomic_requests
from paycore_django.forms import PaymentMethodForm, offered_providers
from paycore_django.orders import OrderCurrencyMismatch, OrderSummary, balance_due, resolve_order

__all__ = [
    "belongs_to",
    "client_ip",
    "order_return",
    "pay",
    "payment_status",
    "tenant_of",
    "webhook",
    "webhook_allowed",
]

log = guarded_logger("paycore_django.views")  # a handler that raises never changes what this module answers

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


# -- who is asking -----------------------------------------------------------------------------


def tenant_of(request: HttpRequest) -> str | None:
    """The request's tenant, from the ``TENANT_RESOLVER`` callable (``None`` without one).

    ``None`` means "no tenant": the request may see only payments without a
    tenant (:func:`belongs_to`), not every tenant's.
    """
    resolver = django_options().tenant_resolver
    if resolver is None:
        return None
    tenant = resolver(request)
    return None if tenant is None else str(tenant)


def belongs_to(payment: Payment, tenant: str | None) -> bool:
    """Whether a request of ``tenant`` may see ``payment``: it is that tenant's, or, for ``None``, has no tenant.

    The views read with ``tenant=tenant`` and check this as well, since the
    flow reads ``tenant=None`` unscoped.
    """
    return payment.tenant == tenant


def _parse_ip(value: str) -> IpAddress | None:
    try:
        return ipaddress.ip_address(value.strip())
    except ValueError:
        return None


def _within(address: IpAddress, networks: Iterable[IpNetwork]) -> bool:
    return any(address.version == network.version and address in network for network in networks)


def client_ip(request: HttpRequest) -> IpAddress | None:
    """The address that sent ``request``.

    ``X-Forwarded-For`` is read only when the direct peer (``REMOTE_ADDR``) is
    one of ``TRUSTED_PROXIES``; then the right-most address that is not a
    trusted proxy is the client (entries on its left could be forged).
    """
    peer = _parse_ip(str(request.META.get("REMOTE_ADDR", "")))
    proxies = django_options().trusted_proxies
    if peer is None or not _within(peer, proxies):
        return peer
    forwarded = str(request.META.get("HTTP_X_FORWARDED_FOR", ""))
    for hop in reversed([part for part in forwarded.split(",") if part.strip()]):
        address = _parse_ip(hop)
        if address is None:
            return None  # a garbled chain proves nothing
        if not _within(address, proxies):
            return address
    return peer


def webhook_allowed(request: HttpRequest) -> bool:
    """Whether ``request`` comes from an address ``WEBHOOK_ALLOWED_IPS`` lists (always, when unset)."""
    allowed = django_options().webhook_allowed_ips
    if allowed is None:
        return True
    address = client_ip(request)
    return address is not None and _within(address, allowed)


# -- webhooks ----------------------------------------------------------------------------------


def _answer(status: int, body: dict[str, Any], *, retry_after: bool = False) -> JsonResponse:
    response = JsonResponse(body, status=status)
    response["Cache-Control"] = "no-store"
    if retry_after:
        response["Retry-After"] = "1"
    return response


def _refusal(status: int, error: str, detail: str) -> JsonResponse:
    return _answer(status, {"error": error, "detail": detail})


_NOT_A_LENGTH: Final = -1
"""What :func:`_declared_length` gives for a Content-Length that is not a number of bytes."""


def _declared_length(request: HttpRequest) -> int | None:
    """The Content-Length the request declares; ``None`` without one; :data:`_NOT_A_LENGTH` for one that is
    not a number of bytes ("abc", "1e3": Django before 6.1 raised reading the body, 6.1 reads none)."""
    value = str(request.META.get("CONTENT_LENGTH") or "").strip()
    if not value:
        return None
    size = declared_body_size(value)
    return _NOT_A_LENGTH if size is None else size


@csrf_exempt
@non_atomic_requests
async def webhook(request: HttpRequest, code: str, tenant: str | None = None) -> HttpResponse:
    """Receive provider ``code``'s webhook (for ``tenant``, if the URL names one)."""
    if request.method != "POST":
        refused = _refusal(405, "method_not_allowed", "webhooks are delivered with POST")
        refused["Allow"] = "POST"
        return refused
    if not webhook_allowed(request):
        log.warning("webhook %s refused: address not in WEBHOOK_ALLOWED_IPS", quoted(request.path))
        return _refusal(403, "forbidden", "this address may not deliver webhooks")
    flow = paycore_django.flow()
    limit = flow.config.webhook_max_bytes
    too_large = f"webhook bodies are limited to {limit} bytes"
    declared = _declared_length(request)
    if declared == _NOT_A_LENGTH:
        return _refusal(400, "malformed_webhook", "the Content-Length header is not a number of bytes")
    if declared is not None and declared > limit:
        return _refusal(413, "body_too_large", too_large)  # refused unread
    try:
        body = request.body
    except RequestDataTooBig:
        return _refusal(413, "body_too_large", too_large)
    if len(body) > limit:
        return _refusal(413, "body_too_large", too_large)
    headers = {str(name).lower(): str(value) for name, value in request.headers.items()}
    try:
        payments = await flow.handle_webhook(code, body, headers, tenant=tenant)
    except Exception as error:
        status, name, detail = classify_webhook_error(error, code)
        if status == 500:
            log.exception("webhook %s failed", quoted(request.path))
        elif status == 503:
            log.warning("webhook %s answered 503: %s", quoted(request.path), type(error).__name__)
        return _answer(status, {"error": name, "detail": detail}, retry_after=status == 503)
    return _answer(200, {"received": True, "payments": [payment.id for payment in payments]})


# -- paying for an order -----------------------------------------------------------------------

_OPEN = (PaymentStatus.PENDING, PaymentStatus.PROCESSING)
"""A payment the customer may still be completing at its provider."""

_UNDER_WAY = (*_OPEN, PaymentStatus.AUTHORIZED)
"""A payment not ended yet: money may still move."""


@require_http_methods(["GET", "POST"])
@non_atomic_requests
def pay(request: HttpRequest, order_id: str) -> HttpResponse:
    """Choose how to pay order ``order_id``; on POST, start the payment and go where the provider says.

    The payment is of what is still due (:func:`~paycore_django.orders.balance_due`).
    An order with a payment under way gets no other one: a POST sends the
    customer on with that one. A paid order offers nothing to pay.
    """
    tenant = tenant_of(request)
    order = resolve_order(request, order_id)
    flow = paycore_django.blocking_flow()
    payments = _payments_of(flow, order.order_id, tenant)
    under_way = _under_way(payments)
    if request.method == "POST" and under_way is not None:
        return _next_step(request, _resumed(under_way))
    try:
        due = balance_due(order.amount, payments)
    except OrderCurrencyMismatch as mismatch:
        return _currency_conflict(request, order, mismatch)
    form = PaymentMethodForm(
        request.POST if request.method == "POST" else None,
        providers=offered_providers(request, flow.flow.providers(tenant=tenant)),
        currency=order.amount.currency,
    )
    error = ""
    if request.method == "POST" and due.is_positive() and form.is_valid():
        try:
            checkout = _start_payment(request, flow, form, order, due, tenant=tenant, count=len(payments))
        except IdempotencyError:  # another request of this order holds the key: two tabs posting at once
            error = "A payment for this order was just started. Wait a moment, then reload this page."
        except PaycoreError as refused:
            error = _refusal_text(refused, order.order_id)
        else:
            return _next_step(request, checkout)
    rejected = request.method == "POST" and (bool(error) or not due.is_positive() or not form.is_valid())
    return render(
        request,
        "paycore_django/pay.html",
        {"form": form, "order": order, "due": due, "under_way": under_way, "error": error},
        status=400 if rejected else 200,
    )


_NOT_STARTED: Final = "The payment could not be started. Please try again later."
"""What the pay page tells the customer when starting a payment failed on paycore's side (the provider, the
storage, the configuration): the details are logged for the operator, never shown."""


def _refusal_text(refused: PaycoreError, order_id: str) -> str:
    """What the pay page tells the customer of ``refused``, raised starting a payment of order ``order_id``.

    A refusal of the request itself (:class:`~paycore.errors.ValidationError`: the provider chosen does not
    take the currency, a policy refused the payment...; :class:`~paycore.errors.MoneyError`) is told as it
    is. Any other failure (the provider's or the storage's, whose text may hold a gateway's words or an
    internal address) is told as :data:`_NOT_STARTED`, and logged at WARNING for the operator.
    """
    if isinstance(refused, ValidationError | MoneyError):
        return str(refused)
    log.warning(
        "payment of order %s not started: %s: %s", quoted(order_id), type(refused).__name__, quoted(str(refused), 1000)
    )
    return _NOT_STARTED


def _currency_conflict(request: HttpRequest, order: OrderSummary, mismatch: OrderCurrencyMismatch) -> HttpResponse:
    """The pay page of an order whose payments are in another currency than its total: 409, nothing to pay."""
    log.warning("order %r cannot be paid: %s", order.order_id, mismatch)
    conflict = (
        f"This order has payments in {', '.join(mismatch.payment_currencies)}, but its total is in "
        f"{mismatch.currency}: it cannot be paid here. Please contact us."
    )
    return render(request, "paycore_django/pay.html", {"order": order, "conflict": conflict}, status=409)


def _payments_of(flow: BlockingPaymentFlow, order_id: str, tenant: str | None) -> list[Payment]:
    """The payments of order ``order_id`` that ``tenant`` may see, oldest first (none for an id paycore refuses)."""
    try:
        listed = flow.list_payments(order_id=order_id, tenant=tenant)
    except ValidationError:  # an order id or a tenant paycore refuses has no payment
        return []
    return [payment for payment in listed if belongs_to(payment, tenant)]


def _under_way(payments: list[Payment]) -> Payment | None:
    """The latest of ``payments`` that has not ended (pending, processing or authorized), if any.

    A payment its provider never received ("not sent", and no request is
    sending it) does not count: no money can move for it, and the reaper
    expires it.
    """
    return next((payment for payment in reversed(payments) if _moving(payment)), None)


def _moving(payment: Payment) -> bool:
    """True while money may still move for ``payment``: it has not ended, and was sent or is being sent."""
    return payment.status in _UNDER_WAY and not (was_never_sent(payment) and payment.pending_call is None)


def _resumed(payment: Payment) -> Checkout:
    """``payment`` again, as paycore replays its checkout: with its next action while the customer may act on it."""
    return Checkout(payment, payment.next_action if payment.status in _OPEN else None)


def _order_key(order_id: str, count: int, due: Money) -> str:
    """The idempotency key of paying ``due`` of an order that has ``count`` payments so far.

    Requests that saw the order alike (two tabs posting at once, a double
    click) share it: paycore replays the first one's checkout, or refuses the
    others if they ask for another provider. It is an HMAC under the project's
    ``SECRET_KEY``, of any length of order id: the payment id paycore derives
    from the key cannot be worked out from the order.
    """
    message = f"{order_id}\x00{count}\x00{due.minor_units}\x00{due.currency}".encode("utf-8", "surrogatepass")
    return "pay-" + salted_hmac("paycore_django.views.pay", message, algorithm="sha256").hexdigest()


def _start_payment(
    request: HttpRequest,
    flow: BlockingPaymentFlow,
    form: PaymentMethodForm,
    order: OrderSummary,
    due: Money,
    *,
    tenant: str | None,
    count: int,
) -> Checkout:
    """Start paying ``due`` of ``order``, which has ``count`` payments, with the provider chosen in ``form``."""
    code = form.cleaned_data["provider"]
    metadata_for = django_options().payment_metadata
    metadata = dict(metadata_for(request, order.order_id, code) or {}) if metadata_for is not None else {}
    return flow.create_payment(
        amount=due,
        provider=code,
        order_id=order.order_id,
        tenant=tenant,
        description=order.description,
        metadata=metadata,
        return_url=request.build_absolute_uri(
            reverse("paycore_django:order_return", kwargs={"order_id": order.order_id})
        ),
        idempotency_key=_order_key(order.order_id, count, due),
    )


def _next_step(request: HttpRequest, checkout: Checkout) -> HttpResponse:
    action = checkout.action
    payment = checkout.payment
    if action is not None and action.kind == "redirect" and action.url:
        return HttpResponseRedirect(action.url)
    if action is not None and action.kind == "form_post" and action.url:
        return render(request, "paycore_django/form_post.html", {"action": action, "payment": payment})
    if action is not None:
        return render(request, "paycore_django/next_action.html", {"action": action, "payment": payment})
    return HttpResponseRedirect(reverse("paycore_django:payment", kwargs={"payment_id": payment.id}))


# -- coming back -------------------------------------------------------------------------------

_TITLES = {"return": "Your payment", "success": "Payment received", "failure": "Payment not completed"}


@require_GET
@non_atomic_requests
def payment_status(request: HttpRequest, payment_id: str, page: str = "return") -> HttpResponse:
    """Payment ``payment_id`` as its provider now reports it (polled when it can be and is not settled)."""
    tenant = tenant_of(request)
    flow = paycore_django.blocking_flow()
    try:
        payment = flow.get_payment(payment_id, tenant=tenant)
    except PaymentNotFound:
        payment = None
    if payment is None or not belongs_to(payment, tenant):
        return render(request, "paycore_django/not_found.html", {"what": "payment"}, status=404)
    return _show(request, flow, payment, page)


@require_GET
@non_atomic_requests
def order_return(request: HttpRequest, order_id: str) -> HttpResponse:
    """Where a provider sends the customer back: the order's payment, polled when it can be.

    The payment the query's ``payment=`` names, if it is one of this order's;
    else the latest that succeeded or is authorized; else the latest. Its
    state is the store's (and the provider's), never the query's.
    """
    tenant = tenant_of(request)
    order = resolve_order(request, order_id)
    flow = paycore_django.blocking_flow()
    payments = _payments_of(flow, order.order_id, tenant)
    if not payments:
        return render(request, "paycore_django/not_found.html", {"what": "payment for this order"}, status=404)
    return _show(request, flow, _returned_payment(payments, request.GET.get("payment", "")), "return")


def _returned_payment(payments: list[Payment], named: str) -> Payment:
    """The payment of ``payments`` (oldest first) a customer coming back with ``payment=named`` sees."""
    for payment in payments:
        if payment.id == named:
            return payment
    paid = [payment for payment in payments if payment.status in (PaymentStatus.SUCCEEDED, PaymentStatus.AUTHORIZED)]
    return (paid or payments)[-1]


def _show(request: HttpRequest, flow: BlockingPaymentFlow, payment: Payment, page: str) -> HttpResponse:
    payment = _refreshed(flow, payment)
    return render(
        request,
        "paycore_django/payment.html",
        {
            "payment": payment,
            "title": _TITLES.get(page, _TITLES["return"]),
            "paid": payment.status in (PaymentStatus.SUCCEEDED, PaymentStatus.AUTHORIZED),
            "waiting": payment.status in (PaymentStatus.PENDING, PaymentStatus.PROCESSING),
            "refunded": payment.refunded_amount,
        },
    )


def _refreshed(flow: BlockingPaymentFlow, payment: Payment) -> Payment:
    """``payment`` after asking its provider, when it can be polled and is not settled yet."""
    if payment.status not in _UNDER_WAY:
        return payment
    try:
        if not flow.flow.provider(payment.provider, tenant=payment.tenant).capabilities.polling:
            return payment
        return flow.refresh(payment.id, tenant=payment.tenant)
    except PaycoreError as error:
        # Unknown or unreachable: show what is stored; the webhook or the next visit settles it.
        log.info("payment %s not refreshed: %s", payment.id, type(error).__name__)
        return payment

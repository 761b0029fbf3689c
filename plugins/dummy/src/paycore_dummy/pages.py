"""The gateway's HTML: the hosted checkout page and the "approve on your phone" page."""

from __future__ import annotations

from html import escape
from typing import Final

from paycore_dummy.records import GatewayPayment, shown_amount, shown_count

__all__ = ["checkout_page", "index_page", "phone_page", "refusal_page"]

_STYLE: Final = """
body{font-family:system-ui,sans-serif;background:#f4f5f7;margin:0;padding:2rem;color:#1d1f23}
main{max-width:26rem;margin:auto;background:#fff;border-radius:12px;padding:1.5rem;
box-shadow:0 2px 12px rgba(0,0,0,.08)}
h1{font-size:1.2rem;margin-top:0}.amount{font-size:2rem;font-weight:600;margin:.5rem 0}
.muted{color:#667}.status{padding:.6rem;border-radius:8px;background:#eef}
button{font-size:1rem;padding:.6rem 1rem;border-radius:8px;border:0;margin:.25rem .25rem 0 0;cursor:pointer}
.approve{background:#1f8f4e;color:#fff}.decline{background:#c23b3b;color:#fff}.abandon{background:#ddd}
.phone{max-width:18rem;border:10px solid #222;border-radius:28px}
"""

_RESULT_TEXT: Final = {
    "authorized": "Payment approved (authorized).",
    "succeeded": "Payment approved.",
    "failed": "Payment declined.",
    "expired": "Payment abandoned.",
    "canceled": "Payment canceled by the merchant.",
}


def _document(title: str, body: str, *, main_class: str = "") -> str:
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width,initial-scale=1'>"
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head>"
        f"<body><main class='{main_class}'>{body}</main></body></html>"
    )


def _summary(payment: GatewayPayment) -> str:
    description = f"<p class='muted'>{escape(payment.description)}</p>" if payment.description else ""
    lines = "".join(
        f"<li>{escape(shown_count(item['quantity']))} x {escape(item['name'])}: "
        f"{escape(shown_amount(item['unit_price'] * item['quantity'], payment.currency))}</li>"
        for item in payment.items
    )
    basket = f"<ul class='items' data-testid='items'>{lines}</ul>" if lines else ""
    return (
        f"<div class='amount' data-testid='amount'>{escape(shown_amount(payment.amount, payment.currency))}</div>"
        f"{description}{basket}<p class='muted'>Reference {escape(payment.reference)}</p>"
    )


def _result(payment: GatewayPayment) -> str:
    text = _RESULT_TEXT.get(payment.status, payment.status)
    return f"<p class='status' data-testid='status' data-status='{escape(payment.status)}'>{escape(text)}</p>"


def _buttons(*, approve: str, decline: str, abandon: str | None) -> str:
    abandon_button = (
        f"<button class='abandon' name='action' value='abandon'>{escape(abandon)}</button>" if abandon else ""
    )
    return (
        # No action: the form posts back to the page's own URL, wherever the gateway is mounted.
        "<form method='post'>"
        f"<button class='approve' name='action' value='approve'>{escape(approve)}</button>"
        f"<button class='decline' name='action' value='decline'>{escape(decline)}</button>"
        f"{abandon_button}</form>"
    )


def checkout_page(payment: GatewayPayment) -> str:
    """The hosted card checkout: approve, decline, or abandon the payment."""
    if payment.status == "requires_action":
        body = (
            "<h1>Dummy Gateway checkout</h1>"
            + _summary(payment)
            + "<p class='muted'>Test card 4242 4242 4242 4242 is on file.</p>"
            + _buttons(approve="Pay", decline="Decline", abandon="Cancel and return")
        )
    else:
        body = "<h1>Dummy Gateway checkout</h1>" + _summary(payment) + _result(payment)
    return _document("Dummy Gateway checkout", body)


def phone_page(payment: GatewayPayment) -> str:
    """A mobile-money push: the customer's phone asks them to approve."""
    if payment.status == "requires_action":
        body = (
            "<h1>Mobile money</h1><p>A merchant asks you to pay</p>"
            + _summary(payment)
            + f"<p class='muted'>Or dial <code>*144*{escape(payment.id[-6:])}#</code></p>"
            + _buttons(approve="Approve", decline="Refuse", abandon=None)
        )
    else:
        body = "<h1>Mobile money</h1>" + _summary(payment) + _result(payment)
    return _document("Approve on your phone", body, main_class="phone")


def index_page(payments: list[GatewayPayment], root_path: str = "") -> str:
    """The gateway's home: recent payments, with links to their pages."""
    rows = "".join(
        f"<li><a href='{escape(root_path)}/{'phone' if p.method == 'mobile_money' else 'checkout'}/{escape(p.id)}'>"
        f"{escape(p.id)}</a> {escape(shown_amount(p.amount, p.currency))}: {escape(p.status)}</li>"
        for p in reversed(payments[-50:])
    )
    return _document("Dummy Gateway", f"<h1>Dummy Gateway</h1><ul>{rows or '<li>No payments yet.</li>'}</ul>")


def refusal_page(message: str, *, again: str | None = None) -> str:
    """What a customer's browser shows when the gateway refuses what it sent (a tab left open after the
    payment ended, an unknown payment): why, and with ``again``, a link to the page as it is now."""
    link = f"<p><a href='{escape(again)}' data-testid='again'>See the payment as it is now</a></p>" if again else ""
    body = f"<h1>Nothing was changed</h1><p class='status' data-testid='refusal'>{escape(message)}</p>{link}"
    return _document("Nothing was changed", body)

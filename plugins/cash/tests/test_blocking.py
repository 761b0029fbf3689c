"""Cash drawers from sync code, through ``BlockingPaymentFlow``."""

from __future__ import annotations

from typing import Any

import pytest

from paycore.blocking import BlockingPaymentFlow
from paycore.errors import PaymentNotFound
from paycore.money import Money
from paycore_cash.blocking import BlockingCashDrawers
from paycore_cash.errors import NoOpenDrawer


def xof(amount: int) -> Money:
    return Money.of(str(amount), "XOF")


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_a_till_day_from_sync_code(cash_config: Any, backend: str) -> None:
    with BlockingPaymentFlow.from_config(cash_config(currency="XOF"), backend=backend) as flow:
        drawers = BlockingCashDrawers(flow, tenant="chez-awa")
        session = drawers.open(till="T1", opening_float=xof(5_000), opened_by="Awa")
        sale = drawers.take_cash(amount=xof(3_500), tendered=xof(10_000), till="T1", order_id="T1-1")
        drawers.pay_out(till="T1", amount=xof(4_000), reason="drop", actor="Awa")
        closed = drawers.close(till="T1", counted=xof(4_000), closed_by="Awa")
        assert sale.change == xof(6_500)
        assert (closed.expected, closed.variance) == (xof(4_500), xof(-500))
        assert drawers.report(session.id).variance == xof(-500)


def test_a_refusal_reaches_the_sync_caller(cash_config: Any) -> None:
    with BlockingPaymentFlow.from_config(cash_config(currency="XOF")) as flow:
        drawers = BlockingCashDrawers(flow, tenant="chez-awa")
        with pytest.raises(NoOpenDrawer):
            drawers.take_cash(amount=xof(1_000), tendered=xof(1_000), till="T1", order_id="T1-1")
        assert flow.list_payments(tenant="chez-awa") == []


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_a_refund_from_sync_code_is_paid_out_of_the_till_it_names(cash_config: Any, backend: str) -> None:
    with BlockingPaymentFlow.from_config(cash_config(currency="XOF"), backend=backend) as flow:
        drawers = BlockingCashDrawers(flow, tenant="chez-awa")
        drawers.open(till="T1", opening_float=xof(5_000), opened_by="Awa")
        sale = drawers.take_cash(amount=xof(3_500), tendered=xof(3_500), till="T1", order_id="T1-1", cashier="Awa")
        drawers.close(till="T1", counted=xof(8_500), closed_by="Awa")
        t2 = drawers.open(till="T2", opening_float=xof(2_000), opened_by="Moussa")
        with pytest.raises(NoOpenDrawer, match="open tills: T2"):
            drawers.refund_cash(sale.payment.id, amount=xof(1_000))
        refund = drawers.refund_cash(sale.payment.id, amount=xof(1_000), till="T2", cashier="Moussa")
        [paid] = drawers.movements(t2.id)
        assert (paid.refund_id, paid.actor, paid.amount) == (refund.id, "Moussa", xof(1_000))
        assert drawers.totals(t2.id).expected == xof(1_000)


def test_the_drawers_of_no_tenant_do_not_refund_another_tenant_s_sale(cash_config: Any) -> None:
    """Their tills take the no-tenant default's payments only: refunding a restaurant's sale from them would hand
    out their cash and book it out of the restaurant's drawer."""
    with BlockingPaymentFlow.from_config(cash_config(currency="XOF")) as flow:
        awa, nobody = BlockingCashDrawers(flow, tenant="chez-awa"), BlockingCashDrawers(flow)
        awa_till = awa.open(till="T1", opening_float=xof(5_000), opened_by="Awa")
        nobody.open(till="T1", opening_float=xof(5_000), opened_by="Night desk")
        sale = awa.take_cash(amount=xof(3_500), tendered=xof(3_500), till="T1", order_id="T1-1")
        own = nobody.take_cash(amount=xof(1_500), tendered=xof(1_500), till="T1", order_id="N-1")
        before = flow.get_payment(sale.payment.id)
        with pytest.raises(PaymentNotFound, match="no tenant"):
            nobody.refund_cash(sale.payment.id, amount=xof(2_000))
        assert flow.get_payment(sale.payment.id) == before
        assert [m.kind.value for m in awa.movements(awa_till.id)] == ["sale"]
        assert nobody.refund_cash(own.payment.id).amount == xof(1_500), "its own are refunded"

"""Cash-drawer sessions and movements live in the Django database beside the payments.

Every test runs on a SQLite file and on PostgreSQL, under asyncio and trio
(``using``: the database alias, see ``conftest.py`` and ``paycore_cash_django_project``).
"""

from __future__ import annotations

from typing import Any

import pytest
from django.core.management import call_command
from paycore_cash_django_project import CASH_APP, SQLITE_ALIAS

from paycore.errors import ConfigurationError
from paycore.flow import PaymentFlow
from paycore.money import Money
from paycore.plugins import create_plugin_manager
from paycore.status import PaymentStatus
from paycore_cash.backends import drawer_storage
from paycore_cash.backends.django.storage import DjangoDrawerStorage
from paycore_cash.drawers import CashDrawers
from paycore_cash.records import DrawerStatus, MovementKind
from paycore_cash.sales import take_cash
from paycore_cash.testing import DrawerStorageConformance, pay_out_concurrently
from paycore_django.storage import DjangoPaymentRepository

TENANT = "chez-awa"


def xof(amount: int) -> Money:
    return Money.of(str(amount), "XOF")


class TestDjangoDrawerStorage(DrawerStorageConformance):
    @pytest.fixture
    def drawer_storage(self, using: str) -> DjangoDrawerStorage:
        return DjangoDrawerStorage(DjangoPaymentRepository(using))


def test_the_cash_plugin_keeps_drawers_in_the_database_of_a_django_repository(using: str) -> None:
    storage = drawer_storage(create_plugin_manager(), DjangoPaymentRepository(using))
    assert isinstance(storage, DjangoDrawerStorage)
    assert storage.using == using


def test_a_repository_without_a_database_alias_is_refused_with_what_to_pass() -> None:
    class AliasLess:
        storage_backend = "django"

    with pytest.raises(ConfigurationError, match=r"'using' must name a database of settings.DATABASES"):
        DjangoDrawerStorage(AliasLess())


def test_the_shipped_migrations_match_the_models(django_db_blocker: Any) -> None:
    with django_db_blocker.unblock():
        call_command("makemigrations", "paycore_cash", "--check", "--dry-run", verbosity=0)


@pytest.mark.anyio
async def test_a_flow_on_django_takes_cash_at_an_open_drawer_and_closes_it_with_its_variance(using: str) -> None:
    config: dict[str, Any] = {
        "repository": {"type": "django", "using": using},
        "tenants": {TENANT: {"providers": {"cash": {"type": "cash", "currency": "XOF"}}}},
    }
    async with PaymentFlow.from_config(config) as flow:
        drawers = CashDrawers(flow, tenant=TENANT)
        opened = await drawers.open(till="T1", opening_float=xof(10_000), opened_by="Awa")
        sale = await take_cash(
            flow, amount=xof(3_500), tendered=xof(5_000), till="T1", order_id="T1-1", tenant=TENANT, cashier="Awa"
        )
        await drawers.pay_out(till="T1", amount=xof(1_000), actor="Awa", reason="bread")
        closed = await drawers.close(till="T1", counted=xof(12_000), closed_by="Awa")

    assert sale.payment.status is PaymentStatus.SUCCEEDED
    assert sale.change == xof(1_500)
    assert (closed.expected, closed.counted, closed.variance) == (xof(12_500), xof(12_000), xof(-500))
    async with PaymentFlow.from_config(config) as flow:  # all of it was kept in the Django database
        drawers = CashDrawers(flow, tenant=TENANT)
        assert await drawers.get(opened.id) == closed
        assert (await drawers.get(opened.id)).status is DrawerStatus.CLOSED
        [taken, paid_out] = await drawers.movements(opened.id)
        assert (taken.kind, taken.payment_id, taken.tendered) == (MovementKind.SALE, sale.payment.id, xof(5_000))
        assert (paid_out.kind, paid_out.amount) == (MovementKind.PAY_OUT, xof(1_000))
        assert (await flow.get_payment(sale.payment.id)).captured_amount == xof(3_500)


@pytest.mark.anyio
async def test_twenty_pay_outs_racing_for_a_drawer_that_holds_five_store_exactly_five(using: str) -> None:
    config: dict[str, Any] = {
        "repository": {"type": "django", "using": using},
        "tenants": {TENANT: {"providers": {"cash": {"type": "cash", "currency": "XOF"}}}},
    }
    async with PaymentFlow.from_config(config) as flow:
        drawers = CashDrawers(flow, tenant=TENANT)
        session = await drawers.open(till="T1", opening_float=xof(5_000), opened_by="Awa")
        outcomes = await pay_out_concurrently(drawers, till="T1", amount=xof(1_000), times=20)
        assert outcomes == ["paid"] * 5 + ["refused"] * 15
        assert len(await drawers.movements(session.id)) == 5
        assert (await drawers.totals(session.id)).expected == xof(0)


def test_a_project_without_the_cash_app_is_refused_with_the_app_to_add(monkeypatch: pytest.MonkeyPatch) -> None:
    from django.apps import apps

    installed = apps.is_installed
    monkeypatch.setattr(apps, "is_installed", lambda name: name != CASH_APP and installed(name))
    with pytest.raises(ConfigurationError, match=r"'paycore_cash.backends.django': add it to INSTALLED_APPS"):
        DjangoDrawerStorage(DjangoPaymentRepository(SQLITE_ALIAS))

"""The shipped migrations match the models, and upgrading keeps every payment findable."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import anyio.to_thread
import pytest
from django.core.management import call_command
from django.db import connections
from django.db.migrations.executor import MigrationExecutor

from paycore.money import Money
from paycore.status import PaymentStatus
from paycore_django.storage import DjangoPaymentRepository

BEFORE_REFERENCES = ("paycore_django", "0001_initial")
WHEN = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)

# (id, tenant, external id) of the payments a database held before references had their own table
STORED = [
    ("pay_a", "chez-awa", "gw-1"),
    ("pay_b", "le-baobab", "gw-1"),
    ("pay_c", None, "gw-1"),
    ("pay_d", None, "gw-2"),
    ("pay_e", "chez-awa", None),
]


@pytest.mark.django_db
def test_the_migrations_match_the_models() -> None:
    call_command("makemigrations", "paycore_django", "--check", "--dry-run", verbosity=0)


def _migrate(using: str, targets: list[tuple[str, str]] | None = None) -> Any:
    """Migrate database ``using`` to ``targets`` (default: every app's latest); the state reached."""
    executor = MigrationExecutor(connections[using])
    plan = targets if targets is not None else executor.loader.graph.leaf_nodes()
    return executor.migrate(plan)


def _store_payments_before_references(using: str) -> None:
    """Migrate back to ``0001_initial`` and store :data:`STORED` as that schema's rows."""
    state = _migrate(using, [BEFORE_REFERENCES])
    payments = state.apps.get_model("paycore_django", "Payment").objects.using(using)
    amount = Money.of("5000", "XOF")
    for payment_id, tenant, external_id in STORED:
        payments.create(
            id=payment_id, tenant=tenant, provider="fake", order_id=f"order-{payment_id}",
            status=PaymentStatus.PROCESSING.value, currency=amount.currency, amount=amount.minor_units,
            external_id=external_id, version=1, event_count=1, created_at=WHEN, updated_at=WHEN,
        )  # fmt: skip


@pytest.mark.anyio
async def test_payments_stored_before_references_are_found_by_their_external_id(using: str) -> None:
    try:
        await anyio.to_thread.run_sync(_store_payments_before_references, using)
    finally:
        await anyio.to_thread.run_sync(_migrate, using)
    repository = DjangoPaymentRepository(using)
    for payment_id, tenant, external_id in STORED:
        if external_id is None:
            continue
        found = await repository.get_by_external_id("fake", tenant, external_id)
        assert (found.id, found.external_id, found.references) == (payment_id, external_id, ())
        assert found.provider_state == {}
    untouched = await repository.get("pay_e")
    assert (untouched.external_id, untouched.references) == (None, ())

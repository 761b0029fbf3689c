"""``payment_event`` receivers of a call made inside the caller's own transaction: the caller never hangs.

Receivers run on another thread, on connections of their own, and the call
waits for them. Inside ``transaction.atomic()`` (or ``ATOMIC_REQUESTS``), a
receiver writing a row the caller's transaction holds waits for its commit
while the caller waits for the receiver: on PostgreSQL, a hang for good.
:func:`paycore_django.blocking_flow` waits for them some seconds at most there
(:data:`paycore_django.callers.RECEIVER_WAIT`), says so, and the receivers
finish, in order, once the transaction has ended.
"""

from __future__ import annotations

import copy
import logging
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Final

import pytest
from django.contrib.auth import get_user_model
from django.db import connections, transaction
from django.test import override_settings

import paycore.testing.fake
import paycore_django
from paycore.money import Money
from paycore.status import Outcome
from paycore.testing.fake import FakeProvider
from paycore_django import callers, models
from paycore_django.conf import DjangoBlockingPaymentFlow
from paycore_django.signals import payment_event

POSTGRES_ALIAS: Final = "postgres"
"""The PostgreSQL database alias of the Django tests' settings (``conftest.py``)."""

OUTER: Final = "outer"
"""A SQLite database of the caller's own, which a test holds a transaction on (paycore does not use it)."""

WAIT: Final = 0.5
"""The receivers' wait of these tests, in seconds (paycore's is 5)."""

STUCK: Final = 15.0
"""How long a receiver of these tests waits, at most, for what the caller holds: without the limit, the call
took that long (a hang, were it not for the receiver's own limit)."""


@pytest.fixture(autouse=True)
def short_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    """Receivers waited for :data:`WAIT` seconds; the once-per-process warning not given yet; no thread has
    receivers still running from another test."""
    monkeypatch.setattr(callers, "RECEIVER_WAIT", WAIT)
    monkeypatch.setattr(callers, "_warned", threading.Event())
    monkeypatch.setattr(callers, "_chains", {})


@pytest.fixture
def outer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, django_db_blocker: Any) -> Iterator[str]:
    """The alias :data:`OUTER`, a SQLite file of its own, for the test's while (connected now: a transactional
    test case refuses a connection to a database it was not told of)."""
    database = copy.deepcopy(connections["default"].settings_dict)
    database["NAME"] = str(tmp_path / "outer.db")
    monkeypatch.setitem(connections.settings, OUTER, database)
    with django_db_blocker.unblock():
        connections[OUTER].connect()
    try:
        yield OUTER
    finally:
        connections[OUTER].close()
        del connections[OUTER]


@pytest.fixture
def receiver() -> Iterator[Callable[[Callable[..., None]], None]]:
    """Connect a ``payment_event`` receiver for the test's while."""

    def connect(function: Callable[..., None]) -> None:
        payment_event.connect(function, sender=models.Payment, dispatch_uid="test-in-transactions", weak=False)

    yield connect
    payment_event.disconnect(dispatch_uid="test-in-transactions", sender=models.Payment)


def blocking(using: str, backend: str = "asyncio") -> Any:
    """``settings.PAYCORE`` with a fake provider on database ``using``: enter it for ``blocking_flow()``."""
    return override_settings(
        PAYCORE={
            "repository": {"type": "django", "using": using},
            "providers": {"fake": {"type": "fake", "webhook_secret": "whsec_in_transactions"}},
        },
        PAYCORE_DJANGO={"PLUGINS": [paycore.testing.fake], "BLOCKING_BACKEND": backend},
    )


def eventually(condition: Callable[[], bool], timeout: float = 10.0) -> bool:
    """Whether ``condition()`` comes true within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, databases=[POSTGRES_ALIAS])
def test_a_receiver_writing_a_row_the_callers_transaction_holds_no_longer_hangs_it(
    receiver: Callable[[Callable[..., None]], None], caplog: pytest.LogCaptureFixture
) -> None:
    users = get_user_model().objects.db_manager(POSTGRES_ALIAS)
    clerk = users.create_user("clerk")

    def mark_paid(sender: Any, event: Any, payment: Any, **kwargs: Any) -> None:
        with connections[POSTGRES_ALIAS].cursor() as cursor:  # without paycore's limit: fail, not hang for good
            cursor.execute(f"SET lock_timeout = '{int(STUCK * 1000)}ms'")
        users.filter(pk=clerk.pk).update(first_name="paid")

    receiver(mark_paid)
    caplog.set_level(logging.INFO, logger="paycore_django")
    with blocking(POSTGRES_ALIAS):
        flow = paycore_django.blocking_flow()
        assert isinstance(flow, DjangoBlockingPaymentFlow)
        started = time.monotonic()
        with transaction.atomic(using=POSTGRES_ALIAS):
            users.filter(pk=clerk.pk).update(last_name="at the till")  # the request now holds the clerk's row
            checkout = flow.create_payment(amount=Money.of("5000", "XOF"), provider="fake", order_id="o-1")
            took = time.monotonic() - started
        assert took < STUCK / 2
        assert eventually(lambda: users.get(pk=clerk.pk).first_name == "paid")  # once the request committed
    assert "paycore is called inside a transaction on database(s) 'postgres'" in caplog.text
    assert f"of payment {checkout.payment.id} still run after {WAIT} s" in caplog.text
    assert "failed on event" not in caplog.text  # no receiver failed


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_a_payments_events_after_a_stuck_receiver_are_told_behind_it_in_order_from_any_thread(
    using: str,
    backend: str,
    outer: str,
    receiver: Callable[[Callable[..., None]], None],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The payment's later events, of the same call or of a later one made outside the transaction by another
    thread (a webhook's request), are told after the stuck one: told first, a webhook's "succeeded" was then
    overwritten on the order by the earlier events' "processing". Another payment's are not held back."""
    release = threading.Event()
    seen: list[tuple[str, str, int]] = []
    stuck: list[str] = []

    def held_back(sender: Any, event: Any, payment: Any, **kwargs: Any) -> None:
        if not stuck:
            stuck.append(event.payment_id)
            release.wait(STUCK)  # waits for what the caller holds until it has committed
        seen.append((event.payment_id, event.kind, event.sequence))

    receiver(held_back)
    with blocking(using, backend):
        flow = paycore_django.blocking_flow()
        provider = flow.flow.provider("fake")
        assert isinstance(provider, FakeProvider)
        provider.script("initiate", "pending")
        started = time.monotonic()
        with transaction.atomic(using=outer):
            checkout = flow.create_payment(amount=Money.of("5000", "XOF"), provider="fake", order_id="o-2")
        took = time.monotonic() - started
        body, headers = provider.webhook(checkout.payment.id, outcome=Outcome.SUCCEEDED)
        webhook = threading.Thread(target=flow.handle_webhook, args=("fake", body, headers))
        webhook.start()  # another request's thread, outside any transaction: told behind, and waits for it
        provider.script("initiate", "approve")
        other = flow.create_payment(amount=Money.of("700", "XOF"), provider="fake", order_id="o-3")
        assert [p for p, _, _ in seen] == [other.payment.id] * other.payment.event_count  # not held back
        release.set()  # the caller's transaction has ended
        webhook.join(STUCK)
        events = flow.list_events(checkout.payment.id)
        assert eventually(lambda: len([p for p, _, _ in seen if p == checkout.payment.id]) == len(events))
    assert took < STUCK / 2
    assert [entry for entry in seen if entry[0] == checkout.payment.id] == [
        (event.payment_id, event.kind, event.sequence) for event in events
    ]
    assert caplog.text.count("still run after") == 1


def test_outside_a_transaction_receivers_are_waited_for_as_long_as_they_run(
    using: str, receiver: Callable[[Callable[..., None]], None], caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[str] = []

    def slow(sender: Any, event: Any, payment: Any, **kwargs: Any) -> None:
        time.sleep(WAIT * 2)
        seen.append(threading.current_thread().name)

    receiver(slow)
    with blocking(using):
        checkout = paycore_django.blocking_flow().create_payment(
            amount=Money.of("5000", "XOF"), provider="fake", order_id="o-4"
        )
    assert len(seen) == checkout.payment.event_count
    assert "still run after" not in caplog.text
    assert "inside a transaction" not in caplog.text


def test_the_warning_needs_a_transaction_and_a_receiver_and_is_given_once(
    outer: str,
    receiver: Callable[[Callable[..., None]], None],
    caplog: pytest.LogCaptureFixture,
    django_db_blocker: Any,
) -> None:
    caplog.set_level(logging.WARNING, logger="paycore_django")
    found: dict[str, object] = {}
    with django_db_blocker.unblock():
        with transaction.atomic(using=outer):
            found["no receiver"] = callers.caller_transaction()
        receiver(lambda **kwargs: None)
        found["no transaction"] = callers.caller_transaction()
        with transaction.atomic(using=outer):
            held = callers.caller_transaction()
            again = callers.caller_transaction()
    assert found == {"no receiver": None, "no transaction": None}
    assert held is not None
    assert again is not None
    assert held.aliases == (OUTER,)
    assert caplog.text.count("paycore is called inside a transaction on database(s) 'outer'") == 1


def test_a_transaction_begun_by_turning_autocommit_off_counts_as_one(outer: str, django_db_blocker: Any) -> None:
    """Only ``atomic()`` blocks were seen: a caller that turned autocommit off waited for its receivers without
    limit, one of them waiting for a row it held."""
    with django_db_blocker.unblock():
        connections[outer].ensure_connection()
        transaction.set_autocommit(False, using=outer)
        try:
            held = callers.transactions_held()
        finally:
            transaction.rollback(using=outer)
            transaction.set_autocommit(True, using=outer)
        after = callers.transactions_held()
    assert OUTER in held
    assert OUTER not in after


def test_the_threads_telling_a_payments_events_are_not_daemons_so_the_interpreter_lets_them_end() -> None:
    """Started from the flow's event loop thread (a daemon), they were daemons too: a script or a worker ending
    after a call made inside its transaction killed the receivers still running, and the events behind them."""
    daemons: list[bool] = []

    def start() -> None:
        assert callers.send_in_order(lambda: None, "pay_x") is None  # nothing running for it: not started here
        record = lambda: daemons.append(threading.current_thread().daemon)  # noqa: E731
        started = callers._enqueue("pay_x", record, only_behind=False)
        assert started is not None
        started[0].wait(5)

    starter = threading.Thread(target=start, daemon=True)
    starter.start()
    starter.join(5)
    assert daemons == [False]
    assert eventually(lambda: "pay_x" not in callers._chains)  # its last send ended: nothing kept

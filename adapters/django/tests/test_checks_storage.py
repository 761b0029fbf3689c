"""System checks of what paycore's storage needs from the project: W002, E005, and E001 for the storage.

* ``paycore_django.W002``: ``ATOMIC_REQUESTS`` on the SQLite database paycore
  writes to, with a ``transaction_mode`` that locks it at ``BEGIN``.
* ``paycore_django.E005``: a provider that keeps data of its own beside the
  flow's Django repository (as the cash drawers do, in a Django app of their
  own) and cannot; here a provider of the test's own plugin, which needs a
  Django app.
* ``paycore_django.E001``: the repository ``django``, or an idempotency store
  ``django``, names a database alias the project does not have.
* ``paycore_django.W004`` and ``W005``: ``DATABASE_ROUTERS`` keep paycore's
  models off the database paycore uses, or send them to another one.
"""

from __future__ import annotations

from io import StringIO
from typing import Any, Final

import pytest
from django.apps import apps
from django.conf import settings
from django.core.checks import CheckMessage
from django.core.management import call_command
from django.test import override_settings
from paycore_django_test_databases import SECOND_ALIAS, atomic_requests_on

from paycore import hookimpl
from paycore.errors import ConfigurationError
from paycore.hookspecs import ProviderRegistrar
from paycore.providers import Provider, ProviderContext
from paycore_django.checks import (
    check_atomic_requests,
    check_database_routers,
    check_paycore_settings,
    check_sqlite_transaction_mode,
)

TILL_APP: Final = "shop.tills"
"""The Django app the ``till`` provider keeps its data in (not installed in the test project)."""


class TillProvider(Provider):
    """A provider that keeps data of its own beside the flow's Django repository, in the app its ``app`` names.

    Built without a repository (as the checks build providers for their
    settings), it needs nothing; a ``currency`` other than XOF is refused.
    """

    name = "till"

    def __init__(self, context: ProviderContext) -> None:
        super().__init__(context)
        if context.settings.get("currency", "XOF") != "XOF":
            raise ConfigurationError(f"provider {context.code!r}: currency must be 'XOF'")
        app = context.settings.get("app", TILL_APP)
        if context.repository is not None and not apps.is_installed(app):
            raise ConfigurationError(f"tills are kept by the Django app {app!r}: add it to INSTALLED_APPS")


class TillPlugin:
    """Registers provider type ``till``."""

    @hookimpl
    def paycore_register_providers(self, register: ProviderRegistrar) -> None:
        register(TillProvider)


TILL_PLUGIN = {"PLUGINS": [TillPlugin()]}


def ids(messages: list[CheckMessage]) -> list[str]:
    return [str(message.id) for message in messages]


def checked(paycore: Any) -> list[CheckMessage]:
    with override_settings(PAYCORE=paycore, PAYCORE_DJANGO=TILL_PLUGIN):
        return check_paycore_settings()


# -- E005: data beside the repository ----------------------------------------------------------


def test_a_provider_that_cannot_keep_its_data_beside_the_django_repository_is_e005() -> None:
    found = checked({"tenants": {"chez-awa": {"providers": {"counter": {"type": "till"}}}}})
    assert ids(found) == ["paycore_django.E005"]
    assert "'counter'" in found[0].msg
    assert "chez-awa" in found[0].msg
    assert repr(TILL_APP) in found[0].msg
    assert "INSTALLED_APPS" in str(found[0].hint)


def test_manage_py_check_fails_on_a_provider_whose_django_app_is_missing() -> None:
    from django.core.management.base import SystemCheckError

    paycore = {"providers": {"counter": {"type": "till"}}}
    with override_settings(PAYCORE=paycore, PAYCORE_DJANGO=TILL_PLUGIN), pytest.raises(SystemCheckError) as error:
        call_command("check", databases=[])  # no database asked: Django 6.1 would ask each one
    assert "paycore_django.E005" in str(error.value)


def test_once_its_django_app_is_installed_the_provider_passes() -> None:
    missing = {"providers": {"counter": {"type": "till"}}}
    installed = {"providers": {"counter": {"type": "till", "app": "paycore_django"}}}
    assert (ids(checked(missing)), checked(installed)) == (["paycore_django.E005"], [])


def test_settings_the_provider_refuses_anyway_are_e004_and_only_the_storage_is_e005() -> None:
    providers = {"bad": {"type": "till", "currency": "EUR"}, "counter": {"type": "till"}}
    found = checked({"providers": providers})
    assert ids(found) == ["paycore_django.E004", "paycore_django.E005"]
    assert "'bad'" in found[0].msg
    assert "'counter'" in found[1].msg


def test_beside_another_repository_type_the_provider_is_built_without_storage() -> None:
    providers = {"counter": {"type": "till"}}
    on_memory = checked({"repository": "memory", "providers": providers})
    on_django = checked({"repository": "django", "providers": providers})
    assert (on_memory, ids(on_django)) == ([], ["paycore_django.E005"])


def test_a_django_repository_on_an_unknown_database_is_e001() -> None:
    found = checked({"repository": {"type": "django", "using": "payments"}})
    assert ids(found) == ["paycore_django.E001"]
    assert "'payments'" in found[0].msg


def test_a_django_idempotency_store_on_an_unknown_database_is_e001() -> None:
    found = checked({"idempotency": {"type": "django", "using": "nope"}})
    assert ids(found) == ["paycore_django.E001"]
    assert "idempotency store 'django'" in found[0].msg
    assert "'nope'" in found[0].msg
    assert "PAYCORE['idempotency']" in str(found[0].hint)


def test_a_django_idempotency_store_behind_another_one_is_checked_too() -> None:
    found = checked({"repository": "memory", "idempotency": ["memory", {"type": "django", "using": "nope"}]})
    assert ids(found) == ["paycore_django.E001"]
    assert "'nope'" in found[0].msg


def test_a_django_idempotency_store_on_a_known_database_passes() -> None:
    stores = ["django", {"type": "django", "using": "postgres"}]
    assert [checked({"idempotency": store}) for store in stores] == [[], []]


# -- W002: ATOMIC_REQUESTS on SQLite -----------------------------------------------------------


@pytest.fixture
def atomic_requests(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """The ``default`` database (SQLite, ``IMMEDIATE``) with ``ATOMIC_REQUESTS``; tests may change it further."""
    database: dict[str, Any] = settings.DATABASES["default"]
    assert database["OPTIONS"]["transaction_mode"] == "IMMEDIATE"
    monkeypatch.setitem(database, "ATOMIC_REQUESTS", True)
    monkeypatch.setitem(database, "OPTIONS", dict(database["OPTIONS"]))
    return database


def atomic_warnings(paycore: Any) -> list[CheckMessage]:
    with override_settings(PAYCORE=paycore):
        return check_atomic_requests()


def test_atomic_requests_on_the_immediate_sqlite_database_paycore_writes_to_is_w002(
    atomic_requests: dict[str, Any],
) -> None:
    found = atomic_warnings({})
    assert ids(found) == ["paycore_django.W002"]
    assert "'default'" in found[0].msg
    assert "IMMEDIATE" in found[0].msg
    assert "ATOMIC_REQUESTS" in str(found[0].hint)


def test_w002_of_a_second_alias_names_the_decorator_that_exempts_a_view_on_it(monkeypatch: pytest.MonkeyPatch) -> None:
    with atomic_requests_on(SECOND_ALIAS, monkeypatch, 30):
        found = atomic_warnings({})
    assert [message.msg.split(" is SQLite")[0] for message in found] == [f"database {SECOND_ALIAS!r}"]
    assert f"@transaction.non_atomic_requests(using={SECOND_ALIAS!r})" in str(found[0].hint)


@pytest.mark.parametrize("mode", ["immediate", "EXCLUSIVE"])
def test_every_mode_that_locks_at_begin_is_w002(atomic_requests: dict[str, Any], mode: str) -> None:
    atomic_requests["OPTIONS"]["transaction_mode"] = mode
    assert ids(atomic_warnings({})) == ["paycore_django.W002"]


def test_w002_needs_atomic_requests_a_locking_mode_and_paycore_writing_there(
    atomic_requests: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    found = {"locked": ids(atomic_warnings({}))}
    found["paycore in memory"] = ids(atomic_warnings({"repository": "memory", "idempotency": "memory"}))
    found["paycore on PostgreSQL"] = ids(atomic_warnings({"repository": {"type": "django", "using": "postgres"}}))
    monkeypatch.delitem(atomic_requests["OPTIONS"], "transaction_mode")
    found["deferred"] = ids(atomic_warnings({}))
    monkeypatch.setitem(atomic_requests, "ATOMIC_REQUESTS", False)
    found["no ATOMIC_REQUESTS"] = ids(atomic_warnings({}))
    assert found == {
        "locked": ["paycore_django.W002"],
        "paycore in memory": [],
        "paycore on PostgreSQL": [],
        "deferred": [],
        "no ATOMIC_REQUESTS": [],
    }


def test_manage_py_check_shows_w002(atomic_requests: dict[str, Any]) -> None:
    out, err = StringIO(), StringIO()
    with override_settings(PAYCORE={}):
        call_command("check", databases=[], stdout=out, stderr=err)
    assert "paycore_django.W002" in out.getvalue() + err.getvalue()


# -- W003: SQLite's default (deferred) transactions ---------------------------------------------


@pytest.fixture
def sqlite_options(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """The ``default`` database's OPTIONS (SQLite, ``IMMEDIATE``), a copy tests may change."""
    database: dict[str, Any] = settings.DATABASES["default"]
    options = dict(database["OPTIONS"])
    monkeypatch.setitem(database, "OPTIONS", options)
    return options


def mode_warnings(paycore: Any) -> list[CheckMessage]:
    with override_settings(PAYCORE=paycore):
        return check_sqlite_transaction_mode()


def test_sqlite_left_deferred_where_paycore_writes_is_w003(sqlite_options: dict[str, Any]) -> None:
    found = {"immediate": ids(mode_warnings({}))}
    sqlite_options["transaction_mode"] = "exclusive"
    found["exclusive"] = ids(mode_warnings({}))
    del sqlite_options["transaction_mode"]
    found["deferred"] = ids(mode_warnings({}))
    found["paycore in memory"] = ids(mode_warnings({"repository": "memory", "idempotency": "memory"}))
    sqlite_options["transaction_mode"] = "DEFERRED"
    found["deferred, named"] = ids(mode_warnings({}))
    assert found == {
        "immediate": [],
        "exclusive": [],
        "deferred": ["paycore_django.W003"],
        "paycore in memory": [],
        "deferred, named": ["paycore_django.W003"],
    }
    assert "IMMEDIATE" in str(mode_warnings({})[0].hint)


# -- W004, W005: DATABASE_ROUTERS ----------------------------------------------------------------


class PaymentsOn:
    """A router keeping app ``paycore_django`` on database ``alias`` (and off every other), as a project
    sending its payments to a database of their own writes it."""

    def __init__(self, alias: str) -> None:
        self.alias = alias

    def db_for_read(self, model: type[Any], **hints: Any) -> str | None:
        return self.alias if model._meta.app_label == "paycore_django" else None

    def db_for_write(self, model: type[Any], **hints: Any) -> str | None:
        return self.alias if model._meta.app_label == "paycore_django" else None

    def allow_migrate(self, db: str, app_label: str, **hints: Any) -> bool | None:
        return db == self.alias if app_label == "paycore_django" else None


class KeysOff:
    """A router that migrates every model of paycore but its idempotency keys on database ``alias``."""

    def __init__(self, alias: str) -> None:
        self.alias = alias

    def allow_migrate(self, db: str, app_label: str, model_name: str | None = None, **hints: Any) -> bool | None:
        return False if (db, model_name) == (self.alias, "idempotencyrecord") else None


def routed(paycore: Any, *routers: object) -> list[CheckMessage]:
    with override_settings(PAYCORE=paycore, DATABASE_ROUTERS=list(routers)):
        return check_database_routers()


def test_a_router_that_keeps_paycore_off_the_database_paycore_uses_is_w004_and_w005() -> None:
    found = routed({}, PaymentsOn("postgres"))
    assert ids(found) == ["paycore_django.W004", "paycore_django.W005"]
    assert "'default'" in found[0].msg
    assert "Payment, PaymentReference, Refund, PaymentEvent, WebhookReceipt, IdempotencyRecord" in found[0].msg
    assert "migrate paycore_django --database default" in str(found[0].hint)
    assert "'postgres'" in found[1].msg
    assert "'default'" in found[1].msg
    assert "'using': 'postgres'" in str(found[1].hint)


def test_paycore_on_the_database_its_router_sends_it_to_passes() -> None:
    assert routed({"repository": {"type": "django", "using": "postgres"}}, PaymentsOn("postgres")) == []


def test_idempotency_keys_kept_off_their_database_are_w004_naming_that_model_only() -> None:
    found = {
        "keys beside the payments": routed({}, KeysOff("default")),
        "keys elsewhere": routed({"idempotency": {"type": "django", "using": "postgres"}}, KeysOff("default")),
    }
    assert {case: ids(messages) for case, messages in found.items()} == {
        "keys beside the payments": ["paycore_django.W004"],
        "keys elsewhere": [],
    }
    assert "models IdempotencyRecord on database 'default'" in found["keys beside the payments"][0].msg


def test_without_a_router_any_alias_paycore_uses_passes() -> None:
    assert [routed(paycore) for paycore in ({}, {"repository": {"type": "django", "using": "postgres"}})] == [[], []]


def test_manage_py_check_shows_the_router_warnings() -> None:
    out, err = StringIO(), StringIO()
    with override_settings(PAYCORE={}, DATABASE_ROUTERS=[PaymentsOn("postgres")]):
        call_command("check", databases=[], stdout=out, stderr=err)
    assert "paycore_django.W004" in out.getvalue() + err.getvalue()
    assert "paycore_django.W005" in out.getvalue() + err.getvalue()

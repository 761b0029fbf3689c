"""System checks (stable ids) and the management commands."""

from __future__ import annotations

import io
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from django.core.checks import CheckMessage
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import override_settings

import paycore.testing.fake
import paycore_django
from paycore.blocking import BlockingPaymentFlow
from paycore.money import Money
from paycore.status import PaymentStatus
from paycore_django.checks import check_migrations, check_paycore_settings
from paycore_dummy import generate_secret

SECRET = generate_secret()
FAKE_PLUGIN = {"PLUGINS": ["paycore.testing.fake"]}


def ids(messages: list[CheckMessage]) -> list[str]:
    return [str(message.id) for message in messages]


def checked(paycore: Any, django_options: dict[str, Any] | None = None) -> list[CheckMessage]:
    with override_settings(PAYCORE=paycore, PAYCORE_DJANGO=django_options or {}):
        return check_paycore_settings()


# -- checks -----------------------------------------------------------------------------------


def test_a_valid_configuration_passes() -> None:
    # Drawers beside a memory repository: the cash plugin's Django app is not in this project (that is E005).
    paycore = {
        "repository": "memory",
        "providers": {"fake": {"type": "fake", "webhook_secret": SECRET}, "cash": {"type": "cash"}},
    }
    assert checked(paycore, FAKE_PLUGIN) == []


def test_an_unknown_key_is_e001() -> None:
    found = checked({"repositroy": "django"})
    assert ids(found) == ["paycore_django.E001"]
    assert "repositroy" in found[0].msg


def test_a_plugin_that_cannot_be_imported_is_e001() -> None:
    assert ids(checked({}, {"PLUGINS": ["no.such.module"]})) == ["paycore_django.E001"]


def test_an_unknown_django_option_is_e001_naming_the_known_ones() -> None:
    found = checked({}, {"WEBHOOK_ALLOWED_IP": ["203.0.113.7"]})
    assert ids(found) == ["paycore_django.E001"]
    assert found[0].msg.startswith("settings.PAYCORE_DJANGO is invalid:")
    assert "'WEBHOOK_ALLOWED_IP'" in found[0].msg
    assert "WEBHOOK_ALLOWED_IPS" in found[0].msg


def test_a_django_option_with_a_wrong_value_is_e001() -> None:
    found = checked({}, {"TRUSTED_PROXIES": ["not-an-address"]})
    assert ids(found) == ["paycore_django.E001"]
    assert "'not-an-address'" in found[0].msg


def test_a_provider_filter_that_is_not_callable_is_e001() -> None:
    found = checked({}, {"PROVIDER_FILTER": {"cash": False}})
    assert ids(found) == ["paycore_django.E001"]
    assert "PAYCORE_DJANGO['PROVIDER_FILTER'] must be a callable" in found[0].msg


def test_an_unknown_provider_type_is_e002_naming_the_tenant() -> None:
    found = checked({"tenants": {"chez-awa": {"providers": {"wave": {"type": "wavee"}}}}})
    assert ids(found) == ["paycore_django.E002"]
    assert "'wave'" in found[0].msg
    assert "chez-awa" in found[0].msg
    assert "wavee" in found[0].msg


def test_a_webhook_provider_without_its_secret_is_e003() -> None:
    found = checked({"providers": {"fake": {"type": "fake"}}}, FAKE_PLUGIN)
    assert ids(found) == ["paycore_django.E003"]


@pytest.mark.parametrize("secret", ["", "   ", "\n"])
def test_an_empty_webhook_secret_is_e003(secret: str) -> None:
    found = checked({"providers": {"fake": {"type": "fake", "webhook_secret": secret}}}, FAKE_PLUGIN)
    assert ids(found) == ["paycore_django.E003"]
    assert "'webhook_secret'" in found[0].msg


def dummy(**settings: Any) -> dict[str, Any]:
    """A dummy provider's settings: valid, but for ``settings`` (``None`` removes one)."""
    provider = {"type": "dummy", "base_url": "http://127.0.0.1:9", "api_key": "sk_test_key", "webhook_secret": SECRET}
    provider.update(settings)
    return {key: value for key, value in provider.items() if value is not None}


def test_a_valid_dummy_provider_passes_without_reaching_its_gateway() -> None:
    assert checked({"tenants": {"chez-awa": {"providers": {"wave": dummy()}}}}) == []


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        ({"webhook_secret": "not-a-whsec-secret"}, "'webhook_secret'"),
        ({"base_url": None}, "'base_url'"),
        ({"gateway": "in-process"}, "'base_url'"),
        ({"api_key": None}, "'api_key'"),
        ({"method": "cheque"}, "method"),
        ({"timeout": -1}, "'timeout'"),
        ({"webhook_secret": 12345}, "'webhook_secret'"),
        ({"webhook_secret": ["whsec_a", "whsec_b"]}, "'webhook_secret'"),
        ({"webhook_secret": b"whsec_bytes"}, "'webhook_secret'"),
    ],
)
def test_provider_settings_the_flow_refuses_are_e004_naming_tenant_provider_and_setting(
    settings: dict[str, Any], named: str
) -> None:
    found = checked({"tenants": {"chez-awa": {"providers": {"wave": dummy(**settings)}}}})
    assert ids(found) == ["paycore_django.E004"]
    assert "'wave'" in found[0].msg
    assert "'chez-awa'" in found[0].msg
    assert named in found[0].msg
    assert SECRET not in found[0].msg
    assert "sk_test_key" not in found[0].msg


def test_each_refused_provider_is_reported() -> None:
    paycore = {
        "providers": {"wave": dummy(base_url=None), "fake": {"type": "fake", "webhook_secret": " "}},
        "tenants": {"chez-awa": {"providers": {"wave": dummy(api_key=None), "ok": dummy()}}},
    }
    found = checked(paycore, FAKE_PLUGIN)
    assert sorted(ids(found)) == ["paycore_django.E003", "paycore_django.E004", "paycore_django.E004"]


def test_an_unknown_repository_type_is_e001() -> None:
    found = checked({"repository": "djagno"})
    assert ids(found) == ["paycore_django.E001"]
    assert "djagno" in found[0].msg


def test_a_provider_without_webhooks_needs_no_secret() -> None:
    assert checked({"repository": "memory", "providers": {"cash": {"type": "cash"}}}) == []


def test_no_check_message_shows_a_secret() -> None:
    paycore = {"providers": {"wave": {"type": "wavee", "api_key": "sk_live_do_not_show"}}}
    assert all("sk_live_do_not_show" not in str(message) for message in checked(paycore))


def test_the_checks_run_with_manage_py_check() -> None:
    from django.core.management.base import SystemCheckError

    with override_settings(PAYCORE={"providers": {"x": {"type": "wavee"}}}), pytest.raises(SystemCheckError) as error:
        call_command("check", databases=[])  # no database asked: Django 6.1 would ask each one
    assert "paycore_django.E002" in str(error.value)


def test_manage_py_check_fails_on_provider_settings_the_flow_refuses() -> None:
    from django.core.management.base import SystemCheckError

    bad = {"providers": {"wave": dummy(webhook_secret="whsec_")}}
    with override_settings(PAYCORE=bad), pytest.raises(SystemCheckError) as error:
        call_command("check", databases=[])  # no database asked: Django 6.1 would ask each one
    assert "paycore_django.E004" in str(error.value)


def test_unapplied_migrations_are_w001(transactional_db: None) -> None:
    assert check_migrations(databases=["default"]) == []
    call_command("migrate", "paycore_django", "zero", verbosity=0)
    try:
        found = check_migrations(databases=["default"])
    finally:
        call_command("migrate", "paycore_django", verbosity=0)
    assert ids(found) == ["paycore_django.W001"]
    assert "migrate paycore_django" in str(found[0].hint)


def test_w001_looks_for_the_migrate_command_without_evaluating_what_callers_hold(transactional_db: None) -> None:
    """A caller holding a lazy object as ``self`` (its factory fails) neither breaks the check nor hides W001."""
    from django.utils.functional import SimpleLazyObject

    evaluated: list[str] = []

    def factory() -> object:
        evaluated.append("factory")
        raise LookupError("not configured")

    def checked_by_a_caller_holding(self: object) -> list[CheckMessage]:
        return check_migrations(databases=["default"])

    call_command("migrate", "paycore_django", "zero", verbosity=0)
    try:
        found = checked_by_a_caller_holding(SimpleLazyObject(factory))
    finally:
        call_command("migrate", "paycore_django", verbosity=0)
    assert ids(found) == ["paycore_django.W001"]
    assert evaluated == []


def test_migrate_applying_paycores_migrations_does_not_warn_they_are_missing(transactional_db: None) -> None:
    call_command("migrate", "paycore_django", "zero", verbosity=0)
    printed, errors = io.StringIO(), io.StringIO()
    try:
        call_command("migrate", "paycore_django", skip_checks=False, verbosity=1, stdout=printed, stderr=errors)
    finally:
        call_command("migrate", "paycore_django", verbosity=0)
    assert "Applying paycore_django.0001" in printed.getvalue(), "the migrations were applied"
    assert "W001" not in printed.getvalue() + errors.getvalue()
    assert check_migrations(databases=["default"]) == [], "applied"


# -- manage.py paycore -------------------------------------------------------------------------


def dummy_settings() -> dict[str, Any]:
    provider = {
        "type": "dummy",
        "base_url": "http://127.0.0.1:9",
        "api_key": "sk_test_secret",
        "webhook_secret": SECRET,
    }
    return {"providers": {"wave": provider}}


def test_paycore_check_reads_the_projects_settings(capsys: pytest.CaptureFixture[str]) -> None:
    with override_settings(PAYCORE=dummy_settings()):
        call_command("paycore", "check")
    out = capsys.readouterr().out
    assert "configuration OK" in out
    assert "wave" in out
    assert "django" in out
    assert "sk_test_secret" not in out
    assert SECRET not in out


def test_paycore_states_prints_the_state_machine(capsys: pytest.CaptureFixture[str]) -> None:
    call_command("paycore", "states")
    assert "processing" in capsys.readouterr().out


def test_a_failing_paycore_subcommand_raises_command_error(capsys: pytest.CaptureFixture[str]) -> None:
    with override_settings(PAYCORE={"providers": {"x": {"type": "wavee"}}}), pytest.raises(CommandError):
        call_command("paycore", "check")
    assert "wavee" in capsys.readouterr().err


def test_paycore_writes_to_the_streams_call_command_is_given(capsys: pytest.CaptureFixture[str]) -> None:
    out, err = io.StringIO(), io.StringIO()
    call_command("paycore", "states", stdout=out, stderr=err)
    assert "processing" in out.getvalue()
    assert "\n\n\n" not in out.getvalue()  # each line once, ended once
    assert capsys.readouterr().out == ""


def test_a_mistyped_paycore_option_is_a_command_error_naming_the_words(capsys: pytest.CaptureFixture[str]) -> None:
    err = io.StringIO()
    with pytest.raises(CommandError, match=r"^paycore report --tenant nobody exited with status 2$") as raised:
        call_command("paycore", "report", "--tenant", "nobody", stderr=err)
    assert raised.value.returncode == 2
    assert "--day" in err.getvalue()


def test_paycore_into_a_buffer_whose_reader_is_gone_is_a_command_error() -> None:
    class Gone(io.StringIO):
        def write(self, text: str) -> int:
            raise BrokenPipeError

    with pytest.raises(CommandError, match="exited with status"):  # it was AttributeError: no fileno
        call_command("paycore", "states", stdout=Gone())


def test_paycore_called_in_two_threads_writes_each_ones_output_to_its_own_buffer() -> None:
    outputs = [io.StringIO() for _ in range(6)]
    before = sys.stdout

    def run(out: io.StringIO) -> None:
        call_command("paycore", "states", stdout=out)

    threads = [threading.Thread(target=run, args=(out,)) for out in outputs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sys.stdout is before
    assert len({out.getvalue() for out in outputs}) == 1
    assert "processing" in outputs[0].getvalue()


# -- manage.py paycore_expire_stale ---------------------------------------------------------------


@pytest.fixture
def flow(transactional_db: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[BlockingPaymentFlow]:
    """A blocking flow on the Django ORM, served as the process's flow to the commands."""
    config = {"providers": {"fake": {"type": "fake", "webhook_secret": SECRET}}, "repository": "django"}
    blocking = BlockingPaymentFlow.from_config(config, plugins=[paycore.testing.fake]).open()
    monkeypatch.setattr(paycore_django, "blocking_flow", lambda: blocking)
    yield blocking
    blocking.close()


def test_expire_stale_expires_what_the_provider_says_is_unpaid(
    flow: BlockingPaymentFlow, capsys: pytest.CaptureFixture[str]
) -> None:
    fake = flow.flow.provider("fake")
    assert isinstance(fake, paycore.testing.fake.FakeProvider)
    fake.script("initiate", "pending")
    payment_id = flow.create_payment(amount=Money.of("5000", "XOF"), provider="fake", order_id="T1").payment.id
    time.sleep(0.05)
    call_command("paycore_expire_stale", "--older-than", "0.01")
    assert flow.get_payment(payment_id).status is PaymentStatus.EXPIRED
    out = capsys.readouterr().out
    assert f"{payment_id} expired" in out
    assert "1 payment(s) changed" in out


def test_expire_stale_leaves_fresh_payments(flow: BlockingPaymentFlow, capsys: pytest.CaptureFixture[str]) -> None:
    fake = flow.flow.provider("fake")
    assert isinstance(fake, paycore.testing.fake.FakeProvider)
    fake.script("initiate", "pending")
    payment_id = flow.create_payment(amount=Money.of("5000", "XOF"), provider="fake", order_id="T1").payment.id
    call_command("paycore_expire_stale", "--older-than", "3600")
    assert flow.get_payment(payment_id).status is PaymentStatus.PROCESSING
    assert "0 payment(s) changed" in capsys.readouterr().out


def test_expire_stale_refuses_a_bad_duration() -> None:
    with pytest.raises(CommandError, match="positive"):
        call_command("paycore_expire_stale", "--older-than", "-5")


def test_a_plugin_path_that_is_no_dotted_path_is_e001() -> None:
    # A ValueError ('') or TypeError ('.relative') from importlib came out of 'manage.py check'.
    for path in ("", ".relative"):
        found = checked({}, {"PLUGINS": [path]})
        assert ids(found) == ["paycore_django.E001"]
        assert f"PAYCORE_DJANGO['PLUGINS'][0] = {path!r} is not a dotted path" in found[0].msg


def test_a_plugin_module_that_raises_while_imported_is_e001(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "paycore_boom_at_import.py").write_text("raise RuntimeError('boom at import')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    found = checked({}, {"PLUGINS": ["paycore_boom_at_import"]})
    assert ids(found) == ["paycore_django.E001"]
    assert (
        "'paycore_boom_at_import' cannot be imported: importing it raised RuntimeError: boom at import" in found[0].msg
    )

"""Secrets never appear in a repr, a log line, an event or an error message."""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest

from paycore import Money, RefundUpdate, serialization
from paycore.errors import ConfigurationError, PaycoreError
from paycore.flow import PaymentFlow
from paycore.secrets import Secret, hide_secrets
from paycore.status import Outcome, RefundStatus
from paycore.testing.fake import FakeProvider

pytestmark = pytest.mark.anyio

XOF_5000 = Money.of("5000", "XOF")
SECRET = "whsec-test"
"""The webhook secret the ``flow`` fixture gives the fake provider."""


async def test_no_event_repr_or_log_line_of_a_whole_lifecycle_holds_the_secret(
    flow: PaymentFlow, fake: FakeProvider, caplog: pytest.LogCaptureFixture
) -> None:
    errors: list[str] = []
    with caplog.at_level(logging.DEBUG):
        fake.script("initiate", "pending")
        payment = (await flow.create_payment(amount=XOF_5000, provider="fake", order_id="o")).payment
        body, headers = fake.webhook(payment.id, outcome=Outcome.SUCCEEDED, secret="forged")
        try:
            await flow.handle_webhook("fake", body, headers)
        except PaycoreError as error:
            errors.append(f"{error!r} {error}")
        fake.settle(payment.id, Outcome.SUCCEEDED)
        body, headers = fake.webhook(payment.id)
        await flow.handle_webhook("fake", body, headers)
        fake.script("refund", "lost")
        refund = await flow.refund(payment.id, amount=Money.of("1000", "XOF"))
        try:
            await flow.capture(payment.id)
        except PaycoreError as error:
            errors.append(f"{error!r} {error}")
        body, headers = fake.webhook(
            payment.id, refunds=[RefundUpdate(RefundStatus.SUCCEEDED, refund.id, amount=refund.amount)]
        )
        await flow.handle_webhook("fake", body, headers)
        events = await flow.list_events(payment.id)
        stored = await flow.get_payment(payment.id)
    assert len(errors) == 2
    rendered = [repr(e) for e in events] + [serialization.dumps(e) for e in events]
    rendered += [repr(stored), serialization.dumps(stored), repr(flow), repr(fake), *errors]
    rendered += [record.getMessage() for record in caplog.records] + [caplog.text]
    assert not [text for text in rendered if SECRET in text]


def test_a_configuration_error_never_shows_a_secret(make_flow: Callable[..., PaymentFlow]) -> None:
    with pytest.raises(ConfigurationError) as raised:
        make_flow({"providers": {"card": {"type": "unknown-gateway", "api_key": SECRET}}})
    assert SECRET not in str(raised.value)
    assert SECRET not in repr(raised.value)


URL = "redis://:s3cret@cache/0"
"""A URL with its password, short enough to be quoted whole."""


@pytest.mark.parametrize(
    ("config", "environ"),
    [
        ({"repository": {"type": URL}}, {}),
        ({"idempotency": {"type": URL}}, {}),
        ({"providers": {"till": {"type": URL}}}, {}),
        ({"providers": {"till": {"type": [URL]}}}, {}),
        ({"tenants": {URL: {}}}, {}),
        ({"webhook_max_bytes": URL}, {}),
        ({"plugins_blocked": [URL, 1]}, {}),
        ({"idempotency_settings": {URL: {1: "x"}}}, {}),
        ({}, {"PAYCORE_PROVIDER_TIMEOUT": URL}),
        ({}, {"PAYCORE_IDEMPOTENCY_REQUIRED": URL}),
        (URL, {}),
        (None, {"PAYCORE_CONFIG": URL}),
    ],
    ids=[
        "repository type",
        "idempotency type",
        "provider type",
        "provider type in a list",
        "tenant name",
        "webhook_max_bytes",
        "plugins_blocked",
        "idempotency_settings name",
        "provider_timeout",
        "idempotency_required",
        "file",
        "PAYCORE_CONFIG",
    ],
)
def test_a_url_under_the_wrong_key_is_quoted_without_its_password(config: object, environ: dict[str, str]) -> None:
    with pytest.raises(ConfigurationError) as refused:
        PaymentFlow.from_config(config, environ=environ)  # type: ignore[arg-type]  # what a user may give
    assert "s3cret" not in str(refused.value)
    assert "redis://:***@cache/0" in str(refused.value)


def test_a_plugins_setting_of_seconds_given_a_url_is_quoted_without_its_password() -> None:
    from paycore.secrets import Settings

    with pytest.raises(ConfigurationError, match="'timeout' must be a number of seconds") as refused:
        Settings({"timeout": URL}, owner="provider 'wave'").seconds("timeout", 30)
    assert "s3cret" not in str(refused.value)


async def test_settings_given_to_a_provider_keep_the_secret_masked(flow: PaymentFlow) -> None:
    settings = flow.provider("fake").settings
    assert SECRET not in repr(settings)
    assert SECRET not in str(dict(settings))
    assert settings.secret("webhook_secret") == SECRET


def test_signing_keys_are_masked_and_other_keys_are_not() -> None:
    from paycore.secrets import Settings

    settings = Settings({"signing_key": "sk-123", "hmac_keys": ["k1", "k2"], "counter_key": "paycore:calls"})
    shown = repr(settings)
    assert "sk-123" not in shown
    assert "k1" not in shown
    assert settings["counter_key"] == "paycore:calls", "a key *name* is not a secret"
    assert settings.secret("signing_key") == "sk-123"


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        (["whsec-a", "whsec-b"], "a list"),
        (1234, "a number"),
        (12.5, "a number"),
        (True, "true or false"),
        ({"key": "whsec-a"}, "a table"),
    ],
)
def test_a_secret_that_is_not_a_string_is_refused_without_showing_it(value: object, kind: str) -> None:
    from paycore.secrets import Settings

    settings = Settings({"webhook_secret": value}, owner="provider 'wave'")
    expected = rf"^provider 'wave': secret 'webhook_secret' must be a string, not {kind}$"
    with pytest.raises(ConfigurationError, match=expected) as bad:  # named as the file wrote it, not as a tuple
        settings.secret("webhook_secret")
    assert "whsec-a" not in str(bad.value)
    assert "1234" not in str(bad.value)


@pytest.mark.parametrize(
    "url",
    [
        "postgresql+psycopg://paycore@127.0.0.1:1/db?password=s3cret",
        "postgresql://paycore:s3cret@db.internal/pos?sslmode=require&sslpassword=s3cret",
        "redis://127.0.0.1:6379/0?password=s3cret&db=1",
        "rediss://:s3cret@cache.internal:6380/0",
        "postgresql+psycopg://paycore:ab/s3cret@db.internal/pos",  # a generated password: base64 holds "/"
        "rediss://:p@s3cret@cache.internal:6380/0",
        "redis://:x/s3cret@cache.internal:6380/0?db=1",
        "postgresql://paycore:s3cr#t-s3cret@db.internal:5432/pos",
        "redis://:ab?s3cret@cache.internal:6379/0",
        "postgresql+psycopg://paycore:pass word s3cret@db.internal/paycore",  # a space: the URL still works
        "redis://127.0.0.1:6379/0?password=a b s3cret&db=1",
        "redis://127.0.0.1:6379/0?password=ab#s3cret",  # a raw '#' in the password: no fragment of it shows
        "redis://127.0.0.1:6379/0?password=ab;s3cret&db=1",
        "postgresql+psycopg://shop:Pa55@w0rd/s3cret@127.0.0.1:1/pos",  # an "@" then a "/" in the password
        "postgresql+psycopg://paycore:p@ss word s3cret@db.internal/paycore",  # an "@", then a space
        "redis://:tok@en/x@s3cret@cache.internal:6379/0",
        "redis://default:ab://s3cret@cache.internal:6379/0",  # a scheme-like "x://" inside the password
        "postgresql+psycopg://paycore:x1+://s3cret@db.internal/paycore",
        "redis://127.0.0.1:6379/0?p%61ssword=s3cret&db=1",  # a parameter name percent-encoded
        "postgresql+psycopg://admin@pos-server:s3cret@pos-server.example.net/paycore",  # a user holding "@"
    ],
)
def test_a_database_or_redis_password_is_hidden_in_the_user_part_or_the_query(url: str) -> None:
    from paycore.secrets import redact_url
    from paycore_sqlalchemy.engine import safe_url

    shown = [redact_url(url)]
    if url.startswith("postgresql"):
        shown.append(safe_url(url))
    if url.startswith("postgresql+psycopg"):  # the driver the workspace installs
        shown.append(repr(PaymentFlow.from_config({"repository": url}, environ={}).config))
    for text in shown:
        assert "s3cret" not in text
        assert "***" in text


@pytest.mark.parametrize("where", ["repository", "idempotency"], ids=["a repository", "an idempotency store"])
@pytest.mark.parametrize("value", ["paycore:s3cret@db.internal/paycore", ":s3cret@127.0.0.1:6379/0"])
def test_a_url_without_its_scheme_is_refused_without_showing_it(where: str, value: str) -> None:
    with pytest.raises(ConfigurationError, match="nor a URL with its scheme") as bad:
        PaymentFlow.from_config({where: value}, environ={})
    assert "s3cret" not in str(bad.value)


def test_a_secret_given_as_a_table_is_masked_in_the_configurations_repr() -> None:
    from paycore.config import PaycoreConfig

    config = PaycoreConfig.from_mapping(
        {
            "providers": {"fake": {"type": "fake", "api_key": {"live": "s3cret"}, "webhook_secret": "whsec-s3cret"}},
            "repository": {"type": "memory", "connect": {"password": "s3cret"}},
        }
    )
    assert "s3cret" not in repr(config)


def test_secrets_within_arrays_are_masked_in_the_configurations_repr() -> None:
    from paycore.config import PaycoreConfig

    config = PaycoreConfig.from_mapping(
        {
            "repository": {
                "type": "memory",
                "nodes": [{"host": "h1", "password": "s3cret"}, [{"token": "s3cret"}]],
                "replicas": ["postgresql://u:s3cret@r1/db"],
            },
        }
    )
    shown = repr(config)
    assert "s3cret" not in shown
    assert "'host': 'h1'" in shown
    assert "postgresql://u:***@r1/db" in shown


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("a://b: " + "a" * 100_000 + "@", "a://b:***@"),
        ("a://b:" + "x" * 100_000, "a://b:" + "x" * 100_000),
        ("?a" * 50_000, "?a" * 50_000),
        ("a" * 100_000, "a" * 100_000),
        ("a://b:c@h " * 12_000, "a://b:***@h " * 12_000),
        ("a://b:c@" * 12_000, "a://b:***@"),  # URLs run together: one password up to the last "@", never too little
        ("a://b:" + "a://" * 25_000, "a://b:" + "a://" * 25_000),
        ("a://a:" * 16_000, "a://a:" * 16_000),
    ],
    ids=[
        "spaces-then-an-at",
        "no-at",
        "many-queries",
        "a-blob",
        "many-urls",
        "many-urls-run-together",
        "schemes-run-together",
        "users-run-together",
    ],
)
def test_secrets_in_a_long_text_are_hidden_in_time_linear_in_its_length(text: str, shown: str) -> None:
    # Each of these took seconds to minutes (a pattern backtracking over the whole text from every start).
    from paycore.secrets import redact_url

    assert redact_url(text) == shown


def test_a_user_holding_an_at_hides_more_of_a_line_never_less() -> None:
    # A password may follow a user holding "@" (admin@server:s3cret@host), so a URL without a password whose line
    # goes on to an "@" has the text up to it hidden: never too little, at the cost of the port and database here.
    from paycore.secrets import redact_url

    line = "connecting to postgresql://admin@db.internal:5432/pos as admin@example.com"
    assert redact_url(line) == "connecting to postgresql://admin@db.internal:***@example.com"


def test_a_secret_query_parameter_inside_another_ones_value_is_hidden() -> None:
    from paycore.secrets import redact_url

    shown = redact_url("https://pos.example/cb?next=/back?api_key=s3cret&table=4")
    assert shown == "https://pos.example/cb?next=/back?api_key=***&table=4"


def test_a_gateway_s_text_echoing_secrets_is_quoted_with_each_hidden_even_one_inside_another() -> None:
    key, longer = Secret("sk_live_abc"), Secret("sk_live_abc123")
    text = "API key sk_live_abc123 was revoked; key sk_live_abc too; sk_live_ab is no secret"
    assert hide_secrets(text, [key, longer, Secret("")]) == (
        "API key *** was revoked; key *** too; sk_live_ab is no secret"
    )

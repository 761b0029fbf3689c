"""The adapter's settings, as a flow reads them: a wrong one is a ConfigurationError naming it, never a password."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest

from paycore.errors import ConfigurationError
from paycore.flow import PaymentFlow
from paycore_sqlalchemy import engine

PASSWORD = "S3cretPw"
URL = f"postgresql://paycore:{PASSWORD}@db.internal/paycore"


def _refused(repository: dict[str, Any]) -> str:
    with pytest.raises(ConfigurationError) as refused:
        PaymentFlow.from_config({"repository": {"type": "sqlalchemy", **repository}}, environ={})
    return str(refused.value)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("pool_size", "must be a whole number of zero or more"),
        ("max_overflow", "must be a whole number of zero or more"),
        ("pool_timeout", "must be a number of seconds"),
        ("auto_upgrade", "must be true or false"),
        ("pool_pre_ping", "must be true or false"),
    ],
)
def test_a_url_under_another_setting_is_quoted_without_its_password(name: str, expected: str) -> None:
    message = _refused({"url": "sqlite://", name: URL})
    assert f"sqlalchemy: {name} {expected}, not 'postgresql://" in message
    assert PASSWORD not in message


@pytest.mark.parametrize("raw", [0, 1e-7, "0.0009", 3601, 1e300, "nan", -1])
def test_a_pool_timeout_outside_a_millisecond_to_an_hour_is_refused(raw: object) -> None:
    # 1e300 overflowed the pool's wait (a raw OverflowError as connections ran short); 1e-7 never waited.
    assert _refused({"url": "sqlite://", "pool_timeout": raw}).startswith(
        "sqlalchemy: pool_timeout must be a positive number of seconds, at least 0.001 and at most 3600 (an hour)"
    )


@pytest.mark.parametrize("name", ["pool_size", "max_overflow"])
@pytest.mark.parametrize("raw", [True, 1.9, "1.5", float("inf"), "1e400", "nan", -1, "-3", "ten", None])
def test_a_pool_size_that_is_not_a_whole_number_of_zero_or_more_is_refused_naming_it(name: str, raw: object) -> None:
    # inf was "could not be built: OverflowError"; True and 1.9 were taken as 1.
    assert _refused({"url": "sqlite://", name: raw}).startswith(
        f"sqlalchemy: {name} must be a whole number of zero or more, not "
    )


@pytest.mark.parametrize(("raw", "taken"), [(0, 0), (5, 5), ("12", 12), ("10.0", 10), (20.0, 20)])
def test_a_pool_size_that_is_a_whole_number_is_taken(raw: object, taken: int) -> None:
    from paycore_sqlalchemy.settings import engine_options

    assert engine_options({"pool_size": raw, "max_overflow": raw}) == {"pool_size": taken, "max_overflow": taken}


@pytest.mark.parametrize("raw", [0.001, "30", 3600])
def test_a_pool_timeout_within_its_range_is_taken(raw: object) -> None:
    from paycore_sqlalchemy.settings import engine_options

    assert engine_options({"pool_timeout": raw}) == {"pool_timeout": float(raw)}


def test_a_url_whose_port_is_not_a_number_is_a_configuration_error_without_its_password() -> None:
    # It was a raw ValueError from SQLAlchemy (int() of the port) when the flow was built.
    message = _refused({"url": f"postgresql://paycore:{PASSWORD}@db.internal:notaport/paycore"})
    assert "'url' 'postgresql://paycore:***@db.internal:notaport/paycore' is not a database URL" in message
    assert "its port is not a number" in message
    assert PASSWORD not in message


@pytest.mark.parametrize("refused", ["provider", "idempotency store"])
def test_a_refused_flow_gives_back_its_share_of_the_database_engine(
    tmp_path: Path, refused: str, anyio_backend: str
) -> None:
    """A flow refused after its SQL repository (and store) were built holds no engine: a later flow on the same
    database is the engine's only user, and closing it closes the database's connections."""
    url = f"sqlite:///{tmp_path / 'pos.db'}"
    config: dict[str, Any] = {"repository": url}
    if refused == "provider":
        config["providers"] = {"cash": {"type": "cash", "no_such_setting": 1}}
    else:
        config["idempotency"] = ["sqlalchemy", "redis"]
        config["idempotency_settings"] = {"redis": {"url": "redis://127.0.0.1/0", "transport": "bogus"}}

    def held() -> list[int]:  # the shares of this database's engine that flows hold
        return [count for key, (_, count, _) in engine._ENGINES.items() if str(tmp_path) in key[0]]

    for _ in range(3):
        with pytest.raises(ConfigurationError):
            PaymentFlow.from_config(config, environ={})
    assert held() == [], "a refused flow kept a share of the engine"

    async def use() -> None:
        async with PaymentFlow.from_config({"repository": url}, environ={}) as flow:
            await flow.list_payments()

    anyio.run(use, backend=anyio_backend)
    assert held() == [], "the good flow's close left the engine open"


@pytest.mark.postgres
@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", {"connect_timeout": "10", "keepalives_idle": "30", "tcp_user_timeout": "30000"}),
        ("?connect_timeout=3&tcp_user_timeout=5000", {"connect_timeout": "3", "tcp_user_timeout": "5000"}),
    ],
)
def test_postgresql_connections_time_out_on_a_silent_server_unless_the_url_says_otherwise(
    postgres_url: str, query: str, expected: dict[str, str]
) -> None:
    """Without them a partitioned or frozen server held each unit of work, its worker thread and its pooled
    connection for the operating system's TCP timeouts (minutes to hours), whatever the caller's deadline."""
    from paycore_sqlalchemy import Database

    assert "?" not in postgres_url
    database = Database(postgres_url + query)
    try:
        parameters = database.run_sync(lambda connection: connection.connection.dbapi_connection.info.get_parameters())
    finally:
        database.close()
    assert {name: parameters.get(name) for name in expected} == expected


@pytest.mark.parametrize(
    ("url", "environ", "given"),
    [
        ("postgresql+psycopg://db/pay", {}, set(engine.LIBPQ_TIMEOUTS)),
        ("postgresql+psycopg://db/pay?keepalives_idle=300", {}, set(engine.LIBPQ_TIMEOUTS) - {"keepalives_idle"}),
        ("postgresql+psycopg:///?service=paydb", {}, set()),
        ("postgresql+psycopg://db/pay", {"PGSERVICE": "paydb"}, set()),
        ("postgresql+psycopg://db/pay", {"PGCONNECT_TIMEOUT": "45"}, set(engine.LIBPQ_TIMEOUTS) - {"connect_timeout"}),
    ],
)
def test_libpq_timeouts_never_override_what_a_service_file_or_libpqs_environment_sets(
    url: str, environ: dict[str, str], given: set[str]
) -> None:
    """Keywords given to libpq win over its service file and its environment variables: a pg_service.conf
    asking 45 s to connect over a slow link got 10, and failed connects."""
    from sqlalchemy.engine import make_url

    assert set(engine.libpq_timeouts(make_url(url), environ)) == given

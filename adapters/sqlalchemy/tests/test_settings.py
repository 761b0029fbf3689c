"""The adapter's settings, as a flow reads them: a wrong one is a ConfigurationError naming it, never a password."""

from __future__ import annotations

from typing import Any

import pytest

from paycore.errors import ConfigurationError
from paycore.flow import PaymentFlow

PASSWORD = "S3cretPw"
URL = f"postgresql://paycore:{PASSWORD}@db.internal/paycore"


def _refused(repository: dict[str, Any]) -> str:
    with pytest.raises(ConfigurationError) as refused:
        PaymentFlow.from_config({"repository": {"type": "sqlalchemy", **repository}}, environ={})
    return str(refused.value)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("pool_size", "must be a number"),
        ("max_overflow", "must be a number"),
        ("pool_timeout", "must be a number"),
        ("auto_upgrade", "must be true or false"),
        ("pool_pre_ping", "must be true or false"),
    ],
)
def test_a_url_under_another_setting_is_quoted_without_its_password(name: str, expected: str) -> None:
    message = _refused({"url": "sqlite://", name: URL})
    assert f"sqlalchemy: {name} {expected}, not 'postgresql://" in message
    assert PASSWORD not in message


def test_a_url_whose_port_is_not_a_number_is_a_configuration_error_without_its_password() -> None:
    # It was a raw ValueError from SQLAlchemy (int() of the port) when the flow was built.
    message = _refused({"url": f"postgresql://paycore:{PASSWORD}@db.internal:notaport/paycore"})
    assert "'url' 'postgresql://paycore:***@db.internal:notaport/paycore' is not a database URL" in message
    assert "its port is not a number" in message
    assert PASSWORD not in message

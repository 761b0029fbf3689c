"""Test support for paycore and for any package that plugs into it.

* Conformance suites, pytest base classes that a provider, repository or
  idempotency store package subclasses in its own tests:
  :class:`RepositoryConformance`, :class:`IdempotencyStoreConformance`,
  :class:`ProviderConformance`.
* :class:`FakeProvider` (module :mod:`paycore.testing.fake`, a plugin): a
  scriptable in-process provider with signed webhooks.
* Record builders in :mod:`paycore.testing.records`.
* A provider author's kit: :class:`Delivery`, :func:`sign_standard_webhook`,
  :func:`standard_webhook_delivery` and :class:`DeliveryInbox` (module
  :mod:`paycore.testing.webhooks`) to build, sign and collect webhook
  deliveries; :class:`ScriptedAnswers` and :func:`interrupt_next_call` to
  script how a provider's calls end.
* Hypothesis strategies for fuzzing what a provider parses (module
  :mod:`paycore.testing.fuzz`, needs hypothesis): :data:`TRICKY_VALUES`,
  :func:`json_values`.
* Throwaway servers on 127.0.0.1 for tests and benchmarks:
  :class:`~paycore.testing.postgres.PostgresServer`,
  :class:`~paycore.testing.redis.RedisServer`, on the launcher of
  :mod:`paycore.testing.servers`.

The names above are imported when first used, so ``import paycore.testing.servers``
(or ``.postgres``, ``.redis``) works without pytest; the conformance suites need
pytest (``pip install paycore[test]``). To export a new name, add it to
``_EXPORTS`` (name -> module), the ``TYPE_CHECKING`` imports and ``__all__``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from paycore.testing.fake import FakeProvider
    from paycore.testing.idempotency_suite import IdempotencyStoreConformance
    from paycore.testing.provider_suite import ProviderConformance
    from paycore.testing.repository_suite import RepositoryConformance
    from paycore.testing.scripting import ScriptedAnswers, interrupt_next_call
    from paycore.testing.webhooks import (
        Delivery,
        DeliveryInbox,
        generate_standard_webhook_secret,
        sign_standard_webhook,
        standard_webhook_delivery,
    )

_EXPORTS: Final = {
    "FakeProvider": "paycore.testing.fake",
    "IdempotencyStoreConformance": "paycore.testing.idempotency_suite",
    "ProviderConformance": "paycore.testing.provider_suite",
    "ScriptedAnswers": "paycore.testing.scripting",
    "interrupt_next_call": "paycore.testing.scripting",
    "RepositoryConformance": "paycore.testing.repository_suite",
    "Delivery": "paycore.testing.webhooks",
    "DeliveryInbox": "paycore.testing.webhooks",
    "generate_standard_webhook_secret": "paycore.testing.webhooks",
    "sign_standard_webhook": "paycore.testing.webhooks",
    "standard_webhook_delivery": "paycore.testing.webhooks",
}


def __getattr__(name: str) -> Any:
    """Import an exported name from its module on first use."""
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'paycore.testing' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "Delivery",
    "DeliveryInbox",
    "FakeProvider",
    "IdempotencyStoreConformance",
    "ProviderConformance",
    "RepositoryConformance",
    "ScriptedAnswers",
    "generate_standard_webhook_secret",
    "interrupt_next_call",
    "sign_standard_webhook",
    "standard_webhook_delivery",
]

"""Test support for paycore and for any package that plugs into it.

* Conformance suites, pytest base classes that a provider, repository or
  idempotency store package subclasses in its own tests:
  :class:`RepositoryConformance`, :class:`IdempotencyStoreConformance`,
  :class:`ProviderConformance`.
* :class:`FakeProvider` (module :mod:`paycore.testing.fake`, a plugin): a
  scriptable in-process provider with signed webhooks.
* Record builders in :mod:`paycore.testing.records`.

Importing this module needs pytest (``pip install paycore[test]``).
"""

from paycore.testing.fake import FakeProvider
from paycore.testing.idempotency_suite import IdempotencyStoreConformance
from paycore.testing.provider_suite import ProviderConformance
from paycore.testing.repository_suite import RepositoryConformance

__all__ = ["FakeProvider", "IdempotencyStoreConformance", "ProviderConformance", "RepositoryConformance"]

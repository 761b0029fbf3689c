"""In-memory storage for paycore: a repository and an idempotency store.

Everything lives in the process and is lost when it exits: for tests, demos
and single-process tools. Both are safe under concurrent tasks and threads.
"""

from paycore_memory.idempotency import MemoryIdempotencyStore
from paycore_memory.repository import MemoryRepository

__all__ = ["MemoryIdempotencyStore", "MemoryRepository"]

"""The SQLSTATEs (PostgreSQL's error codes) that every SQL storage of paycore reads alike.

The SQLAlchemy and Django adapters each turn a driver's error into a paycore
error by its SQLSTATE; these are the codes both read, kept in one place so that
neither tells a lost race or a read-only database differently from the other.
"""

from __future__ import annotations

from typing import Final

__all__ = ["LOST_RACE", "READ_ONLY"]

LOST_RACE: Final = frozenset({"40001", "40P01"})
"""A serialization failure and a deadlock: the transaction lost a race, nothing changed, retrying is safe."""

READ_ONLY: Final = "25006"
"""A write in a read-only transaction (a hot standby after a failover, ``default_transaction_read_only``)."""

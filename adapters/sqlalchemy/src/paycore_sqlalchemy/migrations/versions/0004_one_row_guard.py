"""On PostgreSQL, a function with which a write refuses its own transaction when it changed no row.

A payment's ``UPDATE`` matches its row only at the version the write follows
(the version check). On PostgreSQL the adapter sends a unit's writes and its
``COMMIT`` together, in one round trip, so the check cannot wait for the row
count to come back: the ``UPDATE`` is sent as ``WITH paycore_changed AS (UPDATE
... RETURNING 1) SELECT paycore_expect_one_row(count(*)) FROM paycore_changed``, and this
function raises (SQLSTATE ``PC001``) when the count is not one. The error
aborts the transaction, so nothing the unit sent after it commits. Other
databases check the row count in the adapter, and need nothing here.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-05

"""

from collections.abc import Sequence

from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

GUARD = """
CREATE OR REPLACE FUNCTION paycore_expect_one_row(changed bigint) RETURNS integer
LANGUAGE plpgsql AS $guard$
BEGIN
    IF changed <> 1 THEN
        RAISE EXCEPTION USING
            ERRCODE = 'PC001',
            MESSAGE = format('paycore: a write changed %s rows where it must change one', changed),
            HINT = 'the row is not at the version the write follows, or is gone';
    END IF;
    RETURN 1;
END
$guard$
"""


def upgrade() -> None:
    """Upgrade schema: PostgreSQL gets ``paycore_expect_one_row``."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute(GUARD)


def downgrade() -> None:
    """Downgrade schema: drop ``paycore_expect_one_row``."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS paycore_expect_one_row(bigint)")

"""Trial outcome ``response_lost`` (tachyphylaxis: a response later lost on the same drug).

Revision ID: 0004
Revises: 0003
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BEFORE = ("no_response", "partial_response", "response", "remission", "intolerance", "unknown")
AFTER = (*BEFORE[:4], "response_lost", *BEFORE[4:])


def _allow(values: Sequence[str]) -> None:
    listed = ", ".join(f"'{v}'" for v in values)
    with op.batch_alter_table("treatments", recreate="auto") as batch_op:
        batch_op.drop_constraint(op.f("ck_treatments_outcome"), type_="check")
        batch_op.create_check_constraint(
            op.f("ck_treatments_outcome"), sa.text(f"outcome IN ({listed})")
        )


def upgrade() -> None:
    _allow(AFTER)


def downgrade() -> None:
    op.execute("UPDATE treatments SET outcome = 'unknown' WHERE outcome = 'response_lost'")
    _allow(BEFORE)

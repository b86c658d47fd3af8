"""Server-side review-UI sessions: logging out ends every copy of the cookie, and each login expires.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-05 08:00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add review_sessions."""
    op.create_table(
        "review_sessions",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_review_sessions_user_id", "review_sessions", ["user_id"], unique=False)
    op.create_index("ix_review_sessions_expires_at", "review_sessions", ["expires_at"], unique=False)


def downgrade() -> None:
    """Drop review_sessions."""
    op.drop_index("ix_review_sessions_expires_at", table_name="review_sessions")
    op.drop_index("ix_review_sessions_user_id", table_name="review_sessions")
    op.drop_table("review_sessions")

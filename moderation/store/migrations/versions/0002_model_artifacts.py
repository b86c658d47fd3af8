"""Model artifacts stored in the database, so every host can fetch the champion it is told to serve.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28 18:50:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add model_artifacts."""
    op.create_table(
        "model_artifacts",
        sa.Column("version", sa.String(length=64), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.Column("size_bytes", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["version"], ["model_versions.version"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("version"),
    )
    with op.batch_alter_table("model_versions", schema=None) as batch_op:
        batch_op.create_index("ix_model_versions_status", ["status"], unique=False)


def downgrade() -> None:
    """Drop model_artifacts."""
    with op.batch_alter_table("model_versions", schema=None) as batch_op:
        batch_op.drop_index("ix_model_versions_status")
    op.drop_table("model_artifacts")

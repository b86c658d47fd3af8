"""Drop indexes no query needs: each one was written on every checked comment.

comments: the single-column indexes on site_id, author_email, content_hash and user_ip. Every query the
app runs on those columns also filters on site_id, and a composite index starting with site_id serves it
(site_id + user_ip/content_hash/author_email/status); a bare site_id lookup (export, the foreign key) uses
any of those composites' first column. created_at and status stay: purge, stats and the all-sites queue
filter on them alone.
audit_log: the indexes on at and site_id; the app only looks events up by comment_id.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29 00:10:00

"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DROPPED = {
    "comments": {
        "ix_comments_site_id": ["site_id"],
        "ix_comments_author_email": ["author_email"],
        "ix_comments_content_hash": ["content_hash"],
        "ix_comments_user_ip": ["user_ip"],
    },
    "audit_log": {
        "ix_audit_log_at": ["at"],
        "ix_audit_log_site_id": ["site_id"],
    },
}


def upgrade() -> None:
    """Drop the redundant indexes."""
    for table, indexes in DROPPED.items():
        for name in indexes:
            op.drop_index(name, table_name=table)


def downgrade() -> None:
    """Recreate them."""
    for table, indexes in DROPPED.items():
        for name, columns in indexes.items():
            op.create_index(name, table, columns, unique=False)

"""The database tables, as SQLAlchemy 2 ORM classes. Alembic migrations in `migrations/` create them.

Portable between SQLite and PostgreSQL: JSON columns, timezone-aware timestamps stored in UTC,
no database-specific types. Change a table here *and* add a migration (`alembic revision`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

# SQLite only autoincrements INTEGER PRIMARY KEY; PostgreSQL wants BIGINT for tables that grow.
BigId = BigInteger().with_variant(Integer(), "sqlite")


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC timestamp on every database.

    SQLite has no time zones and hands back naive datetimes, which then refuse to compare with aware
    ones; this stores UTC and always returns aware UTC values. Naive input is taken to be UTC.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {dict[str, Any]: JSON, list[Any]: JSON}


class Site(Base):
    """A website that calls us. Only a hash of its API key is stored."""

    __tablename__ = "sites"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    url: Mapped[str] = mapped_column(String(500), default="")
    key_hash: Mapped[str] = mapped_column(String(64), unique=True, index=True)  # sha256 hex of the key
    key_hint: Mapped[str] = mapped_column(String(16), default="")  # first characters, for humans
    signing_secret: Mapped[str] = mapped_column(String(128), default="")  # HMAC for signed webhook requests
    callback_url: Mapped[str] = mapped_column(String(500), default="")
    callback_secret: Mapped[str] = mapped_column(String(128), default="")
    # thresholds, block/allow lists, rule switches: see policy.SiteSettings
    settings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class CommentRecord(Base):
    """Every checked comment, stored before we answer, with its verdict and current status."""

    __tablename__ = "comments"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    source: Mapped[str] = mapped_column(String(20), default="api")  # api | akismet
    content: Mapped[str] = mapped_column(Text)
    content_hash: Mapped[str] = mapped_column(String(64))  # of the normalised text
    author_name: Mapped[str] = mapped_column(String(500), default="")
    author_email: Mapped[str] = mapped_column(String(500), default="")
    author_url: Mapped[str] = mapped_column(String(2000), default="")
    user_ip: Mapped[str] = mapped_column(String(64), default="")
    user_agent: Mapped[str | None] = mapped_column(String(1000), nullable=True)
    referrer: Mapped[str] = mapped_column(String(2000), default="")
    permalink: Mapped[str] = mapped_column(String(2000), default="")
    comment_type: Mapped[str] = mapped_column(String(50), default="")
    language: Mapped[str] = mapped_column(String(50), default="")
    rendered_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    submitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    extra: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # other documented parameters
    is_test: Mapped[bool] = mapped_column(Boolean, default=False)  # never used for training
    decision: Mapped[str] = mapped_column(String(10))  # the automatic Decision
    score: Mapped[float | None] = mapped_column(Float, nullable=True)
    reasons: Mapped[list[Any]] = mapped_column(JSON, default=list)
    rules: Mapped[list[Any]] = mapped_column(JSON, default=list)
    model_version: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # the current state: starts as the decision, moderators change it (approve/hold/spam/discard/deleted)
    status: Mapped[str] = mapped_column(String(10), index=True)
    status_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # set by `moderation purge`: personal fields were blanked past retention (content and label stay)
    purged_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)

    site: Mapped[Site] = relationship()
    labels: Mapped[list[LabelRecord]] = relationship(back_populates="comment", order_by="LabelRecord.id")

    # The review queue lists by status; the rules look up recent comments by IP (flood), by normalised
    # text (duplicates) and by email (trusted commenters), always within one site. Every index is written
    # on every check: keep none that no query needs (migration 0003 dropped four single-column ones).
    __table_args__ = (
        Index("ix_comments_site_status_created", "site_id", "status", "created_at"),
        Index("ix_comments_site_ip_created", "site_id", "user_ip", "created_at"),
        Index("ix_comments_site_hash_created", "site_id", "content_hash", "created_at"),
        Index("ix_comments_site_email_status", "site_id", "author_email", "status"),
    )


class LabelRecord(Base):
    """A spam/ham label with its history: who said it, when, from where. The latest one wins."""

    __tablename__ = "labels"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    comment_id: Mapped[int] = mapped_column(ForeignKey("comments.id", ondelete="CASCADE"), index=True)
    label: Mapped[str] = mapped_column(String(4))  # spam | ham
    source: Mapped[str] = mapped_column(String(20))  # moderator | feedback | akismet
    actor: Mapped[str] = mapped_column(String(200), default="")  # user name or "site:<id>"
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)

    comment: Mapped[CommentRecord] = relationship(back_populates="labels")


class AuditEvent(Base):
    """Who did what, when, from what to what."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(50))
    site_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    comment_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True, index=True)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class ModelVersion(Base):
    """The model registry shared by every worker and host: which artifact is the champion."""

    __tablename__ = "model_versions"

    version: Mapped[str] = mapped_column(String(64), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    sha256: Mapped[str] = mapped_column(String(64))
    manifest: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # champion | candidate | retired | rejected (rolled back) | pruned (artifact deleted); see registry.py
    status: Mapped[str] = mapped_column(String(12), default="candidate", index=True)
    promoted_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class ModelArtifact(Base):
    """A registered model's artifact bytes, so every host sharing the database can fetch and verify it."""

    __tablename__ = "model_artifacts"

    version: Mapped[str] = mapped_column(
        String(64), ForeignKey("model_versions.version", ondelete="CASCADE"), primary_key=True
    )
    content: Mapped[bytes] = mapped_column(LargeBinary)
    size_bytes: Mapped[int] = mapped_column(Integer)


class User(Base):
    """A person who logs into the review UI."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(150), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(20), default="moderator")  # admin | moderator
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class ReviewSession(Base):
    """A review-UI login. The browser's signed cookie holds a random token, this row only its SHA-256:
    logging out deletes the row, which ends every copy of the cookie; `expires_at` ends it regardless."""

    __tablename__ = "review_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # sha256 hex of the cookie's token
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)


class WebhookDelivery(Base):
    """A signed callback to a site about a moderator's decision, retried with backoff."""

    __tablename__ = "webhook_deliveries"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id"), index=True)
    comment_id: Mapped[int] = mapped_column(BigInteger, index=True)
    url: Mapped[str] = mapped_column(String(500))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(12), default="pending", index=True)  # pending|delivered|failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    last_error: Mapped[str] = mapped_column(Text, default="")
    response_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)

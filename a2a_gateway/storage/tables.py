"""The database schema (the migrations create exactly this)."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

metadata = MetaData()

tasks = Table(
    "tasks",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("context_id", String(255), nullable=False),
    Column("owner", String(255), nullable=False),
    Column("state", String(32), nullable=False),
    Column("status", Text, nullable=False),
    # Microseconds since the epoch: sorts and compares the same way on every database.
    Column("status_ts", BigInteger, nullable=False),
    Column("metadata", Text, nullable=True),
    Column("created_us", BigInteger, nullable=False),
    Column("updated_us", BigInteger, nullable=False),
    Index("ix_tasks_owner_status_ts", "owner", "status_ts", "id"),
    Index("ix_tasks_context_id", "context_id"),
    Index("ix_tasks_state", "state"),
)

task_messages = Table(
    "task_messages",
    metadata,
    Column("task_id", String(64), ForeignKey("tasks.id", ondelete="CASCADE"), primary_key=True),
    Column("seq", Integer, primary_key=True),
    Column("message", Text, nullable=False),
)

task_artifacts = Table(
    "task_artifacts",
    metadata,
    Column("task_id", String(64), ForeignKey("tasks.id", ondelete="CASCADE"), primary_key=True),
    Column("artifact_id", String(255), primary_key=True),
    Column("seq", Integer, nullable=False),
    Column("artifact", Text, nullable=False),
)

task_push_configs = Table(
    "task_push_configs",
    metadata,
    Column("task_id", String(64), ForeignKey("tasks.id", ondelete="CASCADE"), primary_key=True),
    Column("id", String(255), primary_key=True),
    Column("config", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

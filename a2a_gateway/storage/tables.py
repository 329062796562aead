"""The database schema (the migrations create exactly this)."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    false,
    true,
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
    # The skill and request a task started from (JSON), so a paused task can be answered after a restart.
    Column("origin", Text, nullable=True),
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

users = Table(
    "users",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("email", String(254), nullable=False, unique=True),
    Column("password_hash", Text, nullable=False),
    Column("created_us", BigInteger, nullable=False),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("owner_id", String(255), nullable=False, index=True),
    Column("kind", String(16), nullable=False),
    Column("name", String(100), nullable=False),
    Column("lookup", String(32), nullable=False, index=True),
    Column("hashed", String(64), nullable=False, unique=True),
    Column("scopes", Text, nullable=False),
    Column("created_us", BigInteger, nullable=False),
    Column("expires_us", BigInteger, nullable=True),
    Column("revoked_us", BigInteger, nullable=True),
    Column("agent_id", String(64), nullable=True, index=True),
)

refresh_tokens = Table(
    "refresh_tokens",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("family_id", String(64), nullable=False, index=True),
    Column("user_id", String(64), nullable=False),
    Column("issued_us", BigInteger, nullable=False),
    Column("expires_us", BigInteger, nullable=False),
    Column("used_us", BigInteger, nullable=True),
    Column("revoked_us", BigInteger, nullable=True),
)

login_failures = Table(
    "login_failures",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("identifier", String(254), nullable=False, index=True),
    Column("at_us", BigInteger, nullable=False),
)

agents = Table(
    "agents",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("owner_id", String(255), nullable=False, index=True),
    Column("name", String(100), nullable=False),
    Column("description", Text, nullable=False),
    Column("endpoint", String(2048), nullable=False),
    Column("skills", Text, nullable=False),
    Column("tags", Text, nullable=False),
    Column("category", String(100), nullable=True, index=True),
    Column("metadata", Text, nullable=False),
    Column("price_per_task", BigInteger, nullable=False),
    Column("protocol_version", String(8), nullable=False),
    Column("reported_status", String(16), nullable=False),
    Column("last_heartbeat_us", BigInteger, nullable=True),
    Column("trust_score", Float, nullable=False),
    Column("search_text", Text, nullable=False),
    Column("created_us", BigInteger, nullable=False),
    Column("updated_us", BigInteger, nullable=False),
    Column("card_url", String(2048), nullable=True),
    Column("streaming", Boolean, nullable=False, server_default=true()),
    Column("call_failing", Boolean, nullable=False, server_default=false()),
    Column("latency_ms", Float, nullable=True),
    Column("probed_us", BigInteger, nullable=True),
    Column("probe_ok", Boolean, nullable=True),
)

agent_tags = Table(
    "agent_tags",
    metadata,
    Column("agent_id", String(64), ForeignKey("agents.id", ondelete="CASCADE"), primary_key=True),
    Column("tag", String(50), primary_key=True),
    Index("ix_agent_tags_tag", "tag", "agent_id"),
)

routed_calls = Table(
    "routed_calls",
    metadata,
    Column("task_id", String(64), primary_key=True),
    Column("requester", String(255), nullable=False, index=True),
    Column("agent_id", String(64), nullable=False, index=True),
    Column("skill_id", String(100), nullable=True),
    Column("upstream_task_id", String(255), nullable=True),
    Column("upstream_context_id", String(255), nullable=True),
    Column("started_us", BigInteger, nullable=False),
    Column("first_response_ms", Float, nullable=True),
    Column("finished_us", BigInteger, nullable=True),
    Column("outcome", String(32), nullable=True, index=True),
    Column("error", Text, nullable=True),
)

signing_keys = Table(
    "signing_keys",
    metadata,
    Column("kid", String(64), primary_key=True),
    Column("algorithm", String(16), nullable=False),
    # Base64 of the AES-256-GCM nonce and ciphertext of the PKCS#8 PEM: unreadable without the pepper.
    Column("private_key", Text, nullable=False),
    Column("public_jwk", Text, nullable=False),
    Column("created_us", BigInteger, nullable=False),
    Column("retires_us", BigInteger, nullable=True),
)

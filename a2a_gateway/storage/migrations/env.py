"""Alembic environment: runs on the connection the gateway hands over."""

from __future__ import annotations

from alembic import context

from a2a_gateway.storage.tables import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations with 'a2a-gateway db upgrade'")
context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()

"""Alembic's environment: migrations run on the connection the store hands over (never a URL of their own).

``streamhost.store.migrate`` puts that connection in ``config.attributes["connection"]``, already in a
transaction that holds the migration lock, so the whole upgrade commits or rolls back as one.
"""

from __future__ import annotations

from alembic import context

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=None, render_as_batch=connection.dialect.name == "sqlite")
with context.begin_transaction():
    context.run_migrations()

"""Alembic's script directory for the store: ``env.py`` and one module per revision under ``versions/``.

A new revision is a new module in ``versions/`` with the next number, ``down_revision`` set to the
newest one, and ``upgrade``/``downgrade`` written by hand in dialect-neutral Alembic operations (they run
on SQLite and PostgreSQL alike); ``schema.py`` then gets the same change.
"""

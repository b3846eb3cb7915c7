"""Persistence: SQLModel tables, engine and session, Alembic migrations. Imports nothing else of ownbench."""

"""Alembic environment: migrations always run on a connection handed over by the store, inside
the store's own migration lock, never from an ini file."""

from alembic import context

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=None,
    render_as_batch=True,
    version_table="canopy_schema_version",
)
with context.begin_transaction():
    context.run_migrations()

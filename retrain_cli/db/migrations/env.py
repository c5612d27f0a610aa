"""Alembic environment, run programmatically by `retrain_cli.db.schema`.

Online: `config.attributes["connection"]` is the connection to migrate.
Offline (`--sql`): renders the PostgreSQL DDL that `schemas.sql` holds.
"""

from alembic import context

from retrain_cli.db.models import Base

if context.is_offline_mode():
    context.configure(
        dialect_name="postgresql",
        target_metadata=Base.metadata,
        literal_binds=True,
        transaction_per_migration=False,
    )
    with context.begin_transaction():
        context.run_migrations()
else:
    connection = context.config.attributes["connection"]
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()

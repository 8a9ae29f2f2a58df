"""Alembic migrations build the schema the models describe, on the suite's backend."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect

from idp.store.models import Base


def test_migrated_schema_matches_models(app, backend_urls):
    engine = create_engine(backend_urls["database_url"])
    with engine.connect() as conn:
        context = MigrationContext.configure(conn)
        diff = [d for d in compare_metadata(context, Base.metadata)
                if not (isinstance(d, tuple) and d[0] == "remove_table"
                        and d[1].name == "alembic_version")]
        tables = set(inspect(conn).get_table_names())
    engine.dispose()
    assert diff == [], f"models and migrations differ: {diff}"
    assert {"accounts", "clients", "token_families", "tokens", "card_bindings",
            "audit_events", "consents", "schools"} <= tables


def test_upgrade_is_idempotent(backend_urls):
    from idp.store.migrate import upgrade_database

    upgrade_database(backend_urls["database_url"])
    upgrade_database(backend_urls["database_url"])

"""Alembic environment: always run on a connection handed in by :mod:`plusjeklas_tui.db`.

`plusjeklas db upgrade` opens that connection with SQLite foreign keys off (see
``db.migration_connection``), so batch table copies never cascade-delete child rows.
"""

from __future__ import annotations

from typing import Any, Literal

from alembic import context

import plusjeklas_tui.models  # noqa: F401 - registers the tables on the metadata
from plusjeklas_tui.models import metadata
from plusjeklas_tui.services.organisation_list import not_search_index
from plusjeklas_tui.sqltypes import EncryptedText, UTCDateTime

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through `plusjeklas db upgrade`, not the alembic CLI")


def render_item(type_: str, obj: Any, autogen_context: Any) -> str | Literal[False]:
    """Render the app's column types as their plain SQL type, so migrations never import them."""
    if type_ == "type" and isinstance(obj, EncryptedText):
        return "sa.Text()"
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


context.configure(
    connection=connection,
    render_item=render_item,
    target_metadata=metadata,
    compare_type=True,
    render_as_batch=connection.dialect.name == "sqlite",
    # the search index (migration 0002) is not on the models: never offer to drop it
    include_name=not_search_index,
)
with context.begin_transaction():
    context.run_migrations()

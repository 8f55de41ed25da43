"""Give the embedded database the spec's schema on its first start, so an agent has a live side to
compare with from the first minute."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from ..database.ddl import UPDATED_AT_FUNCTION, DDLRefused, execute_ddl, schema_ddl, updated_at_trigger_sql
from ..database.expressions import ExpressionError
from ..database.queries import query
from ..spec.file import SpecFileError, read_spec_bytes
from ..spec.reader import parse_spec

if TYPE_CHECKING:
    import psycopg

log = logging.getLogger("schema_architect.bootstrap")


async def apply_spec_if_empty(conn: psycopg.AsyncConnection, project: Path, spec_path: str | None) -> list[str]:
    """Create the spec's tables in an empty database (no tables in public); return what ran.

    Does nothing when the database already has tables or the spec cannot be read. All or nothing:
    one transaction.
    """
    import psycopg

    row = await (await conn.execute(query("public_tables_count.sql"))).fetchone()
    assert row is not None  # count(*) returns one row
    if row[0]:
        return []
    try:
        _, text, _ = read_spec_bytes(project, spec_path)
    except SpecFileError as exc:
        log.info("embedded database left empty: %s", exc)
        return []
    schema = parse_spec(text).schema
    try:
        statements = schema_ddl(schema)
    except ExpressionError as exc:  # the spec holds a default or CHECK that is not one expression
        log.warning("embedded database left empty: %s", exc)
        return []
    stamped = [t for t in schema.tables if t.column("updated_at") is not None and not t.managed_by]
    if stamped:
        statements += [UPDATED_AT_FUNCTION] + [updated_at_trigger_sql(t) for t in stamped]
    try:
        async with conn.transaction():
            await execute_ddl(conn, statements)  # each statement checked, then sent on its own
    except (psycopg.Error, DDLRefused) as exc:
        log.warning("could not apply the spec to the embedded database: %s", exc)
        return []
    log.info("applied the spec to the empty embedded database: %d statements", len(statements))
    return statements

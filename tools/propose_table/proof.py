"""Prove a proposed table: run its DDL on a real database inside a transaction that is always rolled
back, read what PostgreSQL made of it, import the generated SQLModel code in a child process, and diff
the two. Any difference is a bug in the generator, reported rather than hidden.

The proof can never commit: the connection must be idle (so the transaction is a real BEGIN, not a
savepoint inside someone else's transaction); every statement is checked to be one CREATE of a kind the
renderer builds (never COMMIT, ROLLBACK, SAVEPOINT...) and sent on its own (extended protocol); after each
one the transaction must still be open; after the rollback the table must not exist. The generated code
is only ever imported in the child process (``python -I``), never in the server.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel, Field

from ..database.ddl import (
    UPDATED_AT_FUNCTION,
    DDLRefused,
    dependency_order,
    execute_ddl,
    qualified,
    table_ddl,
    updated_at_trigger_sql,
)
from ..database.expressions import ExpressionError
from ..database.queries import query
from ..drift import Drift, diff_schemas
from ..models.codegen import sqlmodel_code
from ..models.reader import read_models
from ..schema.model import Schema, Table

if TYPE_CHECKING:
    import psycopg


class DryRun(BaseModel):
    ran: bool = Field(description="Whether the DDL was executed (inside a transaction, rolled back)")
    database: str | None = None
    ok: bool = Field(description="The DDL ran without error and the code matches it")
    statements: list[str] = Field(default_factory=list, description="What was executed, in order")
    error: str | None = Field(None, description="The database's error, if the DDL failed")
    created_for_the_check: list[str] = Field(
        default_factory=list,
        description="Referenced tables missing from the database, created from the spec inside the "
        "same rolled-back transaction so the foreign keys could be checked")
    code_matches_ddl: bool | None = Field(
        None, description="The generated SQLModel metadata equals what the DDL created")
    drifts: list[Drift] = Field(default_factory=list, description="Differences between code and DDL")
    notes: list[str] = Field(default_factory=list)


async def dry_run(conn: psycopg.AsyncConnection, table: Table, spec: Schema, *, database: str,
                  models_timeout: float = 30.0) -> DryRun:
    """Execute the table's DDL in a rolled-back transaction and prove the generated code matches it.

    Round trips: one to open the transaction (BEGIN, its settings, and which of the table and the tables
    it references exist, all in one write), one per DDL statement (each sent alone and the transaction
    checked to be still open before the next), one to read the catalog, roll back and check that the
    table exists exactly as before (one write again): ``2 + statements``.
    """
    import psycopg  # here, not at import: the server starts without loading the driver
    from psycopg.pq import TransactionStatus

    result = DryRun(ran=True, database=database, ok=False)
    if not conn.autocommit or conn.info.transaction_status != TransactionStatus.IDLE:
        result.ran, result.error = False, ("the connection was inside a transaction (or not in autocommit mode); "
                                           "the dry run needs its own transaction so that it can always be rolled "
                                           "back")
        return result
    existence = await _begin(conn, table, spec)
    existed = existence[qualified(table)]
    missing = _missing_references(table, spec, existence)
    statements: list[str] = []
    try:
        if isinstance(missing, str):
            raise _NotRun(missing)
        for dependency in missing:
            statements += table_ddl(dependency)
        statements += table_ddl(table)
    except (ExpressionError, _NotRun) as exc:
        await _roll_back(conn, table, existed)
        result.ran, result.error = False, str(exc)
        return result
    if table.column("updated_at"):
        statements += [UPDATED_AT_FUNCTION, updated_at_trigger_sql(table)]

    def still_inside() -> None:
        if conn.info.transaction_status != TransactionStatus.INTRANS:  # something ended our transaction
            raise DDLRefused("the dry run's transaction ended before the DDL finished; nothing more was sent")

    def sent(statement: str) -> None:
        still_inside()
        result.statements.append(statement)

    try:
        await execute_ddl(conn, statements, on_sent=sent)
        still_inside()  # the last statement left it open, too
        catalog = await _read_and_roll_back(conn, table, existed)
    except (psycopg.Error, DDLRefused) as exc:
        result.error = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        await _roll_back(conn, table, existed)
        return result
    result.created_for_the_check = [t.name for t in missing]
    result.notes.append("Everything ran inside one transaction that was rolled back: the database is unchanged.")

    models = _read_generated_models(table, missing + _referenced(table, spec), models_timeout)
    if models.findings and not models.schema.table(table.name):
        result.notes += [f"The generated code did not import: {f.message}" for f in models.findings]
        result.code_matches_ddl = False
        return result
    diff = diff_schemas({"models": models.schema.only([table.name]), "database": catalog.only([table.name])},
                        tables=[table.name])
    result.drifts = diff.drifts
    result.code_matches_ddl = not diff.drifts
    result.ok = result.code_matches_ddl
    return result


class _NotRun(Exception):
    """The DDL cannot be built (a reference that exists nowhere): nothing is run."""


_SETTINGS = query("dry_run_settings.sql")
_EXISTS = query("tables_exist.sql")  # $1: qualified names


async def _begin(conn: psycopg.AsyncConnection, table: Table, spec: Schema) -> dict[str, bool]:
    """Open the dry run's transaction and read which tables exist: one write, one round trip.

    The names asked about are the table's and every table reachable from its foreign keys through the
    spec (a superset of those :func:`_missing_references` may need to know about)."""
    from ..database.pipeline import run_batch

    names = [qualified(table)] + sorted(_reachable(table, spec))
    results = await run_batch(conn, [("BEGIN", ()), (_SETTINGS, ()), (_EXISTS, [names])])
    if failed := next((r.error for r in results if r.error is not None), None):
        await _roll_back(conn, table, None)
        raise failed
    return {name: bool(found) for name, found in results[2].rows}


def _references(table: Table, spec: Schema, stop=lambda name: False):
    """The names of the tables ``table`` references, then those they reference in the spec, and so on;
    a name for which ``stop(name)`` holds is given but not followed."""
    seen: set[str] = set()
    pending = [fk.ref_table for fk in table.foreign_keys if fk.ref_table != table.name]
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        seen.add(name)
        yield name
        if not stop(name) and (source := spec.table(name)) is not None:
            pending += [fk.ref_table for fk in source.foreign_keys if fk.ref_table != name]


def _reachable(table: Table, spec: Schema) -> set[str]:
    return {_qualified(name) for name in _references(table, spec)}


async def _roll_back(conn: psycopg.AsyncConnection, table: Table, existed: bool | None) -> None:
    """ROLLBACK and check the table exists as it did before, in one write (see :func:`_check_rolled_back`)."""
    from psycopg.pq import TransactionStatus

    from ..database.pipeline import run_batch

    inside = conn.info.transaction_status in (TransactionStatus.INTRANS, TransactionStatus.INERROR)
    results = await run_batch(conn, [("ROLLBACK", ())] * inside + [(_EXISTS, [[qualified(table)]])],
                              join_transaction=True)
    _check_rolled_back(conn, table, existed, _exists(results[-1]))


async def _read_and_roll_back(conn: psycopg.AsyncConnection, table: Table, existed: bool) -> Schema:
    """What PostgreSQL made of the DDL (the catalog of the table's schema), then ROLLBACK and the check
    that the table exists as it did before: one write, one round trip."""
    from ..database.catalog import catalog_statement, describe_source, schema_from_result
    from ..database.pipeline import run_batch

    read, _, exists = await run_batch(conn, [catalog_statement([table.schema_name]), ("ROLLBACK", ()),
                                             (_EXISTS, [[qualified(table)]])], join_transaction=True)
    schema = schema_from_result(read, describe_source(conn))
    _check_rolled_back(conn, table, existed, _exists(exists))
    return schema


def _exists(result) -> bool:
    """The table's existence, as :data:`_EXISTS` read it; its error raised."""
    if result.error is not None or result.aborted:
        raise result.error or RuntimeError("the dry run's ROLLBACK and check did not run; this is a bug: report it")
    return bool(result.rows[0][1])


def _check_rolled_back(conn: psycopg.AsyncConnection, table: Table, existed: bool | None,
                       exists: bool | None) -> None:
    """After the proof: the connection is idle again and the proposed table exists exactly when it did
    before. Anything else means something committed, which must never pass silently."""
    from psycopg.pq import TransactionStatus

    status = conn.info.transaction_status
    if status == TransactionStatus.IDLE and (existed is None or exists is None or exists == existed):
        return
    raise RuntimeError(f"the dry run of {table.name} left the database changed (transaction status "
                       f"{status.name}); this is a bug: report it")


def _missing_references(table: Table, spec: Schema, existence: dict[str, bool]) -> list[Table] | str:
    """Referenced tables absent from the database (``existence``, read by :func:`_begin`), from the spec
    (with their own dependencies)."""
    exists = lambda name: bool(existence.get(_qualified(name)))  # noqa: E731
    needed: list[Table] = []
    for name in _references(table, spec, stop=exists):
        if exists(name):
            continue
        source = spec.table(name)
        if source is None:
            return (f"{table.name} references {name}, which exists neither in the database nor in the spec. "
                    f"Create {name} first (or fix the reference).")
        needed.append(source)
    return dependency_order(needed)


def _qualified(name: str) -> str:
    return f'"{name}"' if name != name.lower() or not name.isidentifier() else name


def _referenced(table: Table, spec: Schema) -> list[Table]:
    return [t for name in {fk.ref_table for fk in table.foreign_keys} if (t := spec.table(name))]


def _read_generated_models(table: Table, dependencies: list[Table], timeout: float):
    """Import the generated code, plus code for the tables it references, in a child process."""
    seen: set[str] = set()
    modules = []
    for dependency in dependencies:
        if dependency.name not in seen and dependency.name != table.name:
            seen.add(dependency.name)
            modules.append(sqlmodel_code(dependency))
    modules.append(sqlmodel_code(table))
    with tempfile.TemporaryDirectory(prefix="schema-architect-proof-") as tmp:
        Path(tmp, "proposed_models.py").write_text("\n\n".join(modules))
        return read_models(Path(tmp), "proposed_models.py", timeout=timeout)

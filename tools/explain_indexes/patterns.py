"""Input: the tables in scope and the query patterns to explain (the caller's, the spec's, the
conventions' and each foreign key's lookup).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from ..database.ddl import ident, qualified
from ..schema.errors import unknown_tables
from ..schema.model import BETTER_AUTH_TABLES, ForeignKey, IndexColumn, Location, Schema, Table
from ..spec.query_patterns import PatternError, index_columns_for_pattern
from .model import ExplainError

# ---------------------------------------------------------------------------------------------------
# Input: tables and queries


@dataclass
class _Query:
    sql: str
    tables: list[str]  # relation names in FROM order
    params: int


class _Refs:
    """The relations (in order) and the highest $n of one parsed statement."""

    def __init__(self, node: Any) -> None:
        from pglast import ast

        self.tables: list[str] = []
        self.params = 0
        stack = [node]
        while stack:
            n = stack.pop()
            if isinstance(n, ast.RangeVar):
                self.tables.append(n.relname or "")  # the parser names every relation
            elif isinstance(n, ast.ParamRef):
                self.params = max(self.params, n.number or 0)
            if isinstance(n, ast.Node):
                children = [getattr(n, a) for a in n]  # a node iterates over its attribute names
                stack.extend(reversed([c for c in children if isinstance(c, ast.Node | tuple | list)]))
            elif isinstance(n, tuple | list):
                stack.extend(reversed(n))


def parse_query(sql: str) -> _Query:
    import pglast
    from pglast import ast

    if not isinstance(sql, str) or not sql.strip():
        raise ExplainError("Each query must be a non-empty SQL string.", rule_id="sql-empty")
    try:
        statements = pglast.parse_sql(sql)
    except pglast.parser.ParseError as exc:
        from ..sqlsafe.redact import redact_parse_message

        raise ExplainError(f"The query {sql!r} is not valid SQL: {redact_parse_message(str(exc))}. Pass one "
                           "SELECT, as the app sends it (with $1, $2... for parameters).",
                           rule_id="sql-parse-error") from None
    if len(statements) != 1 or not isinstance(statements[0].stmt, ast.SelectStmt):
        raise ExplainError(f"The query {sql!r} must be exactly one SELECT statement; explain_indexes plans reads "
                           "only (write the WHERE of an UPDATE/DELETE as a SELECT).",
                           rule_id="sql-statement-not-allowed")
    # The planner evaluates what it can while estimating: the same allowlist as run_scoped_query's
    # (side-effect-free built-ins, no catalogs), here on the text; explain_indexes checks the rest
    # by PostgreSQL's own analysis before any plan.
    from ..sqlsafe import QueryRefused, check_sql

    try:
        check_sql(sql, invented_names=False)
    except QueryRefused as exc:
        raise ExplainError(f"The query {sql!r} was refused: {exc.finding.message} {exc.finding.fix or ''}".strip(),
                           rule_id=exc.rule) from None
    refs = _Refs(statements[0].stmt)
    if not refs.tables:
        raise ExplainError(f"The query {sql!r} reads no table; nothing to explain.")
    return _Query(sql=sql.strip().rstrip(";"), tables=refs.tables, params=refs.params)


def tables_in_scope(main: Schema, spec: Schema | None, name: str | None) -> list[Table]:
    if name is None:
        return sorted(main.tables, key=lambda t: (t.schema_name, t.name))
    found = main.table(name.strip().lower())
    if found is None:
        where = "the database" if main is not spec else "the spec"
        hint = " It is in the spec but not in the database: create it first." if (
            spec is not None and main is not spec and spec.table(name.strip().lower())) else ""
        raise unknown_tables([name], [t.name for t in main.tables], where, "table", name, hint.strip())
    return [found]


@dataclass
class Pattern:
    table: Table
    description: str
    sql: str
    origin: Literal["spec", "convention", "caller", "foreign key"]
    location: Location | None
    needs: list[IndexColumn]
    equality: int
    params: int
    fk: ForeignKey | None = None

    @property
    def key(self) -> tuple[str, tuple[tuple[str, bool], ...]]:
        return self.table.qualified_name, tuple((c.name, c.descending) for c in self.needs)


def _needs(sql: str, table: Table, owner: str) -> tuple[list[IndexColumn], int]:
    try:
        return index_columns_for_pattern(sql, table, owner if table.column(owner) else None)
    except PatternError:
        return [], 0


def query_patterns(tables: list[Table], spec: Schema | None, caller: list[_Query], main: Schema, owner: str,
              notes: list[str]) -> list[Pattern]:
    """Caller queries; else the spec's query patterns, then the conventions' standard ones not already there."""
    in_scope = {t.name for t in tables}
    out: list[Pattern] = []
    if caller:
        for q in caller:
            target = next((t for n in q.tables if (t := main.table(n)) is not None), None)  # CTE names aside
            if target is None:
                raise ExplainError(f"The query {q.sql!r} reads {q.tables[0]}, which is not a table here "
                                   f"(tables: {', '.join(sorted(t.name for t in main.tables))}).")
            if in_scope and not (set(q.tables) & in_scope):
                continue
            out += _per_table(q.sql, q.params, main, target, owner, "caller", None, None, in_scope, notes)
        return out + _fk_patterns(tables, main, owner)
    for t in tables:
        if t.managed_by == "better-auth" or t.name in BETTER_AUTH_TABLES:
            continue
        spec_t = spec.table(t.qualified_name) if spec else None
        seen: set[tuple[str, tuple[tuple[str, bool], ...]]] = set()
        for qp in spec_t.query_patterns if spec_t else []:
            sql = qp.sql
            if sql is None:
                needs, eq = _needs(qp.description, t, owner)
                if not needs:
                    notes.append(f"{t.name}: could not tell which columns the pattern {qp.description!r} uses; "
                                 "write it as SQL in the spec to get evidence for it.")
                    continue
                sql = _sql_for(t, needs, eq)
            try:
                parsed = parse_query(sql)
            except ExplainError as exc:
                notes.append(f"{t.name}: the spec's query pattern is skipped: {exc}")
                continue
            for p in _per_table(parsed.sql, parsed.params, main, t, owner, "spec", qp.location, qp.description,
                                {t.name}, notes):
                seen.add(p.key)
                out.append(p)
        for description, sql in _convention_sql(t, owner):
            needs, eq = _needs(sql, t, owner)
            p = Pattern(t, description, sql, "convention", None, needs, eq, parse_query(sql).params)
            if p.key not in seen:
                seen.add(p.key)
                out.append(p)
    return out + _fk_patterns(tables, main, owner)


def _per_table(sql: str, params: int, main: Schema, first: Table, owner: str, origin: Any,
               location: Location | None, description: str | None, in_scope: set[str],
               notes: list[str]) -> list[Pattern]:
    """One pattern per table the query asks something of (reading.py); a query on one table alone keeps
    the pattern reader shared with propose_table (spec/query_patterns.py)."""
    from .reading import needs_per_table

    try:
        found = needs_per_table(sql, main, owner)
    except Exception:  # noqa: BLE001 - a shape the reader does not know: the first table, as before
        found = []
    if len({n.table.qualified_name for n in found}) <= 1 and not any(n.others for n in found):
        needs, eq = _needs(sql, first, owner)
        found_here = [n for n in found if n.unindexable]
        _unindexable_notes(found_here, sql, notes)
        return [Pattern(first, description or _summary(sql, first, needs, eq), sql, origin, location, needs, eq,
                         params)]
    _unindexable_notes(found, sql, notes)
    out = []
    for n in found:
        if n.table.name not in in_scope and in_scope:
            continue
        if not n.columns or n.table.managed_by == "better-auth" or n.table.name in BETTER_AUTH_TABLES:
            continue
        via = (" (join key)" if n.kind == "join" else "") + (f", joined with {', '.join(n.others)}" if n.others else "")
        what = _summary(sql, n.table, n.columns, n.equality) + via
        out.append(Pattern(n.table, f"{description}: {what}" if description else what, sql, origin, location,
                            n.columns, n.equality, params))
    if not out and first.name in in_scope | {first.name} and not in_scope or (not out and first.name in in_scope):
        out.append(Pattern(first, description or _summary(sql, first, [], 0), sql, origin, location, [], 0, params))
    return out


def _unindexable_notes(found: list, sql: str, notes: list[str]) -> None:
    for n in found:
        for what in n.unindexable:
            col = what.split()[0]
            note = (f"{n.table.name}.{what} in {sql!r}: a btree serves LIKE/ILIKE only for a fixed prefix (and "
                    "ILIKE not at all); a leading wildcard needs a trigram index (CREATE EXTENSION pg_trgm; "
                    f"CREATE INDEX ... ON {n.table.name} USING gin ({col} gin_trgm_ops)) if that search matters. "
                    "Not recommended here: it is measured only with the extension created.")
            if note not in notes:
                notes.append(note)


def _convention_sql(t: Table, owner: str) -> list[tuple[str, str]]:
    """The queries every user-owned table gets: newest first, filtered by status, one row by id."""
    if t.column(owner) is None:
        return []
    name, o = qualified(t), ident(owner)
    out = []
    if t.column("created_at"):
        out.append((f"list a user's {t.name}, newest first",
                    f"SELECT * FROM {name} WHERE {o} = $1 ORDER BY created_at DESC LIMIT 50"))
    status = t.column("status") or next((c for c in t.columns if c.type == "boolean"), None) or next(
        (c for c in t.columns if c.allowed_values and c.name != owner), None)
    if status is not None:
        out.append((f"list a user's {t.name} filtered by {status.name}",
                     f"SELECT * FROM {name} WHERE {o} = $1 AND {ident(status.name)} = $2"))
    if len(t.primary_key) == 1:
        out.append((f"read one of a user's {t.name} by {t.primary_key[0]}",
                    f"SELECT * FROM {name} WHERE {ident(t.primary_key[0])} = $1 AND {o} = $2"))
    return out


def _fk_patterns(tables: list[Table], main: Schema, owner: str) -> list[Pattern]:
    """The lookup each foreign key makes on the child table when a parent row is deleted or its key changes."""
    out = []
    for t in tables:
        for fk in t.foreign_keys:
            where = " AND ".join(f"{ident(c)} = ${i}" for i, c in enumerate(fk.columns, 1))
            sql = f"SELECT 1 FROM {qualified(t)} WHERE {where}"
            needs = [IndexColumn(name=c) for c in fk.columns]
            out.append(Pattern(t, f"find the {t.name} rows of one {fk.ref_table} row (ON DELETE "
                                f"{fk.on_delete or 'NO ACTION'} from {fk.ref_table})", sql, "foreign key",
                                fk.location, needs, len(needs), len(needs), fk))
    return out


def _sql_for(t: Table, needs: list[IndexColumn], equality: int) -> str:
    where = " AND ".join(f"{ident(c.name)} = ${i}" for i, c in enumerate(needs[:equality], 1))
    order = ", ".join(ident(c.name) + (" DESC" if c.descending else "") for c in needs[equality:])
    sql = f"SELECT * FROM {qualified(t)}" + (f" WHERE {where}" if where else "")
    return sql + (f" ORDER BY {order} LIMIT 50" if order else "")


def _summary(sql: str, t: Table, needs: list[IndexColumn], equality: int) -> str:
    where = ", ".join(c.name for c in needs[:equality])
    order = ", ".join(show_column(c) for c in needs[equality:])
    return " ".join([f"{t.name} rows"] + ([f"by {where}"] if where else [])
                    + ([f"ordered by {order}"] if order else []))


def show_column(c: IndexColumn) -> str:
    text = c.name + (" DESC" if c.descending else "")
    if c.nulls_first is not None:
        text += " NULLS FIRST" if c.nulls_first else " NULLS LAST"
    return text



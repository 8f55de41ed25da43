"""Query patterns, in words or SQL, to the index they need: equality columns first (the owner leading),
then the sort. Shared by propose_table (indexes for a new table) and explain_indexes (what each
pattern needs).
"""

from __future__ import annotations

import re

from ..schema.model import (
    IndexColumn,
    Table,
)
from ..schema.names import singular

_SORT_NEWEST = re.compile(r"\b(newest|latest|most recent|recent(ly)?|last created)\b")
_SORT_OLDEST = re.compile(r"\b(oldest|earliest|first created)\b")
_SORT_BY = re.compile(r"\b(?:(?:sorted|ordered|order|sort)\s+)?by\s+([a-z_ ]+?)(?:\s+(asc|desc|ascending|descending))?"
                      r"\b(?:,|$|\s+(?:and|then|for|with|newest|oldest))")
_BOOL_WORDS = {"open": False, "incomplete": False, "pending": False, "unfinished": False, "active": False,
               "done": True, "completed": True, "finished": True, "closed": True}
_OWNER_WORDS = re.compile(r"\b(user'?s|a user|my|their|for a user|per user|owner'?s?|of a user|for the user)\b")


class PatternError(ValueError):
    """A query pattern that cannot be read (SQL PostgreSQL's parser refuses); the message says why."""


def looks_like_sql(text: str) -> bool:
    return bool(re.match(r"\s*(select|with)\b", text, re.I))


def sql_summary(sql: str, table: Table, owner_column: str | None) -> str:
    """A one-line description of a SQL pattern, from the columns it filters and sorts on."""
    columns, equality = index_columns_for_pattern(sql, table, owner_column)
    where = ", ".join(c.name for c in columns[:equality])
    order = ", ".join(c.name + (" DESC" if c.descending else "") for c in columns[equality:])
    parts = [f"{table.name} rows"] + ([f"by {where}"] if where else []) + ([f"ordered by {order}"] if order else [])
    return " ".join(parts)


def index_columns_for_pattern(pattern: str, table: Table,
                             owner_column: str | None) -> tuple[list[IndexColumn], int]:
    """The index a query pattern needs: equality columns first (owner leading), then the sort.

    Returns the columns and how many of them are equality columns.
    """
    if looks_like_sql(pattern):
        equality, sort = _from_sql(pattern, table)
    else:
        equality, sort = _from_words(pattern, table, owner_column)
    if owner_column and owner_column in equality:
        equality.remove(owner_column)
        equality.insert(0, owner_column)
    columns = [IndexColumn(name=c) for c in equality]
    columns += [IndexColumn(name=c, descending=d) for c, d in sort if c not in equality]
    return columns, len(equality)


def _from_words(pattern: str, table: Table, owner_column: str | None) -> tuple[list[str], list[tuple[str, bool]]]:
    text = pattern.lower()
    equality: list[str] = []
    if owner_column and table.column(owner_column) and _OWNER_WORDS.search(text):
        equality.append(owner_column)
    for fk in table.foreign_keys:  # "a task's notes", "notes of a task" -> task_id
        if len(fk.columns) == 1 and fk.columns[0] != owner_column:
            parent = singular(fk.ref_table).replace("_", " ")
            if re.search(rf"\b(a |the |one |each |per |of |for )?{re.escape(parent)}('s|s'|\b)", text):
                equality.append(fk.columns[0])
    booleans = [c for c in table.columns if c.type == "boolean"]
    for word in re.findall(r"[a-z_]+", text):
        if word in _BOOL_WORDS and booleans and booleans[0].name not in equality:
            equality.append(booleans[0].name)
    for column in table.columns:
        spoken = column.name.replace("_", " ")
        names_a_value = column.allowed_values and any(
            re.search(rf"\b{re.escape(v.lower())}\b", text) for v in column.allowed_values)
        names_the_column = re.search(rf"\b(with|where|filtered by|for a|of a|whose) {re.escape(spoken)}\b", text)
        if names_a_value or names_the_column and column.name not in equality and not column.primary_key:
            equality.append(column.name)
    sort: list[tuple[str, bool]] = []
    if m := _SORT_BY.search(text + ","):  # "list a user's tags by name", "sorted by due date desc"
        spoken = m.group(1).strip().replace(" ", "_")
        if table.column(spoken) and spoken not in equality:
            sort.append((spoken, (m.group(2) or "").startswith("desc")))
    if not sort and table.column("created_at"):
        if _SORT_NEWEST.search(text):
            sort.append(("created_at", True))
        elif _SORT_OLDEST.search(text):
            sort.append(("created_at", False))
    if not equality and owner_column and table.column(owner_column):
        equality.append(owner_column)  # every query of user data filters by the owner
    return list(dict.fromkeys(equality)), sort


def _from_sql(sql: str, table: Table) -> tuple[list[str], list[tuple[str, bool]]]:
    """Equality / range columns from WHERE and the ORDER BY of one SELECT."""
    import pglast
    from pglast import ast, enums

    try:
        statement = pglast.parse_sql(sql)[0].stmt
    except pglast.parser.ParseError as exc:
        raise PatternError(f"The query pattern {sql!r} is not valid SQL: {exc}") from None
    equality: list[str] = []
    ranges: list[str] = []

    def column_of(node: object) -> str | None:
        while isinstance(node, ast.TypeCast):
            node = node.arg
        if isinstance(node, ast.ColumnRef) and node.fields and isinstance(node.fields[-1], ast.String):
            name = node.fields[-1].sval
            return name if name and table.column(name) else None
        return None

    def walk(node: ast.Node | None) -> None:
        if isinstance(node, ast.BoolExpr) and node.boolop == enums.BoolExprType.AND_EXPR:
            for arg in node.args or ():
                walk(arg)
        elif isinstance(node, ast.BoolExpr) and node.boolop == enums.BoolExprType.NOT_EXPR:
            if node.args and (name := column_of(node.args[0])) is not None:
                equality.append(name)
        elif isinstance(node, ast.A_Expr) and node.kind == enums.A_Expr_Kind.AEXPR_OP:
            op = node.name[-1].sval if node.name else None
            name = column_of(node.lexpr) or column_of(node.rexpr)
            if name and op == "=":
                equality.append(name)
            elif name and op in ("<", ">", "<=", ">="):
                ranges.append(name)
        elif isinstance(node, ast.A_Expr) and node.kind in (enums.A_Expr_Kind.AEXPR_IN,
                                                            enums.A_Expr_Kind.AEXPR_BETWEEN):
            if (name := column_of(node.lexpr)) is not None:
                (equality if node.kind == enums.A_Expr_Kind.AEXPR_IN else ranges).append(name)
        elif isinstance(node, ast.NullTest | ast.BooleanTest):
            if (name := column_of(node.arg)) is not None:
                equality.append(name)
        elif (name := column_of(node)) is not None:  # WHERE completed
            equality.append(name)

    if isinstance(statement, ast.SelectStmt) and statement.whereClause is not None:
        walk(statement.whereClause)
    sort: list[tuple[str, bool]] = []
    for item in (statement.sortClause or []) if isinstance(statement, ast.SelectStmt) else []:
        if (name := column_of(item.node)) is not None:
            sort.append((name, item.sortby_dir == enums.SortByDir.SORTBY_DESC))
    if not sort and ranges:
        sort.append((ranges[0], False))
    return list(dict.fromkeys(equality)), sort


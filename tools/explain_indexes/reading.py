"""One query read per table: what it asks of every table it touches.

A query is not a query on its first table. From the parse tree (pglast) of one SELECT this reads, for
each use of a table (a FROM item, in the statement itself, a CTE, a subquery in FROM or a sublink), the
predicates that compare its columns with a value (equality, range, IS NULL, a bare boolean), the join
keys that compare them with another table's columns (correlated sublinks included), its ORDER BY and
GROUP BY columns, and what a btree cannot serve (ILIKE / LIKE with a leading wildcard). Then each use
becomes the index it would want: equality columns first (the owner leading), then the order or the
range; a table read only through a join key wants that key (the inner side of a nested loop).

Decisions, and why:

* **Conjunctions only.** An OR needs a BitmapOr of separate indexes, or none; it is left out rather
  than guessed.
* **Sort and grouping count only where the table also has a filter**, or when it is the query's only
  table: an order on a joined table whose rows come from a join key cannot be read from its index.
* **A column is resolved by its qualifier** (alias or table name), else by the one table in scope that
  has it (innermost scope first, as PostgreSQL resolves it). An ambiguous or unknown column is skipped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..schema.model import IndexColumn, Schema, Table


@dataclass
class _Use:
    """One use of a table in a query (one FROM item) and what the query asks of it."""

    table: Table
    alias: str
    equality: list[str] = field(default_factory=list)
    ranges: list[str] = field(default_factory=list)
    joins: list[str] = field(default_factory=list)
    sort: list[tuple[str, bool]] = field(default_factory=list)
    group: list[str] = field(default_factory=list)
    unindexable: list[str] = field(default_factory=list)  # "title ILIKE '%...%'"


@dataclass
class _Need:
    """The index one use of a table wants: columns (equality first) and how many are equality."""

    table: Table
    columns: list[IndexColumn]
    equality: int
    kind: str  # "filter" or "join"
    others: list[str]  # the other tables of the query
    unindexable: list[str]


class _Reader:
    def __init__(self, schema: Schema) -> None:
        self.schema = schema
        self.uses: list[_Use] = []

    # -- scopes ------------------------------------------------------------------------------------
    def select(self, sel: Any, outer: list[dict[str, _Use | None]], ctes: set[str]) -> None:
        from pglast import ast, enums

        if not isinstance(sel, ast.SelectStmt):
            return
        if sel.withClause is not None:
            ctes = ctes | {c.ctename for c in sel.withClause.ctes or ()}
            for c in sel.withClause.ctes or ():
                self.select(c.ctequery, outer, ctes)
        if sel.op != enums.SetOperation.SETOP_NONE:
            self.select(sel.larg, outer, ctes)
            self.select(sel.rarg, outer, ctes)
            return
        scope: dict[str, _Use | None] = {}
        quals: list[Any] = []
        for item in sel.fromClause or ():
            self._from(item, scope, quals, outer, ctes)
        scopes = [scope, *outer]
        for q in ([sel.whereClause] if sel.whereClause is not None else []) + quals:
            for conj in _conjuncts(q):
                self._predicate(conj, scopes)
        for node in (sel.whereClause, sel.havingClause, sel.targetList, *quals):
            for sub in _sublinks(node):
                self.select(sub.subselect, scopes, ctes)
        single = len([u for u in scope.values() if u is not None]) == 1 and not outer
        for item in sel.sortClause or ():
            if (hit := self._column(item.node, scopes[:1])) is not None:
                u, col = hit
                if u.equality or u.ranges or single:
                    u.sort.append((col, item.sortby_dir == enums.SortByDir.SORTBY_DESC))
        for item in sel.groupClause or ():
            if (hit := self._column(item, scopes[:1])) is not None:
                u, col = hit
                if u.equality or u.ranges or single:
                    u.group.append(col)

    def _from(self, item: Any, scope: dict[str, _Use | None], quals: list[Any],
              outer: list[dict[str, _Use | None]], ctes: set[str]) -> None:
        from pglast import ast

        if isinstance(item, ast.RangeVar):
            alias = item.alias.aliasname if item.alias is not None else item.relname
            assert alias is not None and item.relname is not None  # the parser names both
            if item.schemaname is None and item.relname in ctes:
                scope[alias] = None  # a CTE: read where it is defined
                return
            name = f"{item.schemaname}.{item.relname}" if item.schemaname else item.relname
            table = self.schema.table(name)
            if table is None:
                scope[alias] = None
                return
            use = _Use(table, alias)
            self.uses.append(use)
            scope[alias] = use
        elif isinstance(item, ast.JoinExpr):
            self._from(item.larg, scope, quals, outer, ctes)
            self._from(item.rarg, scope, quals, outer, ctes)
            if item.quals is not None:
                quals.append(item.quals)
            for name in item.usingClause or ():  # JOIN ... USING (col): a join key on both sides
                col = name.sval
                for u in scope.values():
                    if u is not None and u.table.column(col) is not None:
                        u.joins.append(col)
        elif isinstance(item, ast.RangeSubselect):
            self.select(item.subquery, [scope, *outer] if item.lateral else outer, ctes)
            if item.alias is not None:
                assert item.alias.aliasname is not None  # an alias has a name
                scope[item.alias.aliasname] = None

    # -- predicates --------------------------------------------------------------------------------
    def _column(self, node: Any, scopes: list[dict[str, _Use | None]]) -> tuple[_Use, str] | None:
        from pglast import ast

        while isinstance(node, ast.TypeCast):
            node = node.arg
        if not isinstance(node, ast.ColumnRef) or not all(isinstance(f, ast.String) for f in node.fields or ()):
            return None
        names = [f.sval for f in node.fields or ()]
        col = names[-1]
        for scope in scopes:
            if len(names) >= 2:
                if names[-2] in scope:
                    u = scope[names[-2]]
                    return (u, col) if u is not None and u.table.column(col) is not None else None
                continue
            found = [u for u in scope.values() if u is not None and u.table.column(col) is not None]
            if len(found) == 1:
                return found[0], col
            if found or any(u is None for u in scope.values()):
                return None  # ambiguous, or maybe a CTE's / subquery's column
        return None

    def _predicate(self, node: Any, scopes: list[dict[str, _Use | None]]) -> None:
        from pglast import ast, enums

        local = scopes[:1]
        if isinstance(node, ast.A_Expr) and node.kind == enums.A_Expr_Kind.AEXPR_OP:
            op = (node.name or ())[-1].sval
            left, right = self._column(node.lexpr, scopes), self._column(node.rexpr, scopes)
            if left and right:
                if op == "=" and left[0] is not right[0]:
                    left[0].joins.append(left[1])
                    right[0].joins.append(right[1])
                return
            hit = self._column(node.lexpr, local) or self._column(node.rexpr, local)
            if hit is None or _has_column(node.rexpr if left else node.lexpr):
                return
            if op == "=":
                hit[0].equality.append(hit[1])
            elif op in ("<", ">", "<=", ">="):
                hit[0].ranges.append(hit[1])
            elif op in ("~~", "~~*"):
                hit[0].unindexable.append(f"{hit[1]} {'ILIKE' if op == '~~*' else 'LIKE'}")
        elif isinstance(node, ast.A_Expr) and node.kind in (enums.A_Expr_Kind.AEXPR_LIKE,
                                                            enums.A_Expr_Kind.AEXPR_ILIKE):
            if (hit := self._column(node.lexpr, local)) is not None:
                word = "ILIKE" if node.kind == enums.A_Expr_Kind.AEXPR_ILIKE else "LIKE"
                hit[0].unindexable.append(f"{hit[1]} {word}")
        elif isinstance(node, ast.A_Expr) and node.kind in (enums.A_Expr_Kind.AEXPR_IN,
                                                            enums.A_Expr_Kind.AEXPR_BETWEEN):
            if (hit := self._column(node.lexpr, local)) is not None:
                (hit[0].equality if node.kind == enums.A_Expr_Kind.AEXPR_IN else hit[0].ranges).append(hit[1])
        elif isinstance(node, ast.BoolExpr) and node.boolop == enums.BoolExprType.NOT_EXPR:
            if (hit := self._column((node.args or ())[0], local)) is not None:
                hit[0].equality.append(hit[1])
        elif isinstance(node, ast.NullTest | ast.BooleanTest):
            if (hit := self._column(node.arg, local)) is not None:
                hit[0].equality.append(hit[1])
        elif isinstance(node, ast.SubLink) and node.subLinkType == enums.SubLinkType.ANY_SUBLINK:
            if (hit := self._column(node.testexpr, local)) is not None:  # col IN (SELECT ...)
                hit[0].joins.append(hit[1])
        elif (hit := self._column(node, local)) is not None:  # WHERE completed
            hit[0].equality.append(hit[1])


def _conjuncts(node: Any) -> list[Any]:
    from pglast import ast, enums

    if isinstance(node, ast.BoolExpr) and node.boolop == enums.BoolExprType.AND_EXPR:
        return [c for a in node.args or () for c in _conjuncts(a)]
    return [node]


def _walk(node: Any, stop: type | None = None):
    from pglast import ast

    stack = [node]
    while stack:
        n = stack.pop()
        if isinstance(n, ast.Node):
            yield n
            if stop is not None and isinstance(n, stop):
                continue
            # a node iterates over its attribute names
            stack.extend(getattr(n, a) for a in n if isinstance(getattr(n, a), ast.Node | tuple | list))
        elif isinstance(n, tuple | list):
            stack.extend(n)


def _sublinks(node: Any) -> list[Any]:
    from pglast import ast

    return [n for n in _walk(node, ast.SubLink) if isinstance(n, ast.SubLink)]


def _has_column(node: Any) -> bool:
    from pglast import ast

    return any(isinstance(n, ast.ColumnRef) for n in _walk(node, ast.SubLink))


def read_uses(sql: str, schema: Schema) -> list[_Use]:
    """Every use of a table in ``sql`` and what the query asks of it."""
    import pglast

    reader = _Reader(schema)
    reader.select(pglast.parse_sql(sql)[0].stmt, [], set())
    return reader.uses


def needs_per_table(sql: str, schema: Schema, owner: str | None) -> list[_Need]:
    """The index each table of ``sql`` wants, from its own predicates, join keys, order and grouping."""
    uses = read_uses(sql, schema)
    names = list(dict.fromkeys(u.table.name for u in uses))
    out: list[_Need] = []
    seen: set[tuple[str, tuple[tuple[str, bool], ...]]] = set()
    for u in uses:
        others = [n for n in names if n != u.table.name]
        equality = list(dict.fromkeys(u.equality))
        if owner and owner in equality:
            equality.remove(owner)
            equality.insert(0, owner)
        wanted: list[tuple[list[IndexColumn], int, str]] = []
        if equality or u.ranges or u.sort or u.group:
            cols = [IndexColumn(name=c) for c in equality]
            order = u.sort or [(c, False) for c in u.group] or [(c, False) for c in u.ranges[:1]]
            cols += [IndexColumn(name=c, descending=d) for c, d in order if c not in equality]
            if equality or len(uses) == 1 or u.sort or u.group:
                wanted.append((cols, len(equality), "filter"))
        if not equality:  # reached through its join keys only: each key is a lookup
            for join_key in dict.fromkeys(u.joins):
                wanted.append(([IndexColumn(name=join_key)], 1, "join"))
        for cols, eq, kind in wanted:
            key = (u.table.qualified_name, tuple((c.name, c.descending) for c in cols))
            if cols and key not in seen:
                seen.add(key)
                out.append(_Need(u.table, cols, eq, kind, others, list(dict.fromkeys(u.unindexable))))
        if not wanted and u.unindexable:
            out.append(_Need(u.table, [], 0, "filter", others, list(dict.fromkeys(u.unindexable))))
    return out

"""Layer 2: rewrite every reference to user data into a subquery filtered to the caller.

``FROM tasks t`` becomes::

    FROM (SELECT * FROM public.tasks AS _sa0 WHERE _sa0.user_id = CAST($3 AS text) OFFSET 0) AS t

however the table was written (quoted, unicode-escaped, schema-qualified, ONLY, ``tasks*``, in a
subquery, CTE, UNION or LATERAL). The caller id is a bound parameter numbered after the agent's own
(``$1``, ``$2`` keep working). ``OFFSET 0`` is a planner fence: PostgreSQL neither pulls the
subquery up nor pushes the agent's conditions into it, so an expression that errors or leaks
(``1/(CASE WHEN user_id = 'u_bob' THEN 0 END)``, ``title::int``) only ever sees the caller's rows.

Also: every function call is qualified ``pg_catalog.`` (no shadowing by ``public.lower``), every
allowed table is schema-qualified (no ``search_path`` surprises), and the top-level query gets a
row cap (``LIMIT n``) so the server stops after ``limit + 1`` rows.

The AST is changed and printed with pglast's ``RawStream``; no string splicing. What the caller is
shown is that text with every string literal token (found by PostgreSQL's lexer) as ``'…'`` (see
:mod:`.redact`).

:func:`prepare` is check + rewrite behind a bounded LRU kept on the :class:`UserDataMap`: the output
is a pure function of (SQL text, caller setting name, caller parameter number, row cap) and the map,
and a reloaded map starts with an empty cache, so an entry can never outlive the catalog it was
computed from.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from pglast import ast, enums, parse_sql
from pglast.stream import RawStream
from pglast.visitors import Ancestor, Visitor

from ..schema.names import CALLER_SETTING
from .checker import CheckedQuery, CteScopedVisitor, check_sql, refuse_at
from .classify import Relation, UserDataMap
from .errors import QueryRefused
from .redact import elide_sql_literals, shown, walk

# Longer queries are rewritten every time: with 256 entries of (text, run SQL, shown SQL) each, this
# keeps one map's cache under about 10 MB.
MAX_CACHED_SQL_CHARS = 8192


class UnknownRelation(Exception):
    """A name the cached catalog does not know: the caller may refresh the map and retry."""

    def __init__(self, name: str, node: ast.RangeVar) -> None:
        super().__init__(name)
        self.name = name
        self.node = node


@dataclass
class Rewritten:
    sql: str  # what runs
    caller_param: int
    scoped: list[str] = field(default_factory=list)
    shared: list[str] = field(default_factory=list)
    shown_sql: str = ""  # the same with string literals elided: what the caller is shown
    masked: list[str] = field(default_factory=list)  # schema.table.column shown masked
    tree: ast.Node | None = field(default=None, repr=False, compare=False)  # for error positions


@dataclass(frozen=True)
class Prepared:
    """A checked, rewritten query; immutable, so one instance can be shared by cached calls."""

    sql: str
    shown_sql: str
    caller_param: int
    max_param: int
    is_explain: bool
    scoped: tuple[str, ...]
    shared: tuple[str, ...]
    masked: tuple[str, ...] = ()


def _s(value: str) -> ast.String:
    return ast.String(sval=value)


def _col(alias: str, column: str) -> ast.ColumnRef:
    return ast.ColumnRef(fields=(_s(alias), _s(column)))


def _eq(left: ast.Node, right: ast.Node) -> ast.A_Expr:
    return ast.A_Expr(kind=enums.A_Expr_Kind.AEXPR_OP, name=(_s("="),), lexpr=left, rexpr=right)


def _and(args: Sequence[ast.Node]) -> ast.Node:
    return args[0] if len(args) == 1 else ast.BoolExpr(boolop=enums.BoolExprType.AND_EXPR, args=tuple(args))


def _masked_value(alias: str, column: str) -> ast.Node:
    """``CASE WHEN c IS NULL THEN NULL ELSE concat('<masked: ', length(c::text), ' characters>') END``:
    that a credential is there, and its length, never its value."""
    value = _col(alias, column)
    as_text = ast.TypeCast(arg=_col(alias, column), typeName=ast.TypeName(names=(_s("pg_catalog"), _s("text")),
                                                                          typemod=-1))
    note = ast.FuncCall(funcname=(_s("pg_catalog"), _s("concat")), args=(
        ast.A_Const(val=_s("<masked: ")),
        ast.FuncCall(funcname=(_s("pg_catalog"), _s("length")), args=(as_text,), funcformat=0),
        ast.A_Const(val=_s(" characters>"))), funcformat=0)
    return ast.CaseExpr(args=(ast.CaseWhen(expr=ast.NullTest(arg=value, nulltesttype=enums.NullTestType.IS_NULL),
                                           result=ast.A_Const(isnull=True)),), defresult=note)


def _projection(rel: Relation, alias: str) -> tuple[ast.ResTarget, ...]:
    """``*``, or with credential columns masked, every column in table order."""
    if not rel.masked:
        return (ast.ResTarget(val=ast.ColumnRef(fields=(ast.A_Star(),))),)
    return tuple(ast.ResTarget(name=c, val=_masked_value(alias, c) if c in rel.masked else _col(alias, c))
                 for c in rel.columns)


def _select(rel: Relation, alias: str, where: ast.Node | None, *, star: bool, inh: bool = True,
            fence: bool = False) -> ast.SelectStmt:
    targets = _projection(rel, alias) if star else (ast.ResTarget(val=ast.A_Const(val=ast.Integer(ival=1))),)
    return ast.SelectStmt(
        targetList=targets,
        fromClause=(ast.RangeVar(schemaname=rel.schema, relname=rel.name, inh=inh, relpersistence="p",
                                 alias=ast.Alias(aliasname=alias)),),
        whereClause=where,
        limitOffset=ast.A_Const(val=ast.Integer(ival=0)) if fence else None,
        limitOption=enums.LimitOption.LIMIT_OPTION_COUNT if fence else enums.LimitOption.LIMIT_OPTION_DEFAULT,
        op=enums.SetOperation.SETOP_NONE,
    )


class _Scoper:
    """Builds the caller filter for one relation (recursing through parents for link tables)."""

    def __init__(self, data: UserDataMap, caller_param: int) -> None:
        self.data = data
        self.caller_param = caller_param
        self.counter = 0

    def alias(self) -> str:
        self.counter += 1
        return f"_sa{self.counter}"

    def caller(self, rel: Relation) -> ast.Node:
        param = ast.ParamRef(number=self.caller_param)
        if rel.key_type is None:
            return param
        return ast.TypeCast(arg=param, typeName=ast.TypeName(names=tuple(_s(p) for p in rel.key_type),
                                                             typemod=-1))

    def predicate(self, rel: Relation, alias: str, depth: int = 0) -> ast.Node:
        # classify gives these scopes a key column; without one, the row matches nothing (the end)
        if rel.scope in ("owner", "auth-users") and rel.key_column is not None:
            return _eq(_col(alias, rel.key_column), self.caller(rel))
        if rel.scope == "parent" and depth < 6:
            # Every parent row this row points to must be the caller's.
            conds = []
            for link in rel.parents:
                parent = self.data.relations[link.parent]
                palias = self.alias()
                joins = [_eq(_col(palias, pc), _col(alias, c))  # a foreign key's two column lists
                         for c, pc in zip(link.cols, link.parent_cols, strict=True)]
                sub = _select(parent, palias, _and([*joins, self.predicate(parent, palias, depth + 1)]),
                              star=False)
                conds.append(ast.SubLink(subLinkType=enums.SubLinkType.EXISTS_SUBLINK, subLinkId=0,
                                         subselect=sub))
            return _and(conds)
        return ast.A_Const(val=ast.Boolean(boolval=False))  # unreachable by construction: show nothing


class _ScopeRewriter(CteScopedVisitor):
    def __init__(self, checked: CheckedQuery, scoper: _Scoper, out: Rewritten,
                 ctes: frozenset[str] = frozenset()) -> None:
        super().__init__(ctes)
        self.checked = checked
        self.scoper = scoper
        self.out = out

    def child(self, ctes: frozenset[str]) -> _ScopeRewriter:
        return _ScopeRewriter(self.checked, self.scoper, self.out, ctes)

    def visit_FuncCall(self, ancestors: Ancestor, node: ast.FuncCall) -> None:
        # Only allow-listed built-ins got past the checker; pin them to pg_catalog.
        node.funcname = (_s("pg_catalog"), (node.funcname or ())[-1])

    def relation(self, ancestors: Ancestor, node: ast.RangeVar) -> ast.Node:
        data = self.scoper.data
        inh = bool(node.inh)
        rel = data.resolve(node.schemaname, node.relname or "")
        if rel is None:
            # Only a plain name is ever echoed back (a quoted one could hold any text).
            raise UnknownRelation(shown(f"{node.schemaname}.{node.relname}" if node.schemaname
                                        else node.relname, "table name"), node)
        if rel.scope == "refused":
            raise refuse_at(self.checked.sql, node, "sql-table-not-user-scoped",
                             f"Reading {rel.qualified} is refused: {rel.reason}.",
                             f"Query tables that belong to the caller (user tables: "
                             f"{', '.join(data.user_tables) or 'none found'}); a non-secret table "
                             "can be listed in the shared_tables setting.", rel.qualified)
        self.out.masked.extend(f"{rel.qualified}.{c}" for c in rel.masked)
        if rel.scope == "shared" and rel.masked:
            self.out.shared.append(rel.qualified)
            inner = self.scoper.alias()
            sub = _select(rel, inner, None, star=True, inh=inh, fence=True)
            alias = copy.copy(node.alias) if node.alias else ast.Alias(aliasname=node.relname)
            return ast.RangeSubselect(lateral=False, subquery=sub, alias=alias)
        if rel.scope == "shared":
            self.out.shared.append(rel.qualified)
            return ast.RangeVar(schemaname=rel.schema, relname=rel.name, inh=inh,
                                relpersistence="p", alias=node.alias, location=node.location)
        self.out.scoped.append(rel.qualified)
        inner = self.scoper.alias()
        sub = _select(rel, inner, self.scoper.predicate(rel, inner), star=True, inh=inh, fence=True)
        alias = copy.copy(node.alias) if node.alias else ast.Alias(aliasname=node.relname)
        return ast.RangeSubselect(lateral=False, subquery=sub, alias=alias)


_Kind = TypeVar("_Kind", bound=ast.Node)


class _Nodes(Visitor, Generic[_Kind]):
    """Collects every node of one kind below where it is called."""

    def __init__(self, kind: type[_Kind]) -> None:
        super().__init__()
        self.kind = kind
        self.found: list[_Kind] = []

    def visit(self, ancestors: Ancestor, node: ast.Node) -> None:
        if isinstance(node, self.kind):
            self.found.append(node)


def _nodes(kind: type[_Kind], tree: ast.Node | tuple[Any, ...]) -> list[_Kind]:
    collect = _Nodes(kind)
    collect(tree)
    return collect.found


def _refuse_masked_filters(checked: CheckedQuery, masked: set[str]) -> None:
    """A credential column may be selected (it comes back masked), never filtered, joined, sorted or
    grouped on: comparing it with guesses would tell its value without showing it."""
    for select in _nodes(ast.SelectStmt, checked.select):  # checked.stmt is untouched: rewrite parses anew
        clauses = [select.whereClause, select.havingClause, select.groupClause, select.sortClause,
                   select.windowClause, *(_join_quals(select.fromClause))]
        for clause in clauses:
            if clause is None:
                continue
            for ref in _nodes(ast.ColumnRef, clause):
                last = (ref.fields or (None,))[-1]
                if isinstance(last, ast.String) and last.sval in masked:
                    raise refuse_at(checked.sql, ref, "sql-masked-column",
                                     f"The column {shown(last.sval, 'column')} holds credentials: it comes back "
                                     "masked (present, and its length), and a query may not filter, join, sort "
                                     "or group on it, since comparing it with guesses would reveal it.",
                                     "Select it to see whether it is set; filter on other columns.",
                                     shown(last.sval, "column"))


def _join_quals(from_clause: tuple[ast.Node, ...] | None) -> list[ast.Node | None]:
    out: list[ast.Node | None] = []
    stack: list[ast.Node | None] = list(from_clause or ())
    while stack:
        item = stack.pop()
        if isinstance(item, ast.JoinExpr):
            out.append(item.quals)
            stack += [item.larg, item.rarg]
    return out


#: The most one row of a result may weigh as text. The tool returns a few dozen KB at most, and libpq holds
#: each row whole in memory before it hands it over: a bound the server enforces is the only one that
#: holds before the row crosses the wire (a single 500 MB value would otherwise cost 500 MB here).
MAX_ROW_BYTES = 2**20
#: What the row bound's error carries, so run_scoped_query can name it (the agent's SQL cannot make
#: anything worse by raising the same text: it only gets the same advice).
ROW_TOO_LARGE = "schema-architect: a row over the size limit"
#: The rewriter's own string literals: shown as they are in rewritten_sql (every other literal is elided).
OWN_LITERALS = frozenset({ROW_TOO_LARGE})


def _row_bound() -> ast.SelectStmt:
    """``SELECT * FROM (query) AS _sa_rows WHERE <the row as text is at most MAX_ROW_BYTES>``, the query
    left empty; its nodes carry no location, as every node the rewriter adds (error positions map back
    through the located ones: sqlsafe/redact.py ``source_location``)."""
    stmt = parse_sql(
        "SELECT * FROM (SELECT) AS _sa_rows WHERE CAST(CASE WHEN pg_catalog.octet_length(CAST(_sa_rows AS "
        f"pg_catalog.text)) > {MAX_ROW_BYTES} THEN '{ROW_TOO_LARGE}' END AS pg_catalog.int4) IS NULL")[0].stmt
    for node in walk(stmt):
        if isinstance(getattr(node, "location", None), int):
            node.location = -1
    assert isinstance(stmt, ast.SelectStmt)  # the statement just above
    return stmt


_ROW_BOUND = _row_bound()


def _cap_rows(stmt: ast.SelectStmt, cap: int) -> ast.SelectStmt:
    """Make the server stop after ``cap`` rows (set LIMIT, or add one around a query that has its own),
    and refuse a row larger than :data:`MAX_ROW_BYTES` as text before it is sent.

    The size test sits above the LIMIT, so it sees only the rows that are returned (no qual is pushed
    below a LIMIT) and the planner keeps its top-N sort."""
    const = ast.A_Const(val=ast.Integer(ival=cap))
    bound = copy.deepcopy(_ROW_BOUND)
    assert bound.fromClause is not None  # FROM (SELECT) AS _sa_rows
    bound.fromClause[0].subquery = stmt
    count = enums.LimitOption.LIMIT_OPTION_COUNT
    if stmt.limitCount is None and stmt.limitOption != enums.LimitOption.LIMIT_OPTION_WITH_TIES:
        stmt.limitCount, stmt.limitOption = const, count
    else:  # its own LIMIT (or FETCH ... WITH TIES) stays inside; ours goes around it
        bound.limitCount, bound.limitOption = const, count
    return bound


def _without_costs(options: tuple[ast.DefElem, ...] | None) -> tuple[ast.DefElem, ...]:
    """EXPLAIN options with COSTS OFF: estimates come from statistics over every user's rows (how many
    rows ``user_id = 'u_bob'`` matches), so a caller bound to one user sees the plan's shape only."""
    kept = [o for o in options or () if o.defname != "costs"]
    return (*kept, ast.DefElem(defname="costs", arg=_s("off"), defaction=enums.DefElemAction.DEFELEM_UNSPEC))


def rewrite(checked: CheckedQuery, data: UserDataMap, caller_param: int, row_cap: int | None = None) -> Rewritten:
    """Scope ``checked`` to the caller (``$caller_param``); raise QueryRefused / UnknownRelation.

    Works on a fresh parse of the checked text (cheaper than a deep copy), so ``checked`` can be
    rewritten again after the catalog map is refreshed.
    """
    parsed = parse_sql(checked.sql)[0].stmt
    explain = parsed if isinstance(parsed, ast.ExplainStmt) else None
    select = explain.query if explain is not None else parsed
    if not isinstance(select, ast.SelectStmt):
        raise TypeError("check_sql passes only a SELECT or an EXPLAIN of one")
    out = Rewritten(sql="", caller_param=caller_param)
    scoper = _Scoper(data, caller_param)
    _ScopeRewriter(checked, scoper, out)(select)
    if out.masked:
        _refuse_masked_filters(checked, {m.rsplit(".", 1)[1] for m in out.masked})
    if row_cap is not None and explain is None:
        select = _cap_rows(select, row_cap)
    stmt: ast.Node = select
    if explain is not None:
        explain.query = select
        explain.options = _without_costs(explain.options)
        stmt = explain
    out.sql = RawStream()(stmt)
    out.shown_sql = elide_sql_literals(out.sql, keep=OWN_LITERALS)
    out.tree = stmt
    return out


def prepare(sql: str, data: UserDataMap, caller_param: int, row_cap: int | None = None, *,
            caller_setting: str = CALLER_SETTING) -> tuple[Prepared, bool]:
    """Check and rewrite ``sql`` for ``data``, through the map's LRU; returns (result, cache hit).

    Raises QueryRefused / UnknownRelation exactly as :func:`check_sql` and :func:`rewrite` do;
    refusals and unknown names are not cached (a refreshed map may know the name).
    """
    cacheable = len(sql) <= MAX_CACHED_SQL_CHARS
    key = (sql, caller_setting, caller_param, row_cap)
    hit = data.rewrites.get(key) if cacheable else None
    if isinstance(hit, Prepared):  # what this function put there
        return hit, True
    checked = check_sql(sql, caller_setting=caller_setting)
    try:
        out = rewrite(checked, data, caller_param, row_cap)
    except RecursionError:  # printing walks the tree recursively: a shape the depth estimate missed
        raise QueryRefused("sql-too-deep", "The query nests too deeply to rewrite.",
                           "Flatten it: use a CTE (WITH) or a join instead of nesting subqueries.") from None
    prepared = Prepared(out.sql, out.shown_sql, caller_param, checked.max_param, checked.is_explain,
                        tuple(out.scoped), tuple(out.shared), tuple(sorted(set(out.masked))))
    if cacheable:
        data.rewrites.put(key, prepared)
    return prepared, False

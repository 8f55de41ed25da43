"""Layer 1b: what PostgreSQL itself resolves a query to, checked before any of it runs.

The raw tree does not show every call. PostgreSQL reads ``(x).f`` and ``t.f`` as ``f(x)`` when ``f``
is not a field, an operator or a cast may be a user's function, and an unqualified name may resolve to
a function in ``public`` that fits the argument types better than the built-in. So the static checks
(:mod:`.checker`) are followed by PostgreSQL's own analysis of the query exactly as it will run:

* The rewritten query, with each ``$n`` replaced by a NULL of the type its value is sent as, becomes a
  temporary view inside a transaction that is always rolled back. A view is parsed and analysed,
  never planned or executed: nothing in it runs, and the planner's estimates (which evaluate stable
  functions) are never reached.
* In the same round trip come back ``pg_get_viewdef`` (the analysed query printed back, every call
  spelled ``f(args)`` and every cast ``::type``) and the view's ``pg_depend`` rows. Built-in objects
  are pinned and never recorded there, so every function, operator or domain that shows up in
  ``pg_depend`` is a user's or an extension's.

Both are then checked: every function in the printed query must be on the allowlist (and
``current_setting`` only of a literal, readable name), no cast may look names up in the catalog
(``::regclass`` and friends), and ``pg_depend`` may name no function or operator outside an extension
on :data:`SAFE_EXTENSIONS`, and no domain whose CHECK calls one.

A verdict is kept per (rewritten SQL, parameter types) on the :class:`~.classify.UserDataMap`, so a
repeated query costs nothing more; a new one costs one round trip. The map is re-read at least every
minute, and its verdicts with it: a function created in ``public`` since is seen within that time.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Sequence
from typing import TYPE_CHECKING, Any, NoReturn, Protocol

from pglast import ast, parse_sql
from pglast.stream import RawStream
from pglast.visitors import Ancestor, Visitor

from ..database import psycopg_adapter
from ..database.queries import query
from .errors import QueryRefused
from .functions import READABLE_SETTINGS, is_allowed
from .redact import shown

if TYPE_CHECKING:
    from psycopg import AsyncConnection
    from psycopg.abc import AdaptContext

# Extensions whose functions and operators are pure computations on their arguments (text similarity,
# vectors, case-insensitive text, ...). Their operators are used in ordinary queries (citext's =,
# pgvector's <->); nothing here reads other data, sleeps, locks or runs SQL held in a string.
SAFE_EXTENSIONS: tuple[str, ...] = (
    "btree_gin", "btree_gist", "citext", "cube", "earthdistance", "fuzzystrmatch", "hstore", "intarray",
    "isn", "ltree", "pg_trgm", "unaccent", "vector",
)

# Casts to these types look a name up in the catalog: they reveal which objects exist, and the error
# for a name that does not exist repeats the text (a row's value) outside the fence.
LOOKUP_TYPES = frozenset({
    "regclass", "regcollation", "regdictionary", "regnamespace", "regoper", "regoperator", "regproc",
    "regprocedure", "regrole", "regtype",
})

VIEW_PREFIX = "schema_architect_resolve_"

# One statement. $1: the safe extensions, $2: the view names. For each view: the analysed query printed
# back, and the objects it depends on that a query may not use (pinned built-ins are never in pg_depend).
RESOLVE_SQL = query("resolve_views.sql")

_SETTINGS_SQL = query("resolve_settings.sql")  # $1: the statement and lock timeout

# SQLSTATEs meaning "this database cannot analyse here" rather than "the query is wrong": no TEMP
# privilege (42501), a read-only standby (25006).
_UNAVAILABLE = {"42501", "25006"}


class BatchResult(Protocol):
    """What :func:`resolve` reads of one statement's outcome (``tools.database.pipeline.StatementResult``)."""

    @property
    def error(self) -> Exception | None: ...
    @property
    def rows(self) -> Sequence[Any]: ...


class BatchRunner(Protocol):
    """``tools.database.pipeline.run_batch``: statements ((SQL, params), ...) in one round trip."""

    def __call__(self, conn: AsyncConnection[Any], statements: Sequence[tuple[str, Sequence[Any]]], *,
                 reset: Sequence[str]) -> Awaitable[Sequence[BatchResult]]: ...


class ResolutionFailed(Exception):
    """PostgreSQL rejected the query while analysing it: ``error`` is its psycopg error, ``index`` which
    query (for a batch); the caller reports it as it would the query's own error."""

    def __init__(self, error: Exception, index: int, printed: str, shift: int) -> None:
        super().__init__(str(error))
        self.error, self.index = error, index
        #: the query's SELECT as PostgreSQL received it; the error position, less ``shift``, points into it
        self.printed, self.shift = printed, shift


def param_types(conn: AdaptContext, params: Sequence[Any]) -> tuple[int, ...]:
    """The type oid each value is sent as (0: unknown, PostgreSQL infers it), as run_batch sends them."""
    return psycopg_adapter.param_types(conn, params)


class _TypedNulls(Visitor):
    """Replaces ``$n`` with ``NULL::type``, the type its value is sent as (a view has no parameters)."""

    def __init__(self, names: dict[int, tuple[str, bool] | None]) -> None:
        super().__init__()
        self.names = names

    def visit_ParamRef(self, ancestors: Ancestor, node: ast.ParamRef) -> ast.Node:
        null = ast.A_Const(isnull=True)
        named = self.names.get(node.number or 0)
        if named is None:
            return null
        name, is_array = named
        return ast.TypeCast(arg=null, typeName=ast.TypeName(
            names=(ast.String(sval="pg_catalog"), ast.String(sval=name)), typemod=-1,
            arrayBounds=(ast.Integer(ival=-1),) if is_array else None))


def _type_names(conn: AdaptContext, oids: Sequence[int]) -> dict[int, tuple[str, bool] | None]:
    out: dict[int, tuple[str, bool] | None] = {}
    for number, oid in enumerate(oids, 1):
        info = conn.adapters.types.get(oid) if oid else None
        if info is None:
            out[number] = None
        else:
            out[number] = (info.name, getattr(info, "array_oid", None) == oid and oid != info.oid)
    return out


def view_sql(sql: str, conn: AdaptContext, oids: Sequence[int], name: str) -> tuple[str, str]:
    """``CREATE TEMP VIEW`` of ``sql``'s SELECT (of an EXPLAIN, its query), ``$n`` as typed NULLs;
    and that SELECT as printed in it (error positions point into it, after :func:`view_prefix`).

    Wrapped as ``SELECT 1 FROM (query) AS q``: a view needs distinct column names, a subquery does not.
    """
    stmt = parse_sql(sql)[0].stmt
    select = stmt.query if isinstance(stmt, ast.ExplainStmt) else stmt
    if select is None:
        raise TypeError("view_sql needs a statement with a query")
    _TypedNulls(_type_names(conn, oids))(select)
    inner = RawStream()(select)
    return f"{view_prefix(name)}{inner}) AS q", inner


def view_prefix(name: str) -> str:
    return f"CREATE TEMPORARY VIEW {name} AS SELECT 1 FROM ("


class ResolvedCalls(Visitor):
    """Checks the query as PostgreSQL printed it back: every call and cast it really makes."""

    def __init__(self, caller_setting: str) -> None:
        super().__init__()
        self.caller_setting = caller_setting

    def visit_FuncCall(self, ancestors: Ancestor, node: ast.FuncCall) -> None:
        parts: list[str] = [p.sval for p in node.funcname or ()]
        name = parts[-1]
        schema = parts[-2] if len(parts) > 1 else None
        if schema not in (None, "pg_catalog") or len(parts) > 2:
            _refuse_call(f"{schema}.{name}")
        if name == "current_setting":
            value = _literal_text(node.args[0]) if node.args else None
            if value is None or value.lower() not in READABLE_SETTINGS | {self.caller_setting}:
                raise QueryRefused(
                    "sql-function-not-allowed",
                    "The query calls current_setting() of a setting that is not a literal, readable name "
                    "(written as (x).current_setting or x.current_setting, it is still a call): custom "
                    "settings can hold secrets.",
                    f"Remove it; the caller's id is current_setting('{self.caller_setting}').", obj="current_setting")
        elif not is_allowed(name):
            _refuse_call(name)

    def visit_TypeCast(self, ancestors: Ancestor, node: ast.TypeCast) -> None:
        type_name = node.typeName.names[-1].sval if node.typeName and node.typeName.names else ""
        if type_name in LOOKUP_TYPES:
            raise QueryRefused(
                "sql-function-not-allowed",
                f"A cast to {type_name} looks names up in the system catalog: it shows which objects exist, "
                "and its error repeats the text being cast.",
                "Compare text with text instead of casting to a catalog type.", obj=type_name)


def _literal_text(node: ast.Node | None) -> str | None:
    while isinstance(node, ast.TypeCast):
        node = node.arg
    if isinstance(node, ast.A_Const) and isinstance(node.val, ast.String):
        return node.val.sval
    return None


def _refuse_call(name: str) -> NoReturn:
    what = shown(name, "function")
    raise QueryRefused(
        "sql-function-not-allowed",
        f"PostgreSQL resolves this query to a call of {what}(), which is not on the allowlist of "
        "side-effect-free built-ins. Attribute notation calls functions too: (x).f and t.f mean f(x) "
        "when f is not a column.",
        "Select real columns and call only ordinary built-in functions.", obj=what)


def check_printed(viewdef: str, unsafe: list[str], caller_setting: str) -> None:
    """Raise :class:`QueryRefused` unless PostgreSQL's analysis shows only allowed calls.

    Its ``analysed`` is True: the query reached PostgreSQL as a view definition, and nothing of it ran.
    """
    try:
        _check_printed(viewdef, unsafe, caller_setting)
    except QueryRefused as exc:
        exc.analysed = True
        raise


def _check_printed(viewdef: str, unsafe: list[str], caller_setting: str) -> None:
    if unsafe:
        objects = ", ".join(shown(o, "object") for o in sorted(unsafe)[:5])
        raise QueryRefused(
            "sql-function-not-allowed",
            f"PostgreSQL resolves this query to objects defined in the database, not built in: {objects}. "
            "A user-defined function or operator can read other users' rows or change state (attribute "
            "notation (x).f, an operator or an implicit cast can call one).",
            "Use built-in functions and operators only.")
    stmt = parse_sql(viewdef)[0].stmt
    if stmt is not None:
        ResolvedCalls(caller_setting)(stmt)


async def resolve(conn: AsyncConnection[Any], sqls: Sequence[tuple[str, Sequence[int]]], *,
                  run_batch: BatchRunner, caller_setting: str, timeout_ms: int) -> None:
    """Check each (SQL, parameter type oids) by PostgreSQL's analysis, in one round trip.

    Raises QueryRefused (a disallowed call, or this database cannot analyse here) or
    :class:`ResolutionFailed` (PostgreSQL rejected the query itself: its own error, to be reported).
    ``conn`` must be idle; it is returned idle, with nothing left behind (the transaction is rolled back).
    ``run_batch`` is :func:`tools.database.pipeline.run_batch` (passed in: both are layer 1).
    """
    names = [f"{VIEW_PREFIX}{i}" for i in range(1, len(sqls) + 1)]
    timeout = f"{int(timeout_ms)}ms"
    try:
        views = [view_sql(sql, conn, oids, name) for (sql, oids), name in zip(sqls, names, strict=True)]
    except RecursionError:
        raise QueryRefused("sql-too-deep", "The query nests too deeply to check.",
                           "Flatten it: use a CTE (WITH) or a join instead of nesting subqueries.") from None
    statements: list[tuple[str, Sequence[Any]]] = [
        # A read-only default (the scoped role's) would refuse the view; a standby refuses this line.
        # The ROLLBACK goes in the reset segment (after a Sync of its own), so it ends the block even if
        # a statement here failed, and no ROLLBACK outside a block warns into the server's log.
        ("BEGIN READ WRITE", ()),
        (_SETTINGS_SQL, [timeout]),
        *[(view, ()) for view, _ in views],
        (RESOLVE_SQL, [list(SAFE_EXTENSIONS), names]),
    ]
    results = await run_batch(conn, statements, reset=("ROLLBACK",))
    for index, result in enumerate(results):
        if result.error is None:
            continue
        state = getattr(result.error, "sqlstate", "") or ""
        in_view = 2 <= index < 2 + len(sqls)
        if state in _UNAVAILABLE and (not in_view or "temporary" in str(result.error)):
            raise QueryRefused(
                "sql-resolution-unavailable",
                "The query could not be checked: PostgreSQL's analysis of it needs a temporary view in a "
                "rolled-back transaction, and this connection may not create one (SQLSTATE "
                f"{state}: no TEMPORARY privilege on the database, or a read-only standby).",
                "Connect to the primary as a role with TEMPORARY on the database (GRANT TEMPORARY ON "
                "DATABASE ... TO the role), as PostgreSQL grants every role by default.")
        if in_view:
            i = index - 2
            raise ResolutionFailed(result.error, i, views[i][1], len(view_prefix(names[i])))
        raise QueryRefused("sql-resolution-unavailable",
                           f"The query could not be checked: the analysis failed (SQLSTATE {state}).",
                           "Retry; if it persists, report it with the SQLSTATE.")
    rows = results[-1].rows
    if len(rows) != len(sqls):
        raise QueryRefused("sql-resolution-unavailable", "The query could not be checked: the analysis "
                           "returned no result.", "Retry; if it persists, report it.")
    for _name, viewdef, unsafe in rows:
        check_printed(viewdef, unsafe if isinstance(unsafe, list) else json.loads(unsafe or "[]"),
                      caller_setting)

"""Layer 1: parse the agent's SQL with PostgreSQL's own parser and refuse anything but one plain read.

``check_sql(sql)`` needs no database. It accepts exactly one ``SELECT`` (or ``EXPLAIN`` without
``ANALYZE`` of one) made only of known, side-effect-free constructs, and calling only allow-listed
functions (see :mod:`.functions`). Which tables the query may read is decided later, against the live
catalog, by :mod:`.rewriter`.

Each check is a small pglast ``Visitor``. Anything the checks do not know is refused: the list of
node kinds below is an allowlist, so a construct added by a future PostgreSQL is refused until
someone reads what it does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import NoReturn

from pglast import ast, parse_sql
from pglast.parser import ParseError
from pglast.visitors import Ancestor, Skip, Visitor

from ..schema.findings import SqlRefusalId
from ..schema.names import CALLER_SETTING
from .errors import QueryRefused, line_col
from .functions import READABLE_SETTINGS, is_allowed
from .redact import is_plain, redact_parse_message, shown

# Node kinds a read may contain. Not here, so refused: writes (Insert/Update/Delete/Merge, also in
# CTEs), utility statements, XML and JSON_TABLE constructs, TABLESAMPLE, locking and INTO.
ALLOWED_NODES: frozenset[str] = frozenset({
    "RawStmt", "SelectStmt", "ExplainStmt", "DefElem", "ResTarget", "ColumnRef", "A_Star", "A_Const",
    "Integer", "Float", "Boolean", "String", "BitString", "A_Expr", "BoolExpr", "FuncCall", "TypeCast",
    "TypeName", "RangeVar", "RangeSubselect", "RangeFunction", "JoinExpr", "SortBy", "WindowDef",
    "CommonTableExpr", "WithClause", "CTESearchClause", "CTECycleClause", "SubLink", "CaseExpr",
    "CaseWhen", "NullTest", "BooleanTest", "A_Indirection", "A_Indices", "A_ArrayExpr", "RowExpr",
    "CoalesceExpr", "MinMaxExpr", "SQLValueFunction", "ParamRef", "Alias", "CollateClause",
    "GroupingSet", "ColumnDef", "NamedArgExpr",
})

# System columns reveal physical layout: ctid gaps show where other users' rows sit.
SYSTEM_COLUMNS = frozenset({"ctid", "xmin", "xmax", "cmin", "cmax", "tableoid"})
SYSTEM_SCHEMAS = frozenset({"pg_catalog", "information_schema", "pg_toast"})
EXPLAIN_OPTIONS = frozenset({"costs", "verbose", "format", "settings", "generic_plan", "summary",
                             "memory", "buffers"})
MAX_SQL_CHARS = 100_000
_OPERATOR = re.compile(r"[-+*/<>=~!@#%^&|`?]+\Z")


@dataclass
class CheckedQuery:
    """A query that passed the static checks. ``stmt`` is the AST the rewriter changes."""

    sql: str
    stmt: ast.SelectStmt | ast.ExplainStmt
    is_explain: bool
    max_param: int  # highest $n used, 0 if none

    @property
    def select(self) -> ast.SelectStmt:
        select = self.stmt.query if isinstance(self.stmt, ast.ExplainStmt) else self.stmt
        assert isinstance(select, ast.SelectStmt)  # check_sql refused any other statement
        return select


def refuse_at(sql: str, node: ast.Node | None, rule: SqlRefusalId, message: str, fix: str,
               obj: str | None = None) -> QueryRefused:
    loc = getattr(node, "location", None)
    if isinstance(loc, int) and loc >= 0:
        line, col = line_col(sql, loc)
        return QueryRefused(rule, f"{message} (line {line}, column {col})", fix, obj=obj, line=line)
    return QueryRefused(rule, message, fix, obj=obj)


def function_name(node: ast.FuncCall) -> tuple[str | None, str]:
    """(schema or None, name) exactly as written, quotes resolved by the parser."""
    parts: list[str] = [p.sval for p in node.funcname or ()]
    return (parts[-2] if len(parts) > 1 else None), parts[-1]


class StaticChecks(Visitor):
    """Refuses constructs and functions that are not plain, side-effect-free reads."""

    def __init__(self, sql: str, caller_setting: str = CALLER_SETTING, invented_names: bool = True) -> None:
        super().__init__()
        self.sql = sql
        self.caller_setting = caller_setting
        self.invented_names = invented_names
        self.max_param = 0

    def refuse(self, node: ast.Node | None, rule: SqlRefusalId, message: str, fix: str,
               obj: str | None = None) -> NoReturn:
        raise refuse_at(self.sql, node, rule, message, fix, obj)

    def visit(self, ancestors: Ancestor, node: ast.Node) -> None:
        kind = type(node).__name__
        if kind in ALLOWED_NODES:
            return None
        if kind in {"InsertStmt", "UpdateStmt", "DeleteStmt", "MergeStmt"}:
            self.refuse(node, "sql-write-not-allowed",
                        f"{kind[:-4].upper()} inside the query is refused: this tool only reads.",
                        "Write a plain SELECT; data-modifying CTEs are not allowed.")
        if kind == "RangeTableSample":
            self.refuse(node, "sql-construct-not-allowed", "TABLESAMPLE is refused.",
                        "Use ORDER BY random() LIMIT n to sample the caller's rows.")
        self.refuse(node, "sql-construct-not-allowed",
                    f"The construct {kind} is not allowed in a scoped read-only query.",
                    "Rewrite it as a plain SELECT using ordinary expressions, joins and subqueries.")

    def visit_LockingClause(self, ancestors: Ancestor, node: ast.LockingClause) -> None:
        self.refuse(node, "sql-write-not-allowed",
                    "Row locking (FOR UPDATE / FOR SHARE) is refused: it takes locks other sessions wait on.",
                    "Remove the FOR UPDATE/SHARE clause.")

    def visit_IntoClause(self, ancestors: Ancestor, node: ast.IntoClause) -> None:
        self.refuse(node, "sql-write-not-allowed", "SELECT INTO creates a table and is refused.",
                    "Remove INTO; the rows come back in the result.")

    # Names the agent invents come back as result column names and in rewritten_sql; a quoted
    # name can hold any text (a copied value, an email), so invented names must be plain.
    def _invented(self, node: ast.Node | None, *names: str | tuple[ast.String | str, ...] | None) -> None:
        if not self.invented_names:
            return
        for name in names:
            values = [n.sval if isinstance(n, ast.String) else n for n in name] \
                if isinstance(name, (list, tuple)) else [name]
            for value in values:
                if value is not None and not is_plain(value):
                    self.refuse(node, "sql-quoted-alias",
                                "A name the query makes up (column or table alias, CTE or window name, "
                                "column definition) is a quoted identifier that is not a plain "
                                "lower-case name; such names are echoed in results, so they may hold "
                                "only a-z, 0-9, _ and $.",
                                "Use a plain name such as total_tasks (no quotes, spaces, capitals "
                                "or symbols).")

    def visit_ResTarget(self, ancestors: Ancestor, node: ast.ResTarget) -> None:
        self._invented(node, node.name)

    def visit_Alias(self, ancestors: Ancestor, node: ast.Alias) -> None:
        self._invented(None, node.aliasname, node.colnames or ())  # an Alias has no location

    def visit_CommonTableExpr(self, ancestors: Ancestor, node: ast.CommonTableExpr) -> None:
        self._invented(node, node.ctename, node.aliascolnames or ())

    def visit_ColumnDef(self, ancestors: Ancestor, node: ast.ColumnDef) -> None:
        self._invented(node, node.colname)

    def visit_WindowDef(self, ancestors: Ancestor, node: ast.WindowDef) -> None:
        self._invented(node, node.name)

    def visit_CTESearchClause(self, ancestors: Ancestor, node: ast.CTESearchClause) -> None:
        self._invented(node, node.search_seq_column)

    def visit_CTECycleClause(self, ancestors: Ancestor, node: ast.CTECycleClause) -> None:
        self._invented(node, node.cycle_mark_column, node.cycle_path_column)

    def visit_NamedArgExpr(self, ancestors: Ancestor, node: ast.NamedArgExpr) -> None:
        self._invented(node, node.name)

    def visit_ParamRef(self, ancestors: Ancestor, node: ast.ParamRef) -> None:
        self.max_param = max(self.max_param, node.number or 0)

    def visit_ColumnRef(self, ancestors: Ancestor, node: ast.ColumnRef) -> None:
        last = (node.fields or (None,))[-1]
        if isinstance(last, ast.String) and last.sval in SYSTEM_COLUMNS:
            self.refuse(node, "sql-system-column",
                        f"The system column {last.sval} is refused: it exposes the physical layout "
                        "of rows, including other users' rows.",
                        "Select ordinary columns (use the primary key to identify rows).", last.sval)

    def visit_A_Expr(self, ancestors: Ancestor, node: ast.A_Expr) -> None:
        # OPERATOR(schema.op) could call a user-defined operator's function.
        names: tuple[ast.String, ...] = node.name or ()
        if len(names) > 1 and names[0].sval != "pg_catalog":
            operator = names[-1].sval or ""
            self.refuse(node, "sql-function-not-allowed",
                        f"The operator {shown(names[0].sval, 'schema')}."
                        f"{operator if _OPERATOR.match(operator) else '?'} is not a built-in operator.",
                        "Use the built-in operators.")

    def visit_TypeName(self, ancestors: Ancestor, node: ast.TypeName) -> None:
        if node.setof or node.pct_type:
            self.refuse(node, "sql-construct-not-allowed", "SETOF / %TYPE type names are refused.",
                        "Cast to a plain type name.")

    def visit_RangeVar(self, ancestors: Ancestor, node: ast.RangeVar) -> None:
        relname = node.relname or ""
        if node.catalogname:
            self.refuse(node, "sql-table-not-user-scoped",
                        f"Three-part name {shown(node.catalogname)}.{shown(node.schemaname)}."
                        f"{shown(node.relname)} is refused: queries run in the current database only.",
                        "Write schema.table or just the table name.", shown(node.relname))
        schema = node.schemaname
        if (schema in SYSTEM_SCHEMAS or (schema or "").startswith("pg_temp")
                or (not schema and relname.startswith("pg_"))):
            self.refuse(node, "sql-system-catalog",
                        f"Reading the system catalog relation {shown(node.relname)} is refused: catalogs "
                        "and statistics views leak other users' data, row counts and queries.",
                        "Ask the schema tools for structure; query your own tables for data.",
                        shown(node.relname))

    def visit_FuncCall(self, ancestors: Ancestor, node: ast.FuncCall) -> None:
        schema, name = function_name(node)
        shown_name = shown(f"{schema}.{name}" if schema else name, "function name")
        if len(node.funcname or ()) > 2 or (schema is not None and schema != "pg_catalog"):
            self.refuse(node, "sql-function-not-allowed",
                        f"The function {shown_name} is refused: only built-in pg_catalog functions on "
                        "the allowlist may be called, not functions defined in the database.",
                        "Use built-in functions, or express the logic in SQL.", shown_name)
        if name == "current_setting":
            self._check_current_setting(node)
            return
        if not is_allowed(name):
            self.refuse(node, "sql-function-not-allowed",
                        f"The function {shown_name}() is not on the allowlist of side-effect-free "
                        "functions (it could change settings, sleep, lock, write, read files or run SQL "
                        "held in a string).",
                        "Use ordinary built-in functions (string, math, date, JSON, aggregates).",
                        shown_name)

    def _check_current_setting(self, node: ast.FuncCall) -> None:
        args = node.args or ()
        first = args[0] if args else None
        value = getattr(getattr(first, "val", None), "sval", None) if isinstance(first, ast.A_Const) else None
        if value is None or value.lower() not in READABLE_SETTINGS | {self.caller_setting}:
            self.refuse(node, "sql-function-not-allowed",
                        "current_setting() is refused for this setting: custom settings can hold "
                        "secrets, and only a literal, harmless setting name may be read.",
                        f"Remove it; the caller's id is current_setting('{self.caller_setting}').",
                        "current_setting")


def _parse_one(sql: str) -> ast.Node | None:
    if "\x00" in sql:
        raise QueryRefused("sql-nul-byte",
                           "The query contains a NUL byte, which PostgreSQL's parser treats as the end "
                           "of the text: what is checked would not be what runs.",
                           "Remove the NUL (\\x00) character.")
    if len(sql) > MAX_SQL_CHARS:
        raise QueryRefused("sql-too-long", f"The query is longer than {MAX_SQL_CHARS} characters.",
                           "Send a shorter query.")
    try:
        stmts = parse_sql(sql)
    except ParseError as exc:
        message, index = (exc.args + (None,))[:2]
        message = redact_parse_message(str(message))  # never echo a literal, comment or quoted name
        if index is None and "end of input" in str(message):
            index = len(sql.rstrip())  # the parser gives no position for a premature end
        if isinstance(index, int):
            line, col = line_col(sql, index)
            raise QueryRefused("sql-parse-error",
                               f"The query does not parse: {message} at line {line}, column {col}.",
                               "Fix the SQL syntax (PostgreSQL dialect).", line=line) from None
        raise QueryRefused("sql-parse-error", f"The query does not parse: {message}.",
                           "Fix the SQL syntax (PostgreSQL dialect).") from None
    except RecursionError:
        raise QueryRefused("sql-parse-error", "The query is nested too deeply to check.",
                           "Flatten the expression.") from None
    if len(stmts) != 1:
        raise QueryRefused("sql-multiple-statements",
                           f"The text holds {len(stmts)} statements; exactly one is run per call, so "
                           "nothing can escape the read-only transaction (COMMIT; ... is the classic "
                           "bypass).",
                           "Send one SELECT per call." if stmts else "Send a SELECT.")
    return stmts[0].stmt


def _check_statement(sql: str, stmt: ast.Node | None) -> ast.SelectStmt:
    """Refuses anything but SELECT / EXPLAIN SELECT; returns the SELECT (the one explained, for EXPLAIN)."""
    if isinstance(stmt, ast.ExplainStmt):
        for opt in stmt.options or ():
            if opt.defname not in EXPLAIN_OPTIONS:
                option = opt.defname.upper() if is_plain(opt.defname) else "<quoted name>"
                what = "EXPLAIN ANALYZE runs the statement and reports rows it filtered out" \
                    if opt.defname == "analyze" else f"The EXPLAIN option {option} is not allowed"
                raise refuse_at(sql, stmt, "sql-write-not-allowed" if opt.defname == "analyze"
                                 else "sql-construct-not-allowed",
                                 f"{what}; it is refused.", "Use plain EXPLAIN (costs/format/verbose).")
        if not isinstance(stmt.query, ast.SelectStmt):
            raise QueryRefused("sql-write-not-allowed",
                               f"EXPLAIN of {type(stmt.query).__name__} is refused: only a SELECT may be "
                               "explained.", "EXPLAIN a SELECT.")
        return stmt.query
    if isinstance(stmt, ast.SelectStmt):
        return stmt
    kind = type(stmt).__name__
    writes = {"InsertStmt", "UpdateStmt", "DeleteStmt", "MergeStmt", "TruncateStmt", "CopyStmt",
              "CreateTableAsStmt", "CreateStmt", "DropStmt", "AlterTableStmt", "GrantStmt",
              "LockStmt", "VacuumStmt", "CreateExtensionStmt", "CreatePolicyStmt", "IndexStmt"}
    session = {"TransactionStmt", "VariableSetStmt", "VariableShowStmt", "DiscardStmt",
               "PrepareStmt", "ExecuteStmt", "DeallocateStmt", "DeclareCursorStmt", "FetchStmt",
               "ClosePortalStmt", "ListenStmt", "NotifyStmt", "UnlistenStmt", "DoStmt", "CallStmt",
               "AlterRoleSetStmt", "AlterDatabaseSetStmt", "AlterSystemStmt", "LoadStmt"}
    rule: SqlRefusalId
    if kind in writes:
        rule, why = "sql-write-not-allowed", "it changes data, schema or locks"
    elif kind in session:
        rule, why = "sql-statement-not-allowed", \
            "it changes transaction or session state, runs code, or keeps state between calls"
    else:
        rule, why = "sql-statement-not-allowed", "only SELECT and EXPLAIN SELECT are run"
    raise refuse_at(sql, stmt, rule, f"{kind.removesuffix('Stmt')} statements are refused: {why}.",
                     "Send a single SELECT (or EXPLAIN SELECT); this tool is read-only.")


def check_sql(sql: str, *, caller_setting: str = CALLER_SETTING, invented_names: bool = True) -> CheckedQuery:
    """Parse and check one query; raise :class:`QueryRefused` saying why it cannot run.

    ``invented_names=False`` lets aliases be any quoted name (explain_indexes echoes the app's query
    anyway; run_scoped_query echoes names in its results, so it keeps them plain).

    >>> check_sql("SELECT 1").is_explain
    False
    """
    if not isinstance(sql, str) or not sql.strip():
        raise QueryRefused("sql-empty", "No SQL was given.", "Pass one SELECT statement.")
    stmt = _parse_one(sql)
    select = _check_statement(sql, stmt)
    assert isinstance(stmt, (ast.SelectStmt, ast.ExplainStmt))  # _check_statement refused anything else
    checks = StaticChecks(sql, caller_setting, invented_names)
    try:
        checks(select)
    except RecursionError:
        raise QueryRefused("sql-parse-error", "The query is nested too deeply to check.",
                           "Flatten the expression.") from None
    return CheckedQuery(sql=sql, stmt=stmt, is_explain=isinstance(stmt, ast.ExplainStmt), max_param=checks.max_param)


class CteScopedVisitor(Visitor):
    """Walks a statement knowing, at every table reference, which CTE names are visible.

    PostgreSQL's rules: in ``WITH a AS (...), b AS (...)`` each CTE sees the outer CTEs and the
    ones before it (all of them, itself included, under ``WITH RECURSIVE``); the main query and
    its subqueries see all of them; an inner ``WITH`` adds to, never leaks out of, its own query.
    Subclasses implement :meth:`relation` (a real table) and may implement :meth:`cte_reference`.
    Each scope gets its own visitor with its own copy of the names, so a CTE declared in one
    subquery cannot hide a table in a sibling subquery.
    """

    def __init__(self, ctes: frozenset[str] = frozenset()) -> None:
        super().__init__()
        self.ctes = ctes

    def child(self, ctes: frozenset[str]) -> CteScopedVisitor:
        raise NotImplementedError

    def visit_SelectStmt(self, ancestors: Ancestor, node: ast.SelectStmt) -> type[Skip] | None:
        with_clause = node.withClause
        if with_clause is None:
            return None
        ctes: tuple[ast.CommonTableExpr, ...] = with_clause.ctes or ()
        names = [cte.ctename or "" for cte in ctes]
        scope = self.ctes
        if with_clause.recursive:
            scope = scope | set(names)
            for cte in ctes:
                self.child(scope)(cte)
        else:
            for cte in ctes:
                self.child(scope)(cte)
                scope = scope | {cte.ctename or ""}
        node.withClause = None  # visit the rest of the statement with all CTEs in scope
        try:
            self.child(scope)(node)
        finally:
            node.withClause = with_clause
        return Skip

    def visit_RangeVar(self, ancestors: Ancestor, node: ast.RangeVar) -> ast.Node | None:
        if not node.schemaname and not node.catalogname and node.relname in self.ctes:
            return self.cte_reference(node)
        return self.relation(ancestors, node)

    def cte_reference(self, node: ast.RangeVar) -> ast.Node | None:
        """A reference to a CTE in scope; a replacement node, or None to keep it."""
        return None

    def relation(self, ancestors: Ancestor, node: ast.RangeVar) -> ast.Node | None:
        """A reference to a real table; a replacement node, or None to keep it."""
        return None

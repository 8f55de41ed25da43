"""SQL expressions normalised with PostgreSQL's parser: CHECKs, predicates, defaults, value sets.

Also the gate for every expression that goes into DDL (:func:`sql_expression`, :func:`sql_type`): the
text is parsed as exactly one expression and re-printed from the parse tree, so what reaches the database
is an expression we built, never text we pasted (no second statement, no comment, no subquery).
"""

from __future__ import annotations

import re

from pglast import ast as pg, parse_sql
from pglast.stream import RawStream
from pglast.visitors import Visitor


class ExpressionError(ValueError):
    """Text given as an SQL expression (a default, a CHECK, an index expression or predicate, a type) is
    not exactly one expression; the message says what was wrong and what to pass instead."""


_SELECT_EXTRAS = ("distinctClause", "intoClause", "fromClause", "whereClause", "groupClause", "havingClause",
                  "windowClause", "valuesLists", "sortClause", "limitOffset", "limitCount", "lockingClause",
                  "withClause", "larg", "rarg")


class _Refused(Visitor):
    """Nodes an expression in DDL never needs: subqueries (PostgreSQL refuses them in DEFAULT, CHECK and
    index expressions anyway; refusing them here gives a clear message before anything runs)."""

    def __init__(self):
        self.found: str | None = None

    def visit_SubLink(self, ancestors, node):  # noqa: N802
        self.found = self.found or "a subquery"

    def visit_ParamRef(self, ancestors, node):  # noqa: N802
        self.found = self.found or "a $n parameter"


def _single_target(text: str, what: str, example: str, prefix: str = ""):
    """The one target of ``SELECT <prefix><text>``, or ExpressionError saying why not."""
    shown = text if len(text) <= 120 else text[:117] + "..."
    fix = f"Pass one SQL expression, e.g. {example}."
    if not isinstance(text, str) or not text.strip():
        raise ExpressionError(f"The {what} is empty. {fix}")
    if "\x00" in text:
        raise ExpressionError(f"The {what} contains a NUL byte. {fix}")
    try:
        statements = parse_sql(f"SELECT {prefix}{text}")
    except Exception as exc:  # pglast.parser.ParseError: not SQL at all
        raise ExpressionError(f"The {what} {shown!r} is not one SQL expression ({exc}). {fix}") from None
    if len(statements) != 1:
        raise ExpressionError(f"The {what} {shown!r} holds {len(statements)} statements; a {what} is one "
                              f"expression, never a statement list (no ';'). {fix}")
    stmt = statements[0].stmt
    targets = (stmt.targetList or ()) if isinstance(stmt, pg.SelectStmt) else ()
    if not isinstance(stmt, pg.SelectStmt) or any(getattr(stmt, f, None) for f in _SELECT_EXTRAS) \
            or (stmt.op is not None and stmt.op.name != "SETOP_NONE") or len(targets) != 1 \
            or targets[0].name is not None:
        raise ExpressionError(f"The {what} {shown!r} is more than one expression (a list, a clause such as "
                              f"FROM or WHERE, or an alias after it). {fix}")
    return targets[0].val


def sql_expression(text: str, what: str = "expression", *, example: str = "now(), 'todo', 0 or lower(title)") -> str:
    """``text`` as exactly one SQL expression, re-printed from PostgreSQL's parse tree.

    Refuses (ExpressionError) anything else: several statements (``'x'); COMMIT; ...``), a statement
    list, clauses, aliases, subqueries, parameters. Comments and spacing do not survive the re-print."""
    node = _single_target(text, what, example)
    refused = _Refused()
    refused(node)
    if refused.found:
        raise ExpressionError(f"The {what} {text!r} contains {refused.found}; DDL expressions may not. Pass a "
                              f"plain expression, e.g. {example}.")
    printed = RawStream()(node)
    if RawStream()(_single_target(printed, what, example)) != printed:  # the re-print reads back as itself
        raise ExpressionError(f"The {what} {text!r} could not be re-printed faithfully. Pass a simpler "
                              f"expression, e.g. {example}.")
    return printed


def sql_type(text: str, what: str = "type") -> str:
    """A type name (``vector(1536)``, ``public.my_enum``, ``text[]``) re-printed from the parse tree."""
    example = "text, varchar(200), numeric(10,2), vector(1536) or a type's name"
    node = _single_target(text, what, example, prefix="NULL::")
    if not isinstance(node, pg.TypeCast) or not isinstance(node.arg, pg.A_Const) or not node.arg.isnull:
        raise ExpressionError(f"The {what} {text!r} is not a type name. Pass one, e.g. {example}.")
    refused = _Refused()
    refused(node)
    if refused.found:
        raise ExpressionError(f"The {what} {text!r} contains {refused.found}. Pass a type name, e.g. {example}.")
    assert node.typeName is not None  # a cast has its type
    return RawStream()(node.typeName)


class _StripCasts(Visitor):
    def visit_TypeCast(self, ancestors, node):  # noqa: N802 (pglast's naming)
        return node.arg


def _parse_expr(expr: str):
    try:
        stmt = parse_sql(f"SELECT {expr}")[0].stmt
    except Exception:  # pglast raises ParseError and friends: not SQL we can normalise
        return None
    if not isinstance(stmt, pg.SelectStmt) or not stmt.targetList:  # an empty expression
        return None
    node = stmt.targetList[0].val
    for _ in range(6):  # casts nest: ((x)::text)::varchar
        node = _StripCasts()(node)
    return node


def _lower_outside_quotes(s: str) -> str:
    parts = re.split(r"('(?:[^']|'')*')", s)
    return "".join(p if p.startswith("'") else p.lower() for p in parts)


def norm_expr(expr: str | None) -> str | None:
    """A CHECK/predicate/index expression with casts, parentheses, spacing and keyword case removed."""
    if expr is None:
        return None
    node = _parse_expr(expr)
    text = RawStream()(node) if node is not None else " ".join(expr.split())
    return _lower_outside_quotes(text)


_NOW = {"now()", "current_timestamp", "transaction_timestamp()", "current_timestamp()"}


def norm_default(default: str | None) -> str | None:
    """``now()`` == ``CURRENT_TIMESTAMP``; ``'false'::boolean`` == ``false``; casts stripped."""
    if default is None or default.strip().lower().startswith("nextval("):
        return None  # serial's nextval() is identity, not a default
    d = norm_expr(default)
    if d in _NOW:
        return "now()"
    if d in ("null",):
        return None
    if m := re.fullmatch(r"'(true|false|t|f|-?\d+(?:\.\d+)?)'", d or ""):
        v = m.group(1)
        return {"t": "true", "f": "false"}.get(v, v)
    if d in ("uuid_generate_v4()", "gen_random_uuid()"):  # both random v4 UUIDs
        return "gen_random_uuid()"
    return d


def _const(node) -> str | None:
    if isinstance(node, pg.A_Const) and node.val is not None:
        v = node.val
        return str(getattr(v, "sval", None) or getattr(v, "ival", None) or getattr(v, "fval", None) or "")
    return None


def _colref(node) -> str | None:
    if isinstance(node, pg.ColumnRef) and node.fields:
        return getattr(node.fields[-1], "sval", None)
    return None


def value_set_of(expr: str) -> tuple[str, frozenset[str]] | None:
    """``col IN ('a','b')``, ``col = ANY (ARRAY['a','b'])`` or ``col = 'a' OR col = 'b'`` -> (col, values)."""
    node = _parse_expr(expr)

    def walk(n: object) -> tuple[str, set[str]] | None:
        if isinstance(n, pg.A_Expr) and (col := _colref(n.lexpr)):
            assert n.kind is not None  # the parser sets every expression's kind
            kind = n.kind.name
            if kind == "AEXPR_IN" and isinstance(n.rexpr, tuple):
                vals = [_const(v) for v in n.rexpr]
            elif kind == "AEXPR_OP_ANY" and isinstance(n.rexpr, pg.A_ArrayExpr):
                vals = [_const(v) for v in n.rexpr.elements or ()]
            elif kind == "AEXPR_OP" and n.name and n.name[0].sval == "=":
                vals = [_const(n.rexpr)]
            else:
                return None
            values = {v for v in vals if v is not None}
            return (col, values) if None not in vals else None
        if isinstance(n, pg.BoolExpr) and n.boolop is not None and n.boolop.name == "OR_EXPR":
            parts = [walk(a) for a in n.args or ()]
            read = [p for p in parts if p is not None]
            if len(read) == len(parts) and len({p[0] for p in read}) == 1:
                return read[0][0], set().union(*(p[1] for p in read))
        return None

    found = walk(node) if node is not None else None
    return (found[0], frozenset(found[1])) if found else None


class _Columns(Visitor):
    def __init__(self):
        self.found: set[str] = set()

    def visit_ColumnRef(self, ancestors, node):  # noqa: N802
        if (name := _colref(node)) is not None:
            self.found.add(name)


def expr_columns(expr: str) -> set[str]:
    """The column names an expression reads."""
    node = _parse_expr(expr)
    if node is None:
        return set()
    v = _Columns()
    v(node)
    return v.found



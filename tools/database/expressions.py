"""SQL expressions normalised with PostgreSQL's parser: CHECKs, predicates, defaults, value sets."""

from __future__ import annotations

import re

from pglast import ast as pg
from pglast import parse_sql
from pglast.stream import RawStream
from pglast.visitors import Visitor


class _StripCasts(Visitor):
    def visit_TypeCast(self, ancestors, node):  # noqa: N802 (pglast's naming)
        return node.arg


def _parse_expr(expr: str):
    try:
        node = parse_sql(f"SELECT {expr}")[0].stmt.targetList[0].val
    except Exception:  # pglast raises ParseError and friends: not SQL we can normalise
        return None
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

    def walk(n) -> tuple[str, set[str]] | None:
        if isinstance(n, pg.A_Expr) and (col := _colref(n.lexpr)):
            kind = n.kind.name
            if kind == "AEXPR_IN" and isinstance(n.rexpr, tuple):
                vals = [_const(v) for v in n.rexpr]
            elif kind == "AEXPR_OP_ANY" and isinstance(n.rexpr, pg.A_ArrayExpr):
                vals = [_const(v) for v in n.rexpr.elements or ()]
            elif kind == "AEXPR_OP" and n.name[0].sval == "=":
                vals = [_const(n.rexpr)]
            else:
                return None
            return (col, set(vals)) if None not in vals else None
        if isinstance(n, pg.BoolExpr) and n.boolop.name == "OR_EXPR":
            parts = [walk(a) for a in n.args]
            if all(parts) and len({p[0] for p in parts}) == 1:
                return parts[0][0], set().union(*(p[1] for p in parts))
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



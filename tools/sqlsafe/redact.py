"""Keeping the agent's own text (and row values) out of everything the tool says back.

The rule, applied everywhere: **output never quotes free text**. Free text is a string literal
(``'...'``, ``E'...'``, ``$$...$$``, ``U&'...'``), a comment, a value from a row, or a name that
only exists because the agent wrote it in quotes. Someone reading the tool's output cannot tell
text the agent typed from data the query read, so neither is echoed:

* ``rewritten_sql`` is the executed SQL (printed from the AST) with every string literal token
  shown as ``'…'`` (:func:`elide_sql_literals`); execution uses the real literals.
* Database errors keep their kind, SQLSTATE and position; a quoted fragment survives only if it is
  a *plain* identifier (what an unquoted name folds to: ``[a-z_][a-z0-9_$]*``) that the executed
  query itself names (:func:`redact_db_message`). Data exceptions (SQLSTATE class 22) quote
  values, so everything between their first and last quote goes.
* Refusals name objects only through :func:`shown`, which prints a name only if it is plain.
* Names the agent invents (column and table aliases, CTE names...) must be plain: they come back
  as result column names, so a quoted ``"any text"`` alias is refused by the checker.

A plain identifier cannot carry arbitrary text: the parser folds unquoted names to lower case and
they cannot contain ``@``, spaces, quotes and so on.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator

from pglast import ast
from pglast.keywords import (COL_NAME_KEYWORDS, RESERVED_KEYWORDS, TYPE_FUNC_NAME_KEYWORDS,
                             UNRESERVED_KEYWORDS)

REDACTED = "<redacted>"
ELIDED = "…"
_PLAIN = re.compile(r"[a-z_][a-z0-9_$]*\Z")
_KEYWORDS = frozenset(COL_NAME_KEYWORDS) | frozenset(RESERVED_KEYWORDS) | \
    frozenset(TYPE_FUNC_NAME_KEYWORDS) | frozenset(UNRESERVED_KEYWORDS)
_PUNCT = re.compile(r"[-+*/<>=~!@#%^&|`?.,;:()\[\]{}]+\Z")
_NUMBER = re.compile(r"[0-9]+(\.[0-9]*)?\Z")
_FRAGMENT = re.compile(r'"([^"]*)"')
# Shorter literal values are not searched for in error text (too many false hits on ordinary
# words); they can still not appear quoted, which is how PostgreSQL echoes values.
MIN_SECRET_CHARS = 4


def is_plain(name: object) -> bool:
    """True for a name an unquoted identifier could produce (so it carries no free text)."""
    return isinstance(name, str) and _PLAIN.match(name) is not None


def shown(name: str | None, what: str = "name") -> str:
    """``name`` if it is plain, else a placeholder: refusals never echo quoted text."""
    if name is None:
        return f"<{what}>"
    parts = name.split(".")
    if all(is_plain(p) for p in parts):
        return name
    return f"<quoted {what}>"


def redact_quoted(message: str, keep: Callable[[str], bool], *, greedy: bool = False) -> str:
    """Replace ``"..."`` fragments of ``message`` that ``keep`` rejects.

    PostgreSQL does not escape quotes inside the values it quotes, so a value holding ``"`` could
    split into fragments and leave part of itself outside; with an odd number of quotes, or
    ``greedy``, everything from the first quote to the last is replaced.
    """
    count = message.count('"')
    if not count:
        return message
    if greedy or count % 2:
        first, last = message.index('"'), message.rindex('"')
        if first == last:
            return message[:first] + f'"{REDACTED}"'
        return message[:first] + f'"{REDACTED}"' + message[last + 1:]

    def sub(m: re.Match) -> str:
        return m.group(0) if keep(m.group(1)) else f'"{REDACTED}"'

    return _FRAGMENT.sub(sub, message)


def redact_parse_message(message: str) -> str:
    """A parser message with the offending token kept only if it is a keyword, symbol or plain name.

    ``syntax error at or near "FROM"`` stays; ``unterminated quoted string at or near "'BOB_..."``
    and ``... near "/* secret"`` lose the token (the line and column are reported separately).
    """

    def keep(token: str) -> bool:
        return bool(token) and (token.lower() in _KEYWORDS and token.isalpha() or is_plain(token)
                                or _PUNCT.match(token) is not None or _NUMBER.match(token) is not None)

    return redact_quoted(message, keep)


def redact_db_message(message: str, sqlstate: str, identifiers: Iterable[str] = (),
                      secrets: Iterable[str] = ()) -> str:
    """A database error's primary message with quoted fragments and values redacted.

    ``identifiers``: plain names the executed query contains (a fragment naming one, or a dotted
    path of them, stays readable: ``column "nosuchcolumn" does not exist``). ``secrets``: text
    that must not appear even unquoted (the agent's string literal values and quoted names, as in
    ``column t.Name does not exist``).
    """
    names = frozenset(identifiers)

    def keep(fragment: str) -> bool:
        parts = fragment.split(".")
        return bool(fragment) and all(is_plain(p) and p in names for p in parts)

    out = redact_quoted(message, keep, greedy=sqlstate.startswith("22"))
    for text in sorted({s for s in secrets if len(s) >= MIN_SECRET_CHARS or not is_plain(s) and len(s) >= 2},
                       key=len, reverse=True):
        if text in out:
            out = out.replace(text, REDACTED)
    return out


def _walk(node) -> Iterator[ast.Node]:
    """Every node of a tree, depth first; constants (A_Const) are yielded but not entered."""
    stack = [node]
    while stack:
        n = stack.pop()
        if isinstance(n, (list, tuple)):
            stack.extend(n)
            continue
        if not isinstance(n, ast.Node):
            continue
        yield n
        if isinstance(n, ast.A_Const):
            continue
        stack.extend(v for attr in type(n).__slots__
                     if isinstance(v := getattr(n, attr, None), (ast.Node, list, tuple)))


def _strings(node) -> Iterable[str]:
    """Every identifier-like string in a tree (names, not literal values)."""
    for n in _walk(node):
        if isinstance(n, ast.String):
            yield n.sval
        elif not isinstance(n, ast.A_Const):  # literal values are not names
            for attr in type(n).__slots__:
                if attr in _NAME_ATTRS and isinstance(v := getattr(n, attr, None), str):
                    yield v


_NAME_ATTRS = frozenset({"relname", "schemaname", "aliasname", "name", "ctename", "colname",
                         "refname", "search_seq_column", "cycle_mark_column", "cycle_path_column"})


def literal_values(node) -> list[str]:
    """The values of every string (and bit-string) literal in a tree."""
    out = []
    for n in _walk(node):
        if isinstance(n, ast.A_Const):
            if isinstance(n.val, ast.String):
                out.append(n.val.sval)
            elif isinstance(n.val, ast.BitString):
                out.append(n.val.bsval)
    return out


def names_in(node) -> tuple[set[str], set[str]]:
    """(plain names, other names) appearing in a tree."""
    plain, other = set(), set()
    for s in _strings(node):
        (plain if is_plain(s) else other).add(s)
    return plain, other


_STRING_TOKENS = frozenset({"SCONST", "USCONST"})


def elide_sql_literals(sql: str) -> str:
    """``sql`` with every string literal token replaced by ``'…'``, found by PostgreSQL's own lexer.

    Used on the printed, executed SQL: the same result as printing the tree under
    :class:`elided_literals`, for a twentieth of the cost (a second ``RawStream`` print costs as much
    as the whole rewrite).
    """
    from pglast.parser import scan

    out, last = [], 0
    for token in scan(sql):
        if token.name in _STRING_TOKENS:
            out.append(sql[last:token.start])
            out.append(f"'{ELIDED}'")
            last = token.end + 1
    if not out:
        return sql
    out.append(sql[last:])
    return "".join(out)


class elided_literals:
    """Context manager: string literals in ``node`` read ``'…'`` inside the block, then are restored.

    Printing inside the block gives the displayed SQL without copying the tree.
    """

    def __init__(self, node) -> None:
        self.node = node
        self.saved: list[tuple[ast.String, str]] = []

    def __enter__(self):
        for n in _walk(self.node):
            if isinstance(n, ast.A_Const) and isinstance(n.val, ast.String):
                self.saved.append((n.val, n.val.sval))
                n.val.sval = ELIDED
        return self

    def __exit__(self, *exc) -> None:
        for node, value in self.saved:
            node.sval = value
        self.saved.clear()


def _pairs(a, b):
    """Walk two trees of the same shape in step; raise ValueError where they differ."""
    stack = [(a, b)]
    while stack:
        x, y = stack.pop()
        if isinstance(x, (list, tuple)):
            if not isinstance(y, (list, tuple)) or len(x) != len(y):
                raise ValueError("shape")
            stack.extend(zip(x, y))
            continue
        if not isinstance(x, ast.Node):
            continue
        if type(x) is not type(y):
            if isinstance(x, ast.ParamRef):  # printed as a typed NULL for PostgreSQL's analysis (resolved.py)
                yield x, y
                continue
            raise ValueError("shape")
        yield x, y
        for attr in type(x).__slots__:
            vx = getattr(x, attr, None)
            if isinstance(vx, (ast.Node, list, tuple)):
                stack.append((vx, getattr(y, attr, None)))


def source_location(rewritten, printed_tree, position: int) -> int | None:
    """Map a character index into the executed SQL to one into the agent's SQL.

    ``rewritten`` is the rewritten tree (nodes from the agent's text keep their original
    ``location``; added nodes have none), ``printed_tree`` the executed SQL parsed again (same
    shape, locations in the executed text). Returns the agent-side location of the node at
    ``position``, else of the nearest node before it, else None.
    """
    best: tuple[int, int] | None = None
    try:
        for x, y in _pairs(rewritten, printed_tree):
            lx, ly = getattr(x, "location", None), getattr(y, "location", None)
            if not isinstance(lx, int) or not isinstance(ly, int) or lx < 0 or ly < 0:
                continue
            if ly == position:
                return lx
            if ly < position and (best is None or ly > best[0]):
                best = (ly, lx)
    except ValueError:
        return None
    return best[1] if best else None

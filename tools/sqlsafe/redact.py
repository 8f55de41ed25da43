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
  values, so everything between their first and last quote goes. A message PostgreSQL does not tie
  to a place in the query (no statement position) was raised while running it, on a value, and
  may print that value unquoted (``'a.b.c.d'::regclass``: ``improper relation name (too many
  dotted names): a.b.c.d``): only its SQLSTATE and the condition's name are kept
  (:func:`generic_db_message`).
* Text that reaches the agent has its invisible characters escaped (:func:`escape_invisible`), by
  Unicode property: Default_Ignorable_Code_Point, general categories Cc, Cf, Co, Cs, Zl, Zp, and the
  tag characters.
* Refusals name objects only through :func:`shown`, which prints a name only if it is plain.
* Names the agent invents (column and table aliases, CTE names...) must be plain: they come back
  as result column names, so a quoted ``"any text"`` alias is refused by the checker.

A plain identifier cannot carry arbitrary text: the parser folds unquoted names to lower case and
they cannot contain ``@``, spaces, quotes and so on.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Iterator

from pglast import ast
from pglast.keywords import COL_NAME_KEYWORDS, RESERVED_KEYWORDS, TYPE_FUNC_NAME_KEYWORDS, UNRESERVED_KEYWORDS

REDACTED = "<redacted>"
ELIDED = "…"
_PLAIN = re.compile(r"[a-z_][a-z0-9_$]*\Z")
#: An unquoted word as the lexer reads it (folded to lower case by the parser): a keyword or a name.
_BARE_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*")
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

    def sub(m: re.Match[str]) -> str:
        return m.group(0) if keep(m.group(1)) else f'"{REDACTED}"'

    return _FRAGMENT.sub(sub, message)


def _mistyped_keyword(token: str) -> bool:
    """A bare word (any case) that is a keyword misspelled: ``SELEC``, ``FORM``, ``WHRE``."""
    import difflib

    return _BARE_WORD.fullmatch(token) is not None and bool(
        difflib.get_close_matches(token.lower(), _KEYWORDS, n=1, cutoff=0.75))


def redact_parse_message(message: str) -> str:
    """A parser message with the offending token kept only if it is a keyword, symbol or plain name.

    ``syntax error at or near "FROM"`` stays, and so does the agent's own mistyped keyword (``near
    "SELEC"``: a bare word close to a keyword; a bare word is never a literal, a comment or a quoted name);
    ``unterminated quoted string at or near "'BOB_..."`` and ``... near "/* secret"`` lose the token (the
    line and column are reported separately).
    """

    def keep(token: str) -> bool:
        return bool(token) and (token.lower() in _KEYWORDS and token.isalpha() or is_plain(token)
                                or _mistyped_keyword(token)
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


def walk(node: object) -> Iterator[ast.Node]:
    """Every node of a tree, depth first; constants (A_Const) are yielded but not entered."""
    stack: list[object] = [node]
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
        stack.extend(v for attr in n  # a node iterates over its attribute names
                     if isinstance(v := getattr(n, attr, None), (ast.Node, list, tuple)))


def _strings(node: object) -> Iterator[str]:
    """Every identifier-like string in a tree (names, not literal values)."""
    for n in walk(node):
        if isinstance(n, ast.String):
            if n.sval is not None:
                yield n.sval
        elif not isinstance(n, ast.A_Const):  # literal values are not names
            for attr in n:
                if attr in _NAME_ATTRS and isinstance(v := getattr(n, attr, None), str):
                    yield v


_NAME_ATTRS = frozenset({"relname", "schemaname", "aliasname", "name", "ctename", "colname",
                         "refname", "search_seq_column", "cycle_mark_column", "cycle_path_column"})


def literal_values(node: object) -> list[str]:
    """The values of every string (and bit-string) literal in a tree."""
    out = []
    for n in walk(node):
        if isinstance(n, ast.A_Const):
            if isinstance(n.val, ast.String) and n.val.sval is not None:
                out.append(n.val.sval)
            elif isinstance(n.val, ast.BitString) and n.val.bsval is not None:
                out.append(n.val.bsval)
    return out


def names_in(node: object) -> tuple[set[str], set[str]]:
    """(plain names, other names) appearing in a tree."""
    plain: set[str] = set()
    other: set[str] = set()
    for s in _strings(node):
        (plain if is_plain(s) else other).add(s)
    return plain, other


# Every string-like literal: '...', E'...', $$...$$ and $tag$...$tag$ (SCONST), U&'...' (USCONST),
# X'...' and B'...' bit strings (XCONST, BCONST). Numbers stay: they carry no text, and the LIMIT the
# rewriter adds is part of what the caller should see.
_STRING_TOKENS = frozenset({"SCONST", "USCONST", "XCONST", "BCONST"})


def elide_sql_literals(sql: str, keep: frozenset[str] = frozenset()) -> str:
    """``sql`` with every string or bit-string literal token replaced by ``'…'``, found by PostgreSQL's
    own lexer, and invisible characters (in a quoted name) escaped. Literals written exactly as one of
    ``keep`` (the rewriter's own constant text, never the agent's data) stay as they are.

    Used on the printed, executed SQL: the same result as printing the tree under
    :class:`elided_literals`, for a twentieth of the cost (a second ``RawStream`` print costs as much
    as the whole rewrite).
    """
    from pglast.parser import scan

    kept = {"'" + value.replace("'", "''") + "'" for value in keep}
    out, last = [], 0
    for token in scan(sql):
        if token.name in _STRING_TOKENS and sql[token.start:token.end + 1] not in kept:
            out.append(sql[last:token.start])
            out.append(f"'{ELIDED}'")
            last = token.end + 1
    if not out:
        return escape_invisible(sql)
    out.append(sql[last:])
    return escape_invisible("".join(out))


class elided_literals:
    """Context manager: string literals in ``node`` read ``'…'`` inside the block, then are restored.

    Printing inside the block gives the displayed SQL without copying the tree.
    """

    def __init__(self, node: ast.Node, keep: frozenset[str] = frozenset()) -> None:
        self.node = node
        self.keep = keep
        self.saved: list[tuple[ast.String, str | None]] = []

    def __enter__(self) -> elided_literals:
        for n in walk(self.node):
            if isinstance(n, ast.A_Const) and isinstance(n.val, ast.String) and n.val.sval not in self.keep:
                self.saved.append((n.val, n.val.sval))
                n.val.sval = ELIDED
        return self

    def __exit__(self, *exc: object) -> None:
        for node, value in self.saved:
            node.sval = value
        self.saved.clear()


def _pairs(a: object, b: object) -> Iterator[tuple[ast.Node, object]]:
    """Walk two trees of the same shape in step; raise ValueError where they differ."""
    stack: list[tuple[object, object]] = [(a, b)]
    while stack:
        x, y = stack.pop()
        if isinstance(x, (list, tuple)):
            if not isinstance(y, (list, tuple)) or len(x) != len(y):
                raise ValueError("shape")
            stack.extend(zip(x, y, strict=True))  # lengths compared just above
            continue
        if not isinstance(x, ast.Node):
            continue
        if type(x) is not type(y):
            if isinstance(x, ast.ParamRef):  # printed as a typed NULL for PostgreSQL's analysis (resolved.py)
                yield x, y
                continue
            raise ValueError("shape")
        yield x, y
        for attr in x:
            vx = getattr(x, attr, None)
            if isinstance(vx, (ast.Node, list, tuple)):
                stack.append((vx, getattr(y, attr, None)))


def source_location(rewritten: ast.Node, printed_tree: ast.Node | None, position: int) -> int | None:
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


def generic_db_message(sqlstate: str) -> str:
    """The name of ``sqlstate``'s condition (``invalid text representation``), with no text of the error."""
    from psycopg import errors

    try:
        name = errors.lookup(sqlstate).__name__
    except (KeyError, ValueError):
        return "error"
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", name).lower()


# Invisible characters, by Unicode property (tools/run_scoped_query's fence, error messages, the SQL
# shown): general categories Cc, Cf, Co, Cs, Zl, Zp, the tag characters E0000..E007F, and
# Default_Ignorable_Code_Point, which DerivedCoreProperties.txt defines as Other_Default_Ignorable_Code_Point
# + Cf + Variation_Selector - White_Space - FFF9..FFFB - 13430..1343F - Prepended_Concatenation_Mark (the
# subtracted ones are Cf, escaped anyway, and no White_Space is Cf). From PropList.txt (Unicode 15.1):
# Other_Default_Ignorable_Code_Point = 034F, 115F..1160, 17B4..17B5, 2065, 3164, FFA0, FFF0..FFF8,
# E0000, E0002..E001F, E0080..E00FF, E01F0..E0FFF; Variation_Selector = 180B..180D, 180F, FE00..FE0F,
# E0100..E01EF. The ranges below are that union, computed from unicodedata (Unicode 14 in Python 3.11)
# plus 13439..1343F (Cf since Unicode 15); tests/test_fence.py derives it again from the running
# Python's unicodedata and fails if a character is missing (regenerate with `python -m
# schema_architect.tools.sqlsafe.redact`). A table, not a scan at import: scanning every code point
# costs 0.2 s of start-up.
INVISIBLE_RANGES = (
    (0x0000, 0x001F), (0x007F, 0x009F), (0x00AD, 0x00AD), (0x034F, 0x034F), (0x0600, 0x0605), (0x061C, 0x061C),
    (0x06DD, 0x06DD), (0x070F, 0x070F), (0x0890, 0x0891), (0x08E2, 0x08E2), (0x115F, 0x1160), (0x17B4, 0x17B5),
    (0x180B, 0x180F), (0x200B, 0x200F), (0x2028, 0x202E), (0x2060, 0x206F), (0x3164, 0x3164), (0xD800, 0xF8FF),
    (0xFE00, 0xFE0F), (0xFEFF, 0xFEFF), (0xFFA0, 0xFFA0), (0xFFF0, 0xFFFB), (0x110BD, 0x110BD),
    (0x110CD, 0x110CD), (0x13430, 0x1343F), (0x1BCA0, 0x1BCA3), (0x1D173, 0x1D17A), (0xE0000, 0xE0FFF),
    (0xF0000, 0xFFFFD), (0x100000, 0x10FFFD),
)
_INVISIBLE = re.compile("[" + "".join(re.escape(chr(a)) + ("-" + re.escape(chr(b)) if b > a else "")
                                      for a, b in INVISIBLE_RANGES) + "]")


def _escaped(m: re.Match[str]) -> str:
    code = ord(m.group())
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    code -= 0x10000  # as JSON writes it: a surrogate pair
    return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"


def escape_invisible(text: str) -> str:
    """``text`` with every invisible character written ``\\uXXXX`` (two for one past U+FFFF), as JSON
    would: JSON text stays valid and decodes to the same value."""
    return _INVISIBLE.sub(_escaped, text)


def has_invisible(text: str) -> bool:
    return _INVISIBLE.search(text) is not None


def derive_invisible() -> set[int]:
    """The invisible set computed from the running Python's unicodedata (slow: every code point)."""
    import sys
    import unicodedata

    extra = [(0x034F, 0x034F), (0x115F, 0x1160), (0x17B4, 0x17B5), (0x2065, 0x2065), (0x3164, 0x3164),
             (0xFFA0, 0xFFA0), (0xFFF0, 0xFFF8), (0xE0000, 0xE0000), (0xE0002, 0xE001F), (0xE0080, 0xE00FF),
             (0xE01F0, 0xE0FFF),  # Other_Default_Ignorable_Code_Point
             (0x180B, 0x180D), (0x180F, 0x180F), (0xFE00, 0xFE0F), (0xE0100, 0xE01EF),  # Variation_Selector
             (0xE0000, 0xE007F)]  # tags
    out = {c for c in range(sys.maxunicode + 1)
           if unicodedata.category(chr(c)) in ("Cc", "Cf", "Co", "Cs", "Zl", "Zp")}
    for a, b in extra:
        out.update(range(a, b + 1))
    return out


_OPEN = frozenset({"ASCII_40", "ASCII_91", "CASE"})  # ( [ CASE
_CLOSE = frozenset({"ASCII_41", "ASCII_93", "END_P"})
# Tokens that end an operand chain: a, b ... / AND / OR / WHEN ... THEN ... ELSE and clause keywords.
_SEPARATORS = frozenset({"ASCII_44", "AND", "OR", "WHEN", "THEN", "ELSE", "SELECT", "FROM", "WHERE", "ON",
                         "GROUP_P", "ORDER", "HAVING", "LIMIT", "OFFSET", "UNION", "INTERSECT", "EXCEPT",
                         "AS", "BY", "JOIN", "ASCII_59"})


def nesting_depth(sql: str) -> int:
    """How deep ``sql``'s syntax tree can be, from PostgreSQL's lexer (no parse, no recursion): brackets
    and CASE open a level, and each operator chained at one level (``1 + 1 + 1``) may nest once more.
    Remembered for the texts of recent queries (every call asks before anything else is cached)."""
    return _remembered_depth(sql) if len(sql) <= _REMEMBERED_SQL_CHARS else _nesting_depth(sql)


#: Texts longer than this are measured every time: 256 remembered texts stay under about 2 MB.
_REMEMBERED_SQL_CHARS = 8192


def _nesting_depth(sql: str) -> int:
    from pglast.parser import scan

    try:
        tokens = scan(sql)
    except Exception:  # noqa: BLE001 - not lexable: the parser will say why
        return 0
    chain = [0]
    deepest = 0
    for token in tokens:
        name = token.name
        if name in _OPEN:
            chain.append(0)
        elif name in _CLOSE:
            if len(chain) > 1:
                chain.pop()
        elif name in _SEPARATORS:
            chain[-1] = 0
        elif name.startswith("ASCII_") or name in ("Op", "TYPECAST", "NOT", "LESS_EQUALS", "GREATER_EQUALS",
                                                     "NOT_EQUALS", "IS", "LIKE", "ILIKE", "IN_P", "BETWEEN"):
            chain[-1] += 1
        deepest = max(deepest, len(chain) + sum(chain))
    return deepest


_remembered_depth = functools.lru_cache(maxsize=256)(_nesting_depth)


if __name__ == "__main__":  # print INVISIBLE_RANGES for the running Python
    ranges: list[list[int]] = []
    for c in sorted(derive_invisible()):
        if ranges and ranges[-1][1] == c - 1:
            ranges[-1][1] = c
        else:
            ranges.append([c, c])
    print(", ".join(f"(0x{a:04X}, 0x{b:04X})" for a, b in ranges))

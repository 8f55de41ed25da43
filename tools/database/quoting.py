"""The one way an identifier or a string literal is written into SQL text, for every layer above.

Identifiers are quoted only when PostgreSQL needs it, so generated SQL reads like hand-written SQL; a
name that is empty or holds a NUL byte cannot be written at all and is refused (PostgreSQL refuses a
zero-length quoted name and stops reading a string at NUL, so sending either would fail or mislead).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from pglast.keywords import COL_NAME_KEYWORDS, RESERVED_KEYWORDS, TYPE_FUNC_NAME_KEYWORDS

from .expressions import ExpressionError

_PLAIN = re.compile(r"[a-z_][a-z0-9_$]*")
#: Keywords that read as something else where a name is expected, in one place or another; quoting
#: the column-name keywords too (``time``, ``position``) keeps a name safe wherever it stands.
_NEEDS_QUOTES = RESERVED_KEYWORDS | TYPE_FUNC_NAME_KEYWORDS | COL_NAME_KEYWORDS


def ident(name: str) -> str:
    """Quote an identifier if (and only if) PostgreSQL would otherwise read it differently.

    >>> ident("tasks"), ident("Tasks"), ident("order"), ident('a"b')
    ('tasks', '"Tasks"', '"order"', '"a""b"')
    """
    if not name or "\x00" in name:
        raise ExpressionError(f"The name {name!r} is empty or contains a NUL byte, which a PostgreSQL "
                              "identifier cannot hold. Pass a non-empty name without NUL.")
    if _PLAIN.fullmatch(name) and name not in _NEEDS_QUOTES:
        return name
    return '"' + name.replace('"', '""') + '"'


def qualified_name(schema: str | None, name: str) -> str:
    """``name`` quoted, prefixed with its schema unless that is ``public`` (or not given)."""
    return ident(name) if schema in (None, "", "public") else f"{ident(schema)}.{ident(name)}"


def literal(value: str) -> str:
    """A string literal (standard_conforming_strings, PostgreSQL's default since 9.1: backslashes are
    plain characters). NUL cannot be in a PostgreSQL string, so it is refused rather than sent."""
    if "\x00" in value:
        raise ExpressionError(f"The value {value!r} contains a NUL byte, which PostgreSQL text cannot hold. "
                              "Pass the value without it.")
    return "'" + value.replace("'", "''") + "'"


def literal_list(values: Iterable[str]) -> str:
    """``'a', 'b'``: string literals separated by commas, for ``IN (...)`` and ``ARRAY[...]``."""
    return ", ".join(literal(v) for v in values)


def ident_list(names: Iterable[str]) -> str:
    """``a, "B"``: identifiers separated by commas, for column lists."""
    return ", ".join(ident(n) for n in names)

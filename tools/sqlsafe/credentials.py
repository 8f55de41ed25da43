"""Which columns hold credentials, so that run_scoped_query masks them.

A session token, a password hash or an OAuth token lets whoever reads it act as the user (a hash can
be checked offline against guesses). The rewriter replaces such a column, inside the filtered
subquery, by a note of its presence and length, and refuses the query when it filters, joins, sorts
or groups by it (a filter is a guessing oracle).

Masked are:

* Better Auth's credential columns (../shared/research/better_auth.md), whatever the table's case,
  plural (``usePlural``) or column casing (its CLI's ``"accessToken"`` or Drizzle's ``access_token``);
* columns named by the ``sensitive_columns`` setting: ``table.column`` or ``schema.table.column``
  patterns, ``*`` and ``?`` as wildcards, case-insensitive;
* columns the spec marks sensitive or secret (the server adds them to the patterns).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence

from ..schema.names import singular

# Table (singular, lower case, no underscores) -> its credential columns (lower case, no underscores).
BETTER_AUTH_CREDENTIALS: dict[str, frozenset[str]] = {
    "session": frozenset({"token"}),
    "account": frozenset({"password", "accesstoken", "refreshtoken", "idtoken"}),
    "verification": frozenset({"value"}),
    "jwks": frozenset({"privatekey"}),
    "apikey": frozenset({"key"}),
    "twofactor": frozenset({"secret", "backupcodes"}),
}


def _squash(name: str) -> str:
    return name.lower().replace("_", "")


def _singular(table: str) -> str:
    squashed = _squash(table)
    return squashed if squashed in BETTER_AUTH_CREDENTIALS else singular(squashed)  # jwks is already singular


def masked_columns(schema: str, table: str, columns: Sequence[str], patterns: Sequence[str] = ()) -> tuple[str, ...]:
    """The columns of ``schema.table`` to mask, in table order.

    >>> masked_columns("public", "sessions", ["id", "token", "userId"])
    ('token',)
    >>> masked_columns("public", "notes", ["id", "body"], ["notes.body"])
    ('body',)
    """
    builtin = BETTER_AUTH_CREDENTIALS.get(_singular(table), frozenset())
    lowered = [p.lower() for p in patterns]
    out = []
    for column in columns:
        if _squash(column) in builtin or any(
                fnmatch.fnmatchcase(f"{table}.{column}".lower(), p)
                or fnmatch.fnmatchcase(f"{schema}.{table}.{column}".lower(), p) for p in lowered):
            out.append(column)
    return tuple(out)

"""The one place that uses psycopg pieces its documentation does not cover.

pipeline.py talks to libpq through ``conn.pgconn`` (documented: ``psycopg.pq``), but two things it
needs have no documented API: turning Python values into the bytes, type oids and formats a
``send_query_params`` takes, and turning a ``PGresult``'s rows back into Python values, both exactly as
a cursor would (psycopg's ``Transformer``); and building the ``psycopg.errors`` exception, with its
diagnostics, that a failed ``PGresult`` stands for (``error_from_result``). Writing them again would mean
copying psycopg's adaptation rules, so they are used here, and only here: tests/test_pipeline.py
(``test_psycopg_adapter_matches_the_library``) fails naming the installed psycopg version when one of
them changes shape.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg import errors as _errors
from psycopg.abc import AdaptContext
from psycopg.adapt import PyFormat, Transformer

#: The psycopg versions this adapter was written and tested against (the test says so when it breaks).
TESTED_WITH = "3.3.9"


class Adapter:
    """Parameters out and rows in, for one batch on ``conn``, with the connection's adapters."""

    def __init__(self, conn: AdaptContext) -> None:
        self._transformer = Transformer(conn)

    def dump(self, params: Sequence[Any]) -> tuple[list[Any], list[int], list[Any]]:
        """``params`` as (values, type oids, formats) for ``PGconn.send_query_params``; raises on a value
        psycopg cannot adapt (before anything is sent)."""
        tx = self._transformer
        values = tx.dump_sequence(list(params), [PyFormat.AUTO] * len(params))
        return list(values), list(tx.types or ()), list(tx.formats or ())

    def load(self, result: Any, count: int) -> list[tuple]:
        """The first ``count`` rows of ``result`` (a ``psycopg.pq.PGresult``), as a cursor loads them."""
        tx = self._transformer
        tx.set_pgresult(result)
        return tx.load_rows(0, count, tuple)


def param_types(conn: AdaptContext, params: Sequence[Any]) -> tuple[int, ...]:
    """The type oid each value is sent as (0: unknown, PostgreSQL infers it)."""
    if not params:
        return ()
    return tuple(Adapter(conn).dump(params)[1])


def error_from_result(result: Any, encoding: str) -> psycopg.Error:
    """The ``psycopg.errors`` exception (class chosen by SQLSTATE, ``diag`` filled) for a failed result."""
    return _errors.error_from_result(result, encoding=encoding)

"""Every statement the tools send is a file under ``sql/``, read once (the first time it is asked for).

Statements are joined from files by psycopg.sql composition (:func:`compose`), never by editing SQL
text: a ``{name}`` slot in a template takes a whole fragment. Values are parameters: ``$1``... in a
statement for :func:`.pipeline.run_batch`, which binds them; ``%s`` in one for :func:`.pipeline.run_script`
(explain_indexes' transactions), which psycopg quotes in client-side (``AsyncClientCursor.mogrify``). A
file's header (the ``--`` lines it opens with) says which tool sends it and what its parameters are.

Where the line is drawn: what is generated per object or per call is not a query kept here. DDL (an index
candidate, a scratch copy's tables, roles and policies) is built in :mod:`.ddl` from quoted identifiers;
the app's own queries (query patterns, the caller's SQL) are planned as given, wrapped in ``EXPLAIN``,
``PREPARE`` or a temporary view; transaction control (``BEGIN``, ``ROLLBACK``, savepoints, ``RESET``)
is written where it is sent; and explain_indexes' ``set_config`` list takes one call per setting.
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files

from psycopg import sql


@cache
def query(name: str) -> str:
    """The statement in ``sql/<name>``: its text without the file's header (the ``--`` comment lines it
    opens with, which say what it is for: they need not travel with every call)."""
    lines = files(__package__).joinpath("sql", name).read_text(encoding="utf-8").strip().splitlines()
    while lines and lines[0].lstrip().startswith("--"):
        lines.pop(0)
    return "\n".join(lines).strip()


def compose(template: str, **fragments: str) -> str:
    """``template`` with each ``{name}`` slot filled with the SQL fragment ``fragments[name]`` (a literal
    brace in the template is written ``{{``/``}}``). Fragments go in whole, on lines of their own where
    the template puts them, so a trailing ``--`` comment in one cannot swallow what follows."""
    return sql.SQL(template).format(**{k: sql.SQL(v) for k, v in fragments.items()}).as_string(None)

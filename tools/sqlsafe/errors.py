"""Why a query was not run, as a :class:`Finding` an agent can act on.

::

    QueryRefused          refused before any of the agent's SQL reached the database
      +-- QueryFailed     the database ran it and stopped it (timeout, bad cast...); text redacted
"""

from __future__ import annotations

from ..schema.errors import AgentError
from ..schema.findings import Finding, SqlRefusalId
from ..schema.model import Location


class QueryRefused(AgentError):
    """The query was refused; ``finding`` says what, why and what to do instead."""

    #: True when none of the agent's SQL was sent to the database.
    static = True
    #: True when the refusal came from PostgreSQL's analysis of the query (sent as a temporary view
    #: definition, analysed and never run: sqlsafe/resolved.py).
    analysed = False

    def __init__(self, rule: SqlRefusalId, message: str, fix: str | None = None, *, obj: str | None = None,
                 line: int | None = None) -> None:
        self.finding = Finding(
            rule=rule, severity="error", message=message, object=obj, fix=fix,
            location=Location(file="query", line=line) if line else None,
        )
        super().__init__(message, fix=fix, rule_id=rule)

    def __str__(self) -> str:
        return f"{self.problem} {self.fix}" if self.fix else self.problem


class QueryFailed(QueryRefused):
    """The database stopped the query at run time; the message has row values redacted."""

    static = False


def line_col(sql: str, index: int) -> tuple[int, int]:
    """1-based line and column of a character index into ``sql``."""
    index = max(0, min(index, len(sql)))
    before = sql[:index]
    line = before.count("\n") + 1
    return line, index - (before.rfind("\n") + 1) + 1


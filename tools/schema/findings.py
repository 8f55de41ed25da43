"""One result type for everything a tool has to say about a schema or a query.

Lint rules, spec parse warnings, spec conflicts, index problems, model import failures and SQL
refusals are all a :class:`Finding`: a stable kebab-case ``rule`` id, a ``severity``, a message that
makes sense on its own, where it was found, and how to fix it.
"""

from __future__ import annotations

from typing import Annotated, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema

from .model import Location

Severity = Literal["error", "warning", "info"]
#: Most severe first, for sorting findings.
SEVERITY_RANK: dict[str, int] = {"error": 0, "warning": 1, "info": 2}

# The rule ids a Finding may carry, one Literal per family; docs/rules.md documents the lint rules (in
# this order) and docs/findings.md the others (tests/test_docs_rules.py, tests/test_docs_findings.py).

#: The lint rules of tools/spec/lint, in the order docs/rules.md lists them.
RuleId = Literal[
    "owner-column-missing",
    "table-ownership-unclear",
    "owner-column-nullable",
    "owner-fk-missing",
    "owner-fk-on-delete",
    "owner-type-mismatch",
    "owner-not-indexed",
    "missing-primary-key",
    "timestamps-missing",
    "timestamp-without-time-zone",
    "timestamp-default-missing",
    "updated-at-trigger",
    "varchar-without-length",
    "prose-length-not-enforced",
    "allowed-values-not-enforced",
    "reserved-word-name",
    "fk-on-delete-missing",
    "fk-not-indexed",
    "boolean-index",
    "redundant-index",
    "duplicate-index",
    "index-without-reason",
]

#: What reading a spec noticed (tools/spec/reader).
SpecFindingId = Literal[
    "spec-reader-error", "spec-section-skipped", "spec-table-without-name", "spec-python-unparsable",
    "spec-sql-unparsable", "spec-unknown-table", "spec-unreadable-type", "spec-unknown-fk-target",
    "spec-unknown-column", "spec-unreadable-column", "spec-unread-relationship", "spec-value-list-unplaced",
    "spec-value-list-differs", "spec-no-tables",
]

#: What reading the SQLModel models noticed (tools/models).
ModelsFindingId = Literal[
    "models-not-found", "models-other-candidates", "models-file-shadowed", "models-python-unusable",
    "models-versions-differ", "models-import-failed", "models-import-timeout", "models-type-unknown",
]

#: Why run_scoped_query refused or stopped a query (tools/sqlsafe, tools/run_scoped_query).
SqlRefusalId = Literal[
    "sql-empty", "sql-nul-byte", "sql-too-long", "sql-too-deep", "sql-parse-error", "sql-masked-column",
    "sql-multiple-statements", "sql-write-not-allowed", "sql-statement-not-allowed",
    "sql-construct-not-allowed", "sql-function-not-allowed", "sql-resolution-unavailable", "sql-quoted-alias",
    "sql-system-column", "sql-system-catalog", "sql-table-not-user-scoped", "sql-table-not-found",
    "sql-bad-argument", "sql-connection-busy", "sql-timeout", "sql-lock-timeout", "sql-row-too-large",
    "sql-runtime-error",
]

#: What explain_indexes found about the indexes themselves.
IndexProblemId = Literal[
    "unused-index", "invalid-index", "index-missing-in-database", "index-missing-in-spec",
    "table-missing-in-spec", "query-not-served",
]

#: A side a tool compares could not be read; the embedded database does not hold the spec; a drift
#: worth a note where no drift list is returned.
OtherFindingId = Literal[
    "spec-unreadable", "database-unavailable", "embedded-spec-not-applied", "updated-at-not-maintained",
]

FindingId = Literal[RuleId, SpecFindingId, ModelsFindingId, SqlRefusalId, IndexProblemId, OtherFindingId]
FINDING_IDS: frozenset[str] = frozenset(get_args(FindingId))


class Finding(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Validated against FindingId; published as a plain string so tools/list stays small.
    rule: Annotated[FindingId, WithJsonSchema({"type": "string"})] = Field(
        description="Stable kebab-case id, documented in docs/rules.md (lint) or docs/findings.md")
    severity: Severity
    message: str
    object: str | None = Field(None, description="What it is about: table, table.column or table.index")
    location: Location | None = None
    fix: str | None = Field(None, description="What to change, in words or as code/SQL")


class SpecConflict(BaseModel):
    """One spec says two things about one column (its table says TEXT, its SQL block VARCHAR(200))."""

    model_config = ConfigDict(extra="forbid")

    object: str = Field(description="table.column (or table) the two statements disagree on")
    aspect: str = Field(description="type, nullable, default, primary_key, unique, foreign_key...")
    winner: str = Field(description="The value kept")
    winner_location: Location | None = None
    loser: str = Field(description="The value overruled")
    loser_location: Location | None = None
    why: str = Field(description="Why the winner wins (the precedence rule applied)")

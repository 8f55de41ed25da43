"""The lenient spec reader: any of the real-world ways people write ``specs/database/schema.md``
(markdown column tables, bullet lists, SQL DDL, SQLModel classes, and mixes of them) read into one
:class:`~tools.schema.Schema`, with parse warnings and spec-internal conflicts.

    text ─> markdown.scan ─> document (which table is each block about?) ─┬─ markdown tables / bullets
                                                                          ├─ sql.read_sql (pglast)
                                                                          └─ python.read_python (ast)
         ─> TableDraft per representation ─> merge (precedence + SpecConflict) ─> Schema

It never raises on any text: a block it cannot read costs a warning with its line number.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from ...schema.findings import Finding, SpecConflict
from ...schema.model import Location, Schema
from .document import read_document
from .merge import merge_tables
from .python import DATETIME_TYPE
from .triggers import mark_update_triggers
from .values import apply_value_lists

__all__ = ["ParsedSpec", "parse_spec"]

_FORMATS_HINT = (
    "We read markdown column tables (| Column | Type | Constraints | Description |), bullet lists "
    "(- title: varchar(200) (not null)), ```sql CREATE TABLE blocks and ```python SQLModel classes with "
    "table=True, each under a heading naming the table (## Table: tasks). See specs/format.md."
)


class ParsedSpec(BaseModel):
    schema_: Schema = Field(alias="schema")
    warnings: list[Finding] = Field(default_factory=list)
    conflicts: list[SpecConflict] = Field(default_factory=list)

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    @property
    def schema(self) -> Schema:  # type: ignore[override]  # BaseModel.schema is a deprecated classmethod
        return self.schema_


def parse_spec(text: str, file: str = "specs/database/schema.md", *, datetime_type: str | None = None) -> ParsedSpec:
    """Read a spec's text. Every table, column, index and foreign key carries ``Location(file, line)``.

    ``datetime_type``: what a plain ``datetime`` in the spec's SQLModel classes creates with the project's
    SQLModel (``timestamp`` before 0.0.45); by default the current meaning, ``timestamptz``."""
    token = DATETIME_TYPE.set(datetime_type) if datetime_type else None
    try:
        return _parse(text, file)
    except Exception as error:  # the last line of defence: a reader bug is a warning, never a crash
        return ParsedSpec(schema_=Schema(source=file), warnings=[Finding(
            rule="spec-reader-error", severity="warning", location=Location(file=file, line=1),
            message=f"The spec could not be read ({type(error).__name__}: {str(error)[:200]}).",
            fix="Write the tables in the canonical format described in specs/format.md.",
        )])
    finally:
        if token is not None:
            DATETIME_TYPE.reset(token)


def _parse(text: str, file: str) -> ParsedSpec:
    if not isinstance(text, str):
        raise TypeError("parse_spec expects the spec's text as a str")
    text = text.replace("\x00", "")
    document = read_document(text, file)
    tables, merge_warnings, conflicts = merge_tables(document.drafts, document.enums,
                                                        document.mentioned_tables)
    mark_update_triggers(text, tables)
    value_warnings = apply_value_lists(document.value_lists, tables, document.enums, file)
    names = {t.name for t in tables}
    schema_patterns = []
    for pattern, mentioned in document.query_patterns:
        hits = [t for t in tables if t.name in mentioned]
        if len(hits) == 1 and len(mentioned & names) == 1:
            hits[0].query_patterns.append(pattern)
        else:
            schema_patterns.append(pattern)
    warnings = document.warnings + merge_warnings + value_warnings
    if not tables:
        warnings.append(Finding(
            rule="spec-no-tables", severity="warning", location=Location(file=file, line=1),
            message="No table definitions were found in the spec; the schema is empty.",
            fix=_FORMATS_HINT,
        ))
    warnings.sort(key=lambda f: (f.location.line or 0) if f.location else 0)
    schema = Schema(tables=tables, enums=_unique_enums(document.enums), query_patterns=schema_patterns,
                    source=file)
    return ParsedSpec(schema_=schema, warnings=warnings, conflicts=conflicts)


def _unique_enums(enums):
    seen, out = set(), []
    for enum in enums:
        if enum.name not in seen:
            seen.add(enum.name)
            out.append(enum)
    return out

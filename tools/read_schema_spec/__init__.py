"""read_schema_spec: the spec as a structured schema, with lint findings, parse warnings, conflicts,
a content hash and an ER diagram."""

from __future__ import annotations

import threading
from collections import OrderedDict
from pathlib import Path

from pydantic import BaseModel, Field

from ..schema.errors import unknown_tables
from ..schema.findings import Finding, SpecConflict
from ..schema.model import Enum, QueryPattern, Table
from ..spec.erd import mermaid_er
from ..spec.file import SpecFileError, display_path, read_spec_bytes
from ..spec.lint import lint_schema
from ..spec.reader import ParsedSpec, parse_spec


class ReadSchemaSpecResult(BaseModel):
    """The spec, read leniently and checked against the house conventions."""

    path: str = Field(description="The spec file read, relative to the project root")
    content_hash: str = Field(
        description="sha256 of the file as read; pass it as expected_spec_hash when writing to the spec"
    )
    tables: list[Table] = Field(description="Every table: columns, keys, FKs, checks, indexes, query patterns")
    enums: list[Enum] = Field(default_factory=list, description="Enum types the spec defines")
    query_patterns: list[QueryPattern] = Field(
        default_factory=list, description="Query patterns not tied to one table"
    )
    lint: list[Finding] = Field(default_factory=list, description="Convention findings (docs/rules.md)")
    warnings: list[Finding] = Field(default_factory=list,
                                    description="What the reader could not read, with line numbers")
    conflicts: list[SpecConflict] = Field(
        default_factory=list, description="Places where the spec says two things about one column, and which one wins"
    )
    er_diagram: str = Field(description="Mermaid erDiagram of the tables")
    summary: str = Field(description="One line: what was read and what was found")


class ParsedSpecs:
    """Parsed and linted specs by content (a few): agents re-read an unchanged spec often.

    One per server (kept on its app context, never a module global). What it holds is never handed out:
    a result is built from a deep copy, so no caller can change what the next call reads."""

    def __init__(self, size: int = 16) -> None:
        self._size = size
        self._entries: OrderedDict[tuple[str, str], tuple[ParsedSpec, list[Finding]]] = OrderedDict()
        self._lock = threading.Lock()  # calls run in worker threads

    def get(self, text: str, shown: str, digest: str) -> tuple[ParsedSpec, list[Finding]]:
        key = (digest, shown)
        with self._lock:
            found = self._entries.get(key)
        if found is None:
            found = _parse_and_lint(text, shown)
        with self._lock:
            self._entries[key] = found
            self._entries.move_to_end(key)
            while len(self._entries) > self._size:
                self._entries.popitem(last=False)
        return found


def _parse_and_lint(text: str, shown: str) -> tuple[ParsedSpec, list[Finding]]:
    parsed = parse_spec(text, file=shown)
    return parsed, lint_schema(parsed.schema)


def read_schema_spec(
    project_root: Path, path: str | None = None, tables: list[str] | None = None, cache: ParsedSpecs | None = None
) -> ReadSchemaSpecResult:
    """The spec read, linted and drawn; ``cache``: earlier readings to reuse (the result is then a copy)."""
    spec_path, text, digest = read_spec_bytes(project_root, path)
    shown = display_path(project_root, spec_path)
    parsed, all_findings = cache.get(text, shown, digest) if cache is not None else _parse_and_lint(text, shown)
    schema = parsed.schema
    if tables:
        missing = [name for name in tables if schema.table(name.lower()) is None]
        if missing:
            raise unknown_tables(missing, [t.name for t in schema.tables], shown, "tables", tables)
        schema = schema.only(tables)
    findings = all_findings
    if tables:
        wanted = {t.name for t in schema.tables}
        findings = [f for f in findings if (f.object or "").split(".")[0] in wanted]
    summary = (
        f"{len(schema.tables)} table(s) read from {shown}; {len(findings)} lint finding(s), "
        f"{len(parsed.warnings)} warning(s), {len(parsed.conflicts)} conflict(s)."
    )
    result = ReadSchemaSpecResult(
        path=shown,
        content_hash=digest,
        tables=schema.tables,
        enums=schema.enums,
        query_patterns=schema.query_patterns,
        lint=findings,
        warnings=parsed.warnings,
        conflicts=parsed.conflicts,
        er_diagram=mermaid_er(schema),
        summary=summary,
    )
    return result.model_copy(deep=True) if cache is not None else result


#: Round trips to the database for one call, and for the example call of docs/tools/read_schema_spec.md (shown
#: there; tests/test_round_trip_counts.py counts them at a proxy and holds both).
ROUND_TRIPS: tuple[int, str] = (0, "none: it reads the spec file, never the database.")

__all__ = ["ParsedSpecs", "ReadSchemaSpecResult", "SpecFileError", "read_schema_spec"]

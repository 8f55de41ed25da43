"""Headings: which ones name a table, which sections to skip, and what kind of content a section holds."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .words import (
    IDENT,
    clean,
    is_identifier,
)

_SKIP = re.compile(r"\bfuture\b|\bsample\s+data\b|\bseed(ing)?\b|\bmigrations?\b|\brollback\b|"
                   r"\bexample\s+data\b|\bout\s+of\s+scope\b|\bdeprecated\b|\bbackup\b", re.I)
_SKIP_EXAMPLE = re.compile(r"^(\W*\w+\W+)?examples?\b|\bexamples?$", re.I)
_KINDS = [
    ("indexes", re.compile(r"\bindex(es|ing)?\b|\bindices\b", re.I)),
    ("relationships", re.compile(r"\brelationships?\b|\bforeign\s+keys?\b|\breferences\b|\brelations\b", re.I)),
    ("queries", re.compile(r"\bquer(y|ies)\b|\bcommon\s+operations\b|\baccess\s+patterns?\b", re.I)),
    ("enums", re.compile(r"\benums?\b|\ballowed\s+values\b", re.I)),
    ("constraints", re.compile(r"\bconstraints?\b|\bchecks?\b|\bvalidation\b|\bprimary\s+keys?\b|"
                               r"\bunique\b|\bnot\s+null\b", re.I)),
    ("notes", re.compile(r"^notes?$", re.I)),
    ("columns", re.compile(r"\bcolumns?\b|\bfields?\b|\bschema\b|\bdefinitions?\b|\bstructure\b|"
                           r"\battributes\b|\bsqlmodel\b|\bmodels?\b|\bddl\b|\bsql\b", re.I)),
]
_STOP_NAMES = {
    "overview", "tables", "table", "schema", "database", "indexes", "index", "constraints", "notes",
    "relationships", "columns", "fields", "enums", "summary", "introduction", "purpose", "status",
    "security", "performance", "conventions", "definitions", "models", "model", "entities", "glossary",
    "requirements", "assumptions", "references", "appendix", "changelog", "description", "diagram",
    "erd", "queries", "validation", "types", "naming", "timestamps", "todo", "scope", "context",
    "background", "goals", "design", "architecture", "configuration", "setup", "testing", "tests",
    "monitoring", "maintenance", "partitioning", "caching", "triggers", "functions", "views", "policies",
    "permissions", "authentication", "authorization", "isolation", "integrity", "clarifications",
    "version", "history", "contents", "example", "examples", "usage", "implementation", "api",
}
_STOP_WORDS = {"table", "tables", "definition", "definitions", "schema", "columns", "fields", "structure",
               "details", "overview", "name", "summary", "data", "relationship", "relationships"}
@dataclass
class HeadingInfo:
    level: int
    line: int
    text: str
    kind: str  # table / skip / indexes / relationships / constraints / queries / notes / enums / columns / other
    table: str | None = None
    schema: str = "public"
    weak: bool = False
    managed_by: str | None = None
    description: list[str] = field(default_factory=list)
    description_open: bool = False


def classify_heading(text: str) -> HeadingInfo:
    info = HeadingInfo(level=0, line=0, text=text, kind="other")
    plain = clean(text)
    low = plain.lower()
    if "better auth" in low or "better-auth" in low:
        info.managed_by = "better-auth"
    named = table_name_from_heading(text)
    if _SKIP.search(low) or (_SKIP_EXAMPLE.search(low) and not re.search(r"model|quer", low)):
        info.kind = "skip"
        return info
    if named:
        info.kind = "table"
        info.schema, info.table, info.weak = named
        return info
    for kind, pattern in _KINDS:
        if pattern.search(low):
            info.kind = kind
            break
    return info


def table_name_from_heading(text: str) -> tuple[str, str, bool] | None:
    """(schema, table, weak) from ``## Table: tasks``, ``### 2. Tasks Table (`tasks`)``, ``### users
    (managed by Better Auth)``, ``## 3. User Model``; None for headings that are not a table."""
    t = re.sub(r"\*\([^)]*\)\*", "", text)
    t = re.sub(r"^\s*(?:\d+(?:\.\d+)*\.?|[A-Z]\.|[IVX]+\.)\s+", "", t.strip())
    explicit = re.search(rf"`({IDENT}(?:\.{IDENT})?)`", t)
    strong = bool(re.search(r"\btable\b", t, re.I))
    body = re.sub(r"\([^)]*\)", " ", t)
    body = clean(body).strip().rstrip(":").strip()
    model = prefixed = False
    if m := re.match(r"^table\s*\d*\s*[:.\-–]\s*(.+)$", body, re.I):
        body, strong, prefixed = m.group(1).strip(), True, True
    if m := re.match(r"^(.+?)\s+(table|model|entity)(?:\s+(fields|columns|schema|definition))?$", body, re.I):
        body, strong = m.group(1).strip(), True
        model = m.group(2).lower() in ("model", "entity")
    if explicit and (strong or clean(body) == explicit.group(1) or len(body.split()) <= 2):
        name = explicit.group(1)
    else:
        name = body
        if not is_identifier(name.replace(".", "_")):
            words = {w.lower() for w in name.split()}
            if strong and re.fullmatch(r"[A-Za-z]+(\s+[A-Za-z]+){1,2}", name) and not words & _STOP_WORDS:
                name = "_".join(name.split())  # "Task Tags Table" -> task_tags
            else:
                return None
    schema, _, bare = name.rpartition(".")
    # "## Notes" is a section, but "## Table: notes" or "### `notes`" names a table called notes.
    if (bare.lower() in _STOP_NAMES and not (prefixed or explicit)) or not is_identifier(bare):
        return None
    if not strong and not explicit:
        # A bare heading word: a table only if it reads like an identifier, not like prose.
        if not (bare.islower() or "_" in bare or bare[:1].isupper() and bare[1:].islower()):
            return None
    return (schema.lower() or "public"), bare.lower(), model



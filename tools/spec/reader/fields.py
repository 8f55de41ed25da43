"""Field headings: ``#### id`` / ``#### 2.1 `title``` under a table's heading name a column, not a table."""

from __future__ import annotations

import re

from .words import IDENT

_FIELD_HEADING = re.compile(rf"^\s*(?:\d+(?:\.\d+)*\.?\s+)?(?:\*\*)?`?({IDENT})`?(?:\*\*)?\s*:?\s*$")


def field_heading_name(text: str) -> str | None:
    """The column a heading names when it is a bare identifier (``id``, ```user_id```), else None."""
    m = _FIELD_HEADING.match(text)
    return m.group(1) if m and m.group(1).lower() == m.group(1) else None


# Words that may follow a type in a bullet and still be about the column, not prose.
_NOT_PROSE = re.compile(r"^(?:not|null|nullable|primary|pk|fk|unique|default|defaults|references?|foreign|optional|"
                        r"required|with|without|array|auto|serial|generated|check|index(?:ed)?|max|min|maximum|"
                        r"length|identity|enum|or|and|unsigned)\b", re.I)


def reads_as_prose(after: str) -> bool:
    """``of record creation (...)`` after ``Timestamp``: the type word was the start of a sentence."""
    m = re.match(r"^([a-z]+)\b", after.strip())
    return bool(m) and not _NOT_PROSE.match(after.strip())


def paren_groups(text: str) -> list[str]:
    """The insides of the top-level parenthesis groups, nested ones kept whole: ``(VARCHAR(200), x)``."""
    from .words import balanced_paren

    groups, i = [], 0
    while (start := text.find("(", i)) >= 0:
        end = balanced_paren(text, start)
        if end is None:
            break
        groups.append(text[start + 1:end - 1])
        i = end
    return groups


def parenthesized_type(text: str) -> bool:
    """Whether a parenthesis group of ``text`` starts with a type (``(TIMESTAMP WITH TIME ZONE)``)."""
    from .words import read_type, split_top_level

    return any((parts := split_top_level(g)) and read_type(parts[0]) for g in paren_groups(text))


def column_for_constraint_name(name: str, table: str, columns: set[str]) -> str | None:
    """The column a constraint name is about: ``fk_tasks_owner`` on ``tasks`` -> ``owner_id``."""
    rest = re.sub(r"_(?:fk|fkey)$", "", re.sub(r"^(?:fk|fkey)_", "", name.lower()))
    for prefix in (f"{table}_", f"{table[:-1]}_" if table.endswith("s") else None):
        if prefix and rest.startswith(prefix) and len(rest) > len(prefix):
            rest = rest[len(prefix):]
            break
    return next((c for c in (rest, f"{rest}_id") if c in columns), None)


# "Unique task identifier", "Unique slug within the user's tasks": an adjective opening a phrase.
_PROSE_UNIQUE = re.compile(r"\bunique\b(?=\s+[A-Za-z])(?!\s+(?:constraint|index|key|not\b|,))", re.I)


def prose_constraints(description: str) -> str:
    """A description read for keys when a table has no constraints column: ``unique`` counts only as a
    statement ("must be unique", "unique"), never as the adjective of a noun phrase."""
    return _PROSE_UNIQUE.sub(" ", description)


def stated_type(text: str):
    """``leading_type`` unless prose follows the type word and a parenthesis states the type:
    ``Timestamp of record creation (TIMESTAMP WITH TIME ZONE)`` -> timestamptz, the rest the prose."""
    from .words import leading_type, read_type, split_top_level

    found, spelled, rest = leading_type(text)
    if found is None or not reads_as_prose(rest):
        return found, spelled, rest
    for group in paren_groups(text):
        parts = split_top_level(group)
        if parts and (inside := read_type(parts[0])):
            return inside, parts[0], ", ".join(parts[1:])
    return found, spelled, rest


_INDEX_TITLE = re.compile(r"^\W*(?:\d+(?:\.\d+)*\.?\s+)?(?:create\s+)?(?:\w+\s+){0,2}ind(?:ex|exes|ices)\b"
                          r"(?:\s+(?:definitions?|strategy|list|summary|overview))?"
                          r"(?:\s+(?:for|on)\s+(?:the\s+)?\w+(?:\s+table)?)?\s*:?\s*$", re.I)


def index_reason(text: str) -> str | None:
    """A comment or heading above an index, as its reason; None for a section title ("Indexes",
    "Users table indexes", "Indexes for tasks") that says no query."""
    text = re.sub(r"\*\*|__|`", "", text).strip()
    return None if not text or _INDEX_TITLE.match(text) else text

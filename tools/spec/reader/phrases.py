"""Phrases inside cells and bullets: descriptions, FK targets written in words, index column lists and
indexes described in words, mentions of other tables.
"""

from __future__ import annotations

import re

from ...schema.model import (
    Index,
    IndexColumn,
    Location,
)
from .words import (
    IDENT,
    clean,
    is_identifier,
    normalize_expression,
    read_fk_target,
    split_top_level,
)


def clean_cell(text: str) -> str:
    return text.strip().strip("`").strip()


_DESCRIPTION_LABEL = re.compile(r"^\*\*(?:purpose|description|desc|notes?|summary|about)\s*:?\s*\*\*\s*:?\s*", re.I)


def clean_description(text: str) -> str:
    """A description as words: no ``**emphasis**`` or ``*emphasis*``, no bold ``**Purpose:**`` label
    (``**Purpose:** A user's todo items.`` -> ``A user's todo items.``); code spans and ``__dunder__`` kept."""
    value = _DESCRIPTION_LABEL.sub("", text.strip())
    value = re.sub(r"\*\*(\S(?:.*?\S)?)\*\*", r"\1", value)
    value = re.sub(r"(?<![\w*])\*(\S(?:[^*]*?\S)?)\*(?![\w*])", r"\1", value).strip()
    return "" if value in ("-", "—") else value


def paren_end(text: str) -> int | None:
    from .words import balanced_paren

    return balanced_paren(text, 0)


def split_bullet_rest(text: str) -> tuple[str, str]:
    """``(primary key) - Task id`` / ``- Primary key, unique identifier`` -> (constraints, description)."""
    text = text.strip()
    if text.startswith("("):
        end = paren_end(text)
        if end:
            return text[1:end - 1], text[end:].strip(" :-–—,")
    if m := re.match(r"^[-–—:,]\s*(.*)$", text):
        text = m.group(1)
    depth = 0
    for i, ch in enumerate(text):
        depth += (ch == "(") - (ch == ")")
        if depth == 0 and text[i:i + 3] in (" - ", " – ", " — "):
            return text[:i], text[i + 3:].strip()
    return text, text


def looks_like_column_words(text: str) -> bool:
    return bool(re.search(r"primary\s+key|foreign\s+key|not\s+null|\bunique\b|\bPK\b|\bFK\b|references", text, re.I))


def fk_target_words(text: str) -> tuple[str | None, str, list[str]] | None:
    text = clean(text)
    # users(id) / auth.users(id, org_id); never "users.id (Better Auth managed, ...)", a note after a target
    if (m := re.match(rf"^({IDENT})(?:\.({IDENT}))?(\s*)\(\s*({IDENT}(?:\s*,\s*{IDENT})*)\s*\)", text)) and not (
            m.group(2) and m.group(3)):  # "users.id (cascade)": a target, then a note
        schema, table = (m.group(1), m.group(2)) if m.group(2) else (None, m.group(1))
        return schema, table.lower(), [c.strip() for c in m.group(4).split(",")]
    if m := re.match(rf"^({IDENT})\.({IDENT})(?:\.({IDENT}))?", text):
        if m.group(3):
            return m.group(1), m.group(2).lower(), [m.group(3)]
        return None, m.group(1).lower(), [m.group(2)]
    found = read_fk_target("FK " + text)
    if found:
        return found[0], found[1], [found[2]]
    return None


def parse_index_columns(text: str) -> tuple[list[IndexColumn], list[str]] | None:
    """``user_id, created_at DESC`` / ``(user_id, completed)`` / ``lower(email) INCLUDE (title)``."""
    text = clean_cell(text)
    include: list[str] = []
    if m := re.search(r"\s+INCLUDE\s*\(([^)]*)\)\s*$", text, re.I):
        include = [c.strip() for c in m.group(1).split(",") if c.strip()]
        text = text[: m.start()]
    text = text.strip()
    if text.startswith("(") and paren_end(text) == len(text):
        text = text[1:-1]
    if "(" not in text:
        text = re.sub(r"\s+(?:and|&|\+)\s+", ", ", text, flags=re.I)  # "user_id and created_at"
    columns = []
    for part in split_top_level(text.replace("`", "")):
        item = part.strip()
        descending = nulls_first = None
        if m := re.search(r"\s+NULLS\s+(FIRST|LAST)$", item, re.I):
            nulls_first = m.group(1).upper() == "FIRST"
            item = item[: m.start()]
        if m := re.search(r"\s+(ASC|DESC)$", item, re.I):
            descending = m.group(1).upper() == "DESC"
            item = item[: m.start()]
        item = item.strip()
        if not item:
            return None
        is_expression = not is_identifier(item)
        if is_expression and not re.search(r"\(", item):
            return None  # prose, not a column list
        if is_expression:
            item = normalize_expression(item) or item
        columns.append(IndexColumn(name=item, descending=bool(descending), nulls_first=nulls_first,
                                   is_expression=is_expression))
    return (columns, include) if columns else None


_AND = r"(?:\s*,\s*(?:and\s+)?|\s+and\s+|\s*[&+]\s*)"
_PLAIN_WORDS = {"the", "a", "an", "for", "to", "by", "with", "when", "and", "or", "of", "in", "per", "each"}


def parse_index_words(text: str, context) -> tuple[str | None, Index] | None:
    """Index bullets: ``tasks.user_id (filter by user)``, ``idx_tasks_user_id: Index on user_id``,
    ``idx_tasks_user_created on (user_id, created_at DESC) for sorted lists``, ``(user_id, completed)``."""
    name = None
    table = None
    rest = text
    if m := re.match(rf"^(?:INDEX\s+|UNIQUE\s+INDEX\s+)?({IDENT})\s*(?::|\bon\b|[-–—])\s*(.*)$", text, re.I):
        if m.group(1).lower().startswith(("idx", "ix_", "uq", "ux", "index_")) or "_idx" in m.group(1).lower():
            name, rest = m.group(1), m.group(2)
    unique = bool(re.search(r"\bunique\b", text, re.I))
    method = next((mm for mm in ("gin", "gist", "brin", "hash") if re.search(rf"\b{mm}\b", text, re.I)), "btree")
    where = None
    if m := re.search(r"\bWHERE\s+(.+?)\s*(?:[-–—]\s.*)?$", rest):
        where = normalize_expression(m.group(1).rstrip(")")) or m.group(1)
        rest = rest[: m.start()]
    reason = None
    columns = None
    if m := re.search(rf"(?:^|\bon\s+|\bindex\s+on\s+|:\s*)({IDENT})\.({IDENT})\b", rest, re.I):
        table = m.group(1).lower()
        columns = parse_index_columns(m.group(2))
        reason = rest[m.end():].strip(" -–—:()") or None
    if columns is None and (m := re.search(r"\(([^()]*(?:\([^()]*\)[^()]*)*)\)", rest)):
        columns = parse_index_columns(m.group(1))
        if columns:
            before = rest[: m.start()]
            if tm := re.search(rf"\bon\s+({IDENT})\s*$", before, re.I):
                table = tm.group(1).lower()
            reason = rest[m.end():].strip(" -–—:,.") or None
            reason = re.sub(r"^(for|to)\s+", lambda x: x.group(0), reason) if reason else None
    if columns is None and (m := re.search(rf"\b(?:on|index on)\s+({IDENT}(?:{_AND}{IDENT})*)\b(.*)$", rest, re.I)):
        # "Composite index on user_id and completed": every column named, up to the first plain word
        names = re.split(_AND, m.group(1), flags=re.I)
        kept = next((i for i, n in enumerate(names) if n.lower() in _PLAIN_WORDS), len(names)) or 1
        columns = parse_index_columns(", ".join(names[:kept]))
        named = re.match(rf"(?:{IDENT}(?:{_AND})?){{{kept}}}", m.group(1), re.I)  # matches: kept <= len(names)
        tail = m.group(1)[len(named.group(0)) if named else 0:]
        reason = (tail + m.group(2)).strip(" -–—:,.") or None
    if columns is None:
        return None
    if reason and reason.lower().startswith(("for ", "to ")):
        reason = reason[0].upper() + reason[1:]
    index_columns, include = columns
    return table, Index(name=name, columns=index_columns, include=include, unique=unique, method=method,
                        where=where, reason=reason)


def find_mentioned_tables(text: str) -> set[str]:
    return {m.group(1).lower() for m in re.finditer(rf"\b(?:from|join|update|into)\s+({IDENT})", text, re.I)} | {
        w.lower() for w in re.findall(IDENT, text)}


# "tasks.user_id" (lower case: "Task.user_id" is a Python class attribute) and "the `tasks` table".
_DOTTED_MENTION = re.compile(r"(?<![\w./-])([a-z_][a-z0-9_]*)\.[a-z_][a-z0-9_]*\b(?!\.\w|\()")
_TABLE_MENTION = re.compile(rf"(?<![\w.])`?({IDENT})`?\s+table\b", re.I)


def table_mentions(text: str, file: str) -> dict[str, Location]:
    mentioned: dict[str, Location] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        for pattern in (_DOTTED_MENTION, _TABLE_MENTION):
            for m in pattern.finditer(line):
                mentioned.setdefault(m.group(1).lower(), Location(file=file, line=number))
    return mentioned



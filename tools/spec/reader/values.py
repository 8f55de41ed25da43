"""Value lists: a heading (or a bold label) followed only by bullets that are each one bare value.

    ### Priority                 **Status values:**
    - `low`                      - `pending` - not started
    - `medium`                   - `done`
    - `high`

The list is the value set of the column the heading names (``priority``, ``Task Status`` -> ``status``,
``tasks.priority``): its ``allowed_values``, which the DDL makes a CHECK. Never a table, never columns.
A list whose heading names no column becomes an enum when the heading says it is one ("Enums", "values",
"options", "levels"); otherwise it is reported with its line, not guessed.

What tells a value list from a list of columns written without types (``- created_at``): no bullet has a
type or key words, and the items do not look like column names (``id``, ``*_id``, ``*_at``), unless the
heading names a column.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ...schema.findings import Finding
from ...schema.model import Column, Enum, Location, Table
from .headings import classify_heading
from .markdown import Bullet, Code, Heading, MdTable, Paragraph
from .words import clean, leading_type

_ITEM = re.compile(r"""^\s*(?:\*\*|__)?(?:`([^`]+)`|'([^']+)'|"([^"]+)"|([A-Za-z0-9][A-Za-z0-9_.+-]*))(?:\*\*|__)?"""
                   r"""\s*(?:(?:[:=]|\s[-–—]|\s\()\s*(.*))?$""")
_VALUE_WORDS = re.compile(r"\b(?:values?|enums?|enumerations?|options?|levels?|states?|statuses|choices|"
                          r"allowed|possible|kinds?|types?)\b", re.I)
_NAME_NOISE = re.compile(r"\b(?:values?|enums?|enumerations?|options?|levels?|states?|choices|allowed|possible|"
                         r"kinds?|types?|the|of|for|column|field|list|valid|supported|available)\b", re.I)
_ENUM_NOISE = re.compile(r"^\s*\d+(?:\.\d+)*\.?\s+|\b(?:values?|enums?|enumerations?|options?|choices|allowed|possible|"
                         r"the|of|for|list|valid|supported|available)\b")
_COLUMN_LIKE = re.compile(r"^(?:id|uuid|[a-z][a-z0-9]*(?:_[a-z0-9]+)*_(?:id|at|on|by|date|time|count)|email|"
                          r"password\w*|created\w*|updated\w*|user\w*|name|title|description)$")
_KEY_WORDS = re.compile(r"\bprimary\b|\bforeign\b|\bnot\s+null\b|\bnullable\b|\bunique\b|\breferences\b|→|->|"
                        r"\bdefault\b|\bpk\b|\bfk\b", re.I)
_ASPECTS = {"type", "data type", "constraints", "constraint", "default", "required", "nullable", "description",
            "notes", "note", "purpose", "example", "format", "validation", "index", "indexed"}
_LABEL = re.compile(r"^\*\*([^*]{1,60}?)\s*:?\s*\*\*\s*:?\s*$")


@dataclass
class ValueList:
    name: str  # the words naming the column ("priority", "task status", "tasks.priority")
    enum_name: str  # the name of the enum it is when it names no column ("Task Kind" -> task_kind)
    values: list[str]
    line: int
    #: the heading, a label or an Enums section says these are values; None: capitalised words that are
    #: values only if the heading names a column (else prose, left alone)
    strong: bool | None
    context: str | None = None  # the table whose section holds the list
    bullets: set[int] = field(default_factory=set)  # block indices


def bare_value(text: str) -> str | None:
    """``low``, ```in_progress``` - being worked on``, ``"todo"``: the value; None for anything else."""
    m = _ITEM.match(text)
    if not m:
        return None
    value = next(g for g in m.groups()[:4] if g is not None).strip()
    rest = (m.group(5) or "").strip()
    if "/" in value or (text.lstrip().startswith(("**", "__")) and rest and not value.islower()):
        return None  # a path; "- **Database**: Neon": a label and its text
    inner = rest[1:-1] if rest.startswith("(") and rest.endswith(")") else rest
    if not value or value.lower() in _ASPECTS or _KEY_WORDS.search(rest) or (
            inner and leading_type(inner)[0] is not None):
        return None  # "- title: varchar(200)", "- id (PK)": a column, not a value
    return value


def find_value_lists(blocks: list) -> dict[int, ValueList]:
    """Heading or label block index -> the value list right under it (two or more bare values)."""
    found: dict[int, ValueList] = {}
    enums_level: int | None = None
    for i, block in enumerate(blocks):
        if isinstance(block, Heading):
            kind = classify_heading(block.text).kind
            if enums_level is not None and block.level <= enums_level:
                enums_level = None
            if kind == "enums" and enums_level is None:
                enums_level = block.level
            title = block.text
        elif isinstance(block, Paragraph) and (m := _LABEL.match(block.text.strip())):
            title, kind = m.group(1), classify_heading(m.group(1)).kind
        else:
            continue
        if kind not in ("table", "other", "enums"):
            continue  # indexes, relationships, constraints, columns...: their bullets are theirs
        run: list[int] = []
        values: list[str] = []
        indent: int | None = None
        for j in range(i + 1, len(blocks)):
            item = blocks[j]
            if not isinstance(item, Bullet):
                if isinstance(item, Heading | MdTable | Code) or run:
                    break
                if isinstance(item, Paragraph) and _LABEL.match(item.text.strip()):
                    break
                continue  # a sentence between the heading and its list
            indent = item.indent if indent is None else indent
            if item.indent > indent:
                continue  # a value's own sub-bullet
            if item.indent < indent or (value := bare_value(item.text)) is None:
                run = []
                break
            run.append(j)
            values.append(value)
        if len(run) < 2 or _defines_a_table(blocks, i, block, title):
            continue
        strong: bool | None = enums_level is not None or bool(_VALUE_WORDS.search(clean(title)))
        if not strong and sum(bool(_COLUMN_LIKE.match(v)) for v in values) * 2 >= len(values):
            continue  # "- id / - email / - created_at": columns written without types
        name = _NAME_NOISE.sub(" ", re.sub(r"^\s*(?:\d+(?:\.\d+)*\.?)\s+", "", clean(title))).strip(" :-–—()")
        if not strong and not all(_plain_case(blocks[j].text, v) for j, v in zip(run, values, strict=True)):
            strong = None  # "- Development / - Production": prose unless the heading names a column
        enum_name = "_".join(re.findall(r"[a-z0-9]+", _ENUM_NOISE.sub(" ", clean(title).lower())))
        found[i] = ValueList(name=" ".join(name.split()), enum_name=enum_name, values=values, line=block.line,
                             strong=strong, bullets=set(range(run[0], run[-1] + 1)))
    return found


def _plain_case(text: str, value: str) -> bool:
    """A value written as values are (``low``, ``LOW``, ```Low```, ``"Low"``), not as a capitalised word."""
    return value.islower() or value.isupper() or text.lstrip(" *_")[:1] in "`'\""


def _defines_a_table(blocks: list, i: int, block, title: str) -> bool:
    """``## Users Table`` or a section that also holds a column table or code: not a value list's heading."""
    if isinstance(block, Heading) and re.search(r"\btable\b", clean(title), re.I):
        return True
    for later in blocks[i + 1:]:
        if isinstance(later, Heading) and (not isinstance(block, Heading) or later.level <= block.level):
            return False
        if isinstance(later, MdTable | Code):
            return True
        if not isinstance(block, Heading) and isinstance(later, Paragraph) and _LABEL.match(later.text.strip()):
            return False
    return False


def _candidates(name: str) -> list[tuple[str | None, str]]:
    """(table or None, column) spellings the heading words may mean, best first."""
    words = re.findall(r"[A-Za-z0-9_]+", name.replace(".", " . "))
    if m := re.fullmatch(r"\s*([A-Za-z_]\w*)\.([A-Za-z_]\w*)\s*", name):
        return [(m.group(1).lower(), m.group(2).lower())]
    words = [w.lower() for w in words if w != "."]
    if not words:
        return []
    out: list[tuple[str | None, str]] = [(None, "_".join(words))]
    if len(words) > 1:
        out += [(words[0], "_".join(words[1:])), (None, words[-1])]
    return out


def apply_value_lists(lists: list[ValueList], tables: list[Table], enums: list[Enum], file: str) -> list[Finding]:
    """Give each list to the column it names; an enum when it names none but says it is values; else a
    warning with its line."""
    warnings: list[Finding] = []
    by_name = {t.name: t for t in tables}
    for vl in lists:
        hits: list[Column] = []
        for table_word, column in _candidates(vl.name):
            pool = [vl.context] if vl.context in by_name else []
            if table_word:
                pool = [t for t in by_name if t == table_word or t.rstrip("s") == table_word.rstrip("s")]
            pool = pool or list(by_name)
            hits = [found for t in pool if (found := by_name[t].column(column)) is not None]
            if hits and (len(hits) == 1 or vl.context in by_name or table_word):
                break
            hits = []
        where = Location(file=file, line=vl.line)
        if hits:
            for col in hits[:1]:
                if col.allowed_values is None:
                    col.allowed_values = list(vl.values)
                elif col.allowed_values != vl.values:
                    warnings.append(Finding(
                        rule="spec-value-list-differs", severity="warning", object=col.name, location=where,
                        message=f"Line {vl.line}: the values listed under {vl.name!r} ({', '.join(vl.values)}) "
                                f"differ from the column's own ({', '.join(col.allowed_values)}); the column's "
                                "were kept.", fix="Say the values once, or make both lists the same."))
        elif vl.strong and (enum_name := vl.enum_name):
            if not any(e.name == enum_name for e in enums):
                enums.append(Enum(name=enum_name, values=list(vl.values), location=where))
        elif vl.strong is not None:
            warnings.append(Finding(
                rule="spec-value-list-unplaced", severity="info", location=where,
                message=f"Line {vl.line}: a list of values ({', '.join(vl.values[:6])}) under {vl.name!r}, which "
                        "names no column of the spec; it was not read as a table or as columns.",
                fix="Name the column in the heading (`### tasks.priority values`), or write the values in the "
                    "column's row (`CHECK (priority IN ('low', 'medium', 'high'))`)."))
    return warnings

"""Walk the markdown blocks of a spec: decide which table each heading, label and block is about, and
hand each block to the reader of its representation."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ...schema.findings import Finding, FindingId, Severity
from ...schema.model import (
    BETTER_AUTH_TABLES,
    Check,
    Column,
    Enum,
    ForeignKey,
    Identity,
    Index,
    IndexColumn,
    Location,
    QueryPattern,
)
from .bullet_keys import ACTION_ONLY, FieldsAndKeys, set_action
from .drafts import BULLETS, MARKDOWN_TABLE, SECTION, ColumnDraft, ReadResult, TableDraft
from .fields import (
    field_heading_name,
    index_reason,
    paren_groups,
    parenthesized_type,
    prose_constraints,
    reads_as_prose,
    stated_type,
)
from .headings import HeadingInfo, classify_heading
from .markdown import Bullet, Code, Heading, MdTable, Paragraph, scan
from .phrases import (
    clean_cell,
    clean_description,
    find_mentioned_tables,
    looks_like_column_words,
    paren_end,
    parse_index_columns,
    parse_index_words,
    split_bullet_rest,
    table_mentions,
)
from .python import looks_like_models, read_python
from .sql import looks_like_ddl, read_sql
from .values import ValueList, find_value_lists
from .words import (
    IDENT,
    clean,
    expression_columns,
    is_identifier,
    leading_type,
    normalize_expression,
    read_constraints,
    read_max_length,
    read_type,
    split_top_level,
    type_alternatives,
)

_LABEL = re.compile(r"^\*\*([^*]{1,60}?)\s*:?\s*\*\*\s*:?\s*(.*)$")
_COLUMN_BULLET = re.compile(rf"^(?:\*\*|`|\*)?({IDENT})(?:\*\*|`|\*)?\s*(?:(:|\(|\s[-–—]\s)\s*(.*)|$)")
_NESTED_ASPECT = re.compile(r"^(?:\*\*)?(type|data\s*type|constraints?|default|nullable|required|description)"
                            r"(?:\*\*)?\s*:\s*(?:\*\*)?\s*(.*)$", re.I)
# "Purpose: ...", "Note: ...": a capitalised label, in a column's sub-bullets.
_ASPECT_LABEL = re.compile(r"^([A-Z][A-Za-z]*(?:\s+[A-Za-z]+)?)\s*:\s*(.*)$")
_SERIALS: dict[str, Identity] = {"bigint": "bigserial", "smallint": "smallserial"}  # else serial
_DESCRIPTION_LABELS = {"purpose", "meaning", "usage", "details", "comment", "comments"}
_LEADING_NULLABILITY = re.compile(r"^(optional|nullable|required|mandatory|not[\s-]+null|non[\s-]*null(?:able)?)\s+",
                                  re.I)
_TABLE_NAME_LINE = re.compile(rf"^\**table(?:\s+name)?\**\s*:?\s*\**\s*:?\s*`?({IDENT}(?:\.{IDENT})?)`?\s*$", re.I)


@dataclass
class DocumentResult(ReadResult):
    query_patterns: list[tuple[QueryPattern, set[str]]] = field(default_factory=list)
    #: Table names the text uses ("tasks.user_id", "the tasks table"), each at its first line.
    mentioned_tables: dict[str, Location] = field(default_factory=dict)
    #: Bullets of bare values under a heading or label naming a column (values.py), placed after the merge.
    value_lists: list[ValueList] = field(default_factory=list)


class _Walker(FieldsAndKeys):
    result: DocumentResult  # what FieldsAndKeys knows as a ReadResult

    def __init__(self, text: str, file: str) -> None:
        self.file = file
        self.blocks = scan(text)
        self.value_lists = find_value_lists(self.blocks)
        self.value_bullets = {i for vl in self.value_lists.values() for i in vl.bullets}
        self.index = 0  # the block being visited
        self.stack: list[HeadingInfo] = []
        self.label: str | None = None
        self.table_override: tuple[str, str] | None = None
        self.result = DocumentResult()
        self.python_blocks: list[tuple[str, int]] = []
        self.bullet_draft: TableDraft | None = None
        self.last_column: ColumnDraft | None = None
        self.last_column_indent = 0
        # A bullet naming a column without a type ("- **title** (Task Title)"): it becomes a column
        # once a nested "- Type: ..." sub-bullet gives it one.
        self.last_column_pending = False
        # The last column got "- Type: / - Constraints:" sub-bullets, so its other "- Label: text"
        # sub-bullets ("- Purpose: ...", "- Note: ...") are about it too, never new columns.
        self.last_column_nested = False
        # A pending column that is still a column if no "- Type:" follows (a field heading, a bullet
        # naming a column only): kept with an unknown type, and the merge warns about it.
        self.pending_keep = False
        self.last_fk: ForeignKey | None = None  # for an "ON DELETE CASCADE" bullet right after it
        self.last_text = ""

    def loc(self, line: int) -> Location:
        return Location(file=self.file, line=line)

    def warn(self, rule: FindingId, line: int, message: str, fix: str | None = None, severity: Severity = "warning",
             object_: str | None = None) -> None:
        self.result.warnings.append(Finding(rule=rule, severity=severity, location=self.loc(line),
                                            message=message, fix=fix, object=object_))

    # ------------------------------------------------------------ context

    @property
    def skipping(self) -> bool:
        return any(h.kind == "skip" for h in self.stack)

    def current_table(self) -> tuple[str, str, HeadingInfo | None] | None:
        if self.table_override:
            return self.table_override[0], self.table_override[1], self.stack[-1] if self.stack else None
        for heading in reversed(self.stack):
            if heading.table:
                return heading.schema, heading.table, heading
        return None

    def current_kind(self) -> str:
        if self.label:
            return self.label
        for heading in reversed(self.stack):
            if heading.kind not in ("other", "columns") or heading.table:
                return "columns" if heading.table else heading.kind
            if heading.kind == "columns":
                return "columns"
        return "other"

    def managed_by(self) -> str | None:
        return next((h.managed_by for h in reversed(self.stack) if h.managed_by), None)

    def new_draft(self, source: str, line: int, name: str | None = None, schema: str = "public") -> TableDraft | None:
        if name is None:
            found = self.current_table()
            if found is None:
                return None
            schema, name, heading = found
            weak = bool(heading and heading.weak and not self.table_override)
        else:
            weak = False
        draft = TableDraft(name=name, source=source, location=self.loc(line), weak_name=weak, schema_name=schema)
        if source != SECTION:
            heading = next((h for h in reversed(self.stack) if h.table == name), None)
            draft.location = self.loc(heading.line) if heading else self.loc(line)
            managed = self.managed_by()
            if managed is None and name in BETTER_AUTH_TABLES and heading and any(
                    "better auth" in d.lower() for d in heading.description):
                managed = "better-auth"
            draft.managed_by = managed
            if heading and heading.description:
                draft.description = " ".join(d for text in heading.description if (d := clean_description(text)))
        self.result.drafts.append(draft)
        return draft

    # ------------------------------------------------------------ walk

    def walk(self) -> DocumentResult:
        for index, block in enumerate(self.blocks):
            self.index = index
            try:
                self.visit(block)
            except Exception as error:  # a reader bug must cost one block, never the whole spec
                self.warn("spec-reader-error", block.line,
                          f"Line {block.line}: this block could not be read ({type(error).__name__}); "
                          "it was skipped.", "Report it with the block's text; meanwhile write it in the "
                          "canonical format (specs/format.md).")
            if not isinstance(block, Paragraph | Heading) and self.stack:
                self.stack[-1].description_open = False
        try:
            python = read_python(self.python_blocks, self.file)
            self.result.drafts += python.drafts
            self.result.warnings += python.warnings
        except Exception as error:
            self.warn("spec-reader-error", 1, f"The Python models in the spec could not be read "
                      f"({type(error).__name__}).")
        self.flush_pending()
        return self.result

    def visit(self, block) -> None:
        if not isinstance(block, Paragraph | Bullet):
            self.flush_pending()
        if isinstance(block, Heading):
            self.on_heading(block)
            return
        if self.skipping:
            return
        if isinstance(block, Paragraph):
            self.on_paragraph(block)
        elif isinstance(block, Bullet):
            self.on_bullet(block)
        elif isinstance(block, MdTable):
            self.bullet_draft = None
            self.on_table(block)
        elif isinstance(block, Code):
            self.bullet_draft = None
            self.on_code(block)

    def on_heading(self, block: Heading) -> None:
        info = classify_heading(block.text)
        info.level, info.line = block.level, block.line
        while self.stack and self.stack[-1].level >= block.level:
            self.stack.pop()
        if info.kind == "skip" and not self.skipping:
            self.warn("spec-section-skipped", block.line,
                      f"Line {block.line}: skipped the section {clean(block.text)!r}: sections about "
                      "future, example, sample, migration or rollback content do not describe the "
                      "current schema.", severity="info")
        if info.table and any(h.kind == "skip" for h in self.stack):
            info.kind = "skip"
        if (values := self.value_lists.get(self.index)) and not self.skipping and info.kind != "skip":
            values.context = (self.current_table() or (None, None))[1]
            self.result.value_lists.append(values)
            info.kind, info.table = "values", None  # "### Priority" + "- low": a column's values, not a table
        field = field_heading_name(block.text) if info.kind in ("table", "other") and not self.skipping else None
        parent = self.current_table()
        if field and parent and parent[2] and parent[2].kind == "table" and not self.defines_a_table(block) and (
                self.stack[-1] is parent[2] or self.stack[-1].kind == "columns"):
            # "#### id" + "- **Type**: UUID" under a table's heading: a column, never a table.
            info.kind, info.table = "columns", None
            self.stack.append(info)
            self.label = None
            self.field_heading(field, block.line)
            return
        info.description_open = info.kind == "table"
        self.stack.append(info)
        self.label = None
        self.table_override = None
        self.bullet_draft = None
        self.last_column = None
        self.last_fk = None
        self.last_text = clean(block.text)

    def on_paragraph(self, block: Paragraph) -> None:
        text = block.text
        if values := self.value_lists.get(self.index):
            values.context = (self.current_table() or (None, None))[1]
            self.result.value_lists.append(values)
            return
        if m := _TABLE_NAME_LINE.match(text.lstrip("-* ")):
            schema, _, name = m.group(1).rpartition(".")
            self.table_override = (schema or "public", name.lower())
            return
        if self.on_label(text):
            return
        heading = self.stack[-1] if self.stack else None
        if heading and heading.description_open and not text.startswith(("|", ">", "<", "!")):
            heading.description.append(text)
            return
        self.last_text = clean(text)

    def on_label(self, text: str) -> bool:
        m = _LABEL.match(text)
        if not m:
            return False
        if m.group(2).strip() and not _TABLE_NAME_LINE.match(text):
            return False
        label = m.group(1).strip().rstrip(":")
        info = classify_heading(label)
        if info.kind == "skip":
            self.label = "skip"
        elif info.kind == "table" and info.table and re.search(r"\btable\b", label, re.I):
            self.table_override = (info.schema, info.table)
            self.label = None
        else:
            self.label = info.kind if info.kind != "other" else "prose"
        self.bullet_draft = None
        self.last_text = label
        return True

    # ------------------------------------------------------------ bullets

    def on_bullet(self, block: Bullet) -> None:
        text = block.text
        if self.index in self.value_bullets:
            return  # read with its heading (values.py)
        if m := _TABLE_NAME_LINE.match(text):
            schema, _, name = m.group(1).rpartition(".")
            self.table_override = (schema or "public", name.lower())
            return
        if _LABEL.match(text) and self.on_label(text):
            return
        kind = self.current_kind()
        if kind == "skip" or kind == "prose" and not self.last_column:
            return
        if self.last_column and block.indent > self.last_column_indent and self.on_nested_aspect(text):
            return
        if kind in ("columns", "prose") and self.current_table():
            # "Foreign key: user_id → users.id", "ON DELETE CASCADE" among the columns: not columns
            if kind == "columns" and (_COLUMN_BULLET.match(text) or not self.fk_bullet(block)):
                self.column_bullet(block)
            return
        handler = {"indexes": self.index_bullet, "relationships": self.relationship_bullet,
                   "constraints": self.constraint_bullet, "queries": self.query_bullet,
                   "notes": self.note_bullet, "enums": self.enum_bullet}.get(kind)
        if handler:
            handler(block)

    def on_nested_aspect(self, text: str) -> bool:
        m = _NESTED_ASPECT.match(clean(text) if text.startswith("**") else text)
        col = self.last_column
        if col is None:
            return False
        if (action := ACTION_ONLY.match(clean(text))) and self.bullet_draft is not None and (fk := next(
                (f for f in self.bullet_draft.foreign_keys if f.columns == [col.column.name]), None)):
            set_action(fk, action)
            return True
        if not m:
            if self.last_column_nested and (label := _ASPECT_LABEL.match(clean(text))):
                if label.group(1).lower() in _DESCRIPTION_LABELS and not col.column.description:
                    col.column.description = label.group(2).strip() or None
                return True
            return False
        self.last_column_nested = True
        aspect, value = m.group(1).lower(), m.group(2)
        if "type" in aspect:
            found, _, rest = stated_type(clean(value))
            if found:
                col.column.type, col.unreadable_type = found.type, None
                col.stated.add("type")
                if found.identity:
                    col.column.identity = found.identity
                    col.stated.add("identity")
                self.apply_facts(col, rest, "", self.bullet_draft)
        elif aspect == "required":
            if re.match(r"^\W*(yes|true|required)\b", value, re.I):
                self.apply_facts(col, "NOT NULL", "", self.bullet_draft)
            elif re.match(r"^\W*(no|false|optional)\b", value, re.I):
                self.apply_facts(col, "NULL", "", self.bullet_draft)
        elif aspect.startswith("constraint") or aspect in ("default", "nullable"):
            prefix = {"default": "DEFAULT ", "nullable": ""}.get(aspect, "")
            self.apply_facts(col, prefix + value, "", self.bullet_draft)
        elif aspect == "description" and not col.column.description:
            col.column.description = clean(value)
        if self.last_column_pending and "type" in col.stated and self.bullet_draft is not None:
            self.bullet_draft.add_column(col)
            self.last_column_pending = self.pending_keep = False
        return True

    def column_bullet(self, block: Bullet) -> None:
        text = block.text
        m = _COLUMN_BULLET.match(text)
        if not m:
            return
        self.flush_pending()
        name, sep, rest = m.group(1), m.group(2), (m.group(3) or "")
        if sep == "(":
            rest = "(" + rest
        draft = self.bullet_draft
        if draft is None or draft.name != (self.current_table() or (0, 0))[1]:
            draft = self.bullet_draft = self.new_draft(BULLETS, block.line)
        if draft is None:
            return
        column = Column(name=name.lower() if name.isupper() else name, type="", location=self.loc(block.line))
        col = ColumnDraft(column, set())
        rest = rest.strip()
        description = ""
        # "Optional string, max length 1000": a nullability word written before the type
        said_first = ""
        if (m := _LEADING_NULLABILITY.match(rest)) and leading_type(rest[m.end():])[0]:
            said_first, rest = m.group(1), rest[m.end():]
        # "id (int, PK): description" / "id: integer (primary key) - description"
        found, _, after = (leading_type(rest.lstrip("( ").replace("`", "")) if not rest.startswith("(")
                           else (None, "", rest))
        if found is not None and reads_as_prose(after) and parenthesized_type(rest):
            found = None  # "Timestamp of record creation (TIMESTAMPTZ)": the type is the one in parentheses
        constraints = ""
        if found is None and rest.startswith("("):
            end = paren_end(rest)
            inside = rest[1:end - 1] if end else rest[1:]
            parts = split_top_level(inside)
            if parts and (first := read_type(parts[0])):
                found, constraints = first, ", ".join(parts[1:])
            else:
                constraints = inside
            description = rest[end:].lstrip(" :-–—") if end else ""
        elif found is not None:
            constraints, description = split_bullet_rest(after)
        else:
            # "Unique identifier for each task (UUID, primary key)": the type in trailing parentheses
            for group in paren_groups(rest):
                parts = split_top_level(group)
                if parts and (first := read_type(parts[0])):
                    found, constraints = first, ", ".join(parts[1:])
                    description = rest[: rest.find("(" + group)].strip(" :-–—")
                    break
            if found is None:
                options = type_alternatives(rest.split(" - ")[0].split(",")[0])
                if len(options) > 1 and (first := read_type(options[0])):
                    found = first
                    constraints, description = split_bullet_rest(rest)
                else:
                    constraints, description = rest, ""
        if found:
            column.type = found.type
            column.identity = found.identity
            col.stated.add("type")
            if found.identity:
                col.stated.add("identity")
        else:
            col.unreadable_type = ""
        column.description = clean(description) or None
        if said_first:
            constraints = f"{said_first}, {constraints}"
        self.apply_facts(col, constraints, description, draft)
        self.last_column, self.last_column_indent = col, block.indent
        self.last_column_nested = False
        # A bare name (before any typed column) or a name with prose only ("- **title** (Task Title)")
        # is not a column yet: it waits for a nested "- Type: ..." sub-bullet.
        self.last_column_pending = found is None and (
            not rest and not any("type" in c.stated for c in draft.columns.values())
            or bool(rest) and not looks_like_column_words(constraints))
        # ... but a lower-case name with nothing or prose after it still names a column.
        self.pending_keep = self.last_column_pending and name.islower() and not looks_like_column_words(rest)
        if self.pending_keep and not column.description and constraints.strip():
            column.description = clean(constraints).strip(" ()") or None
        if not self.last_column_pending:
            draft.add_column(col)

    def apply_facts(self, col: ColumnDraft, constraints: str, description: str, draft: TableDraft | None) -> None:
        facts = read_constraints(constraints, description)
        column = col.column
        if facts.primary_key:
            col.state("primary_key", True)
        if facts.nullable is not None:
            col.state("nullable", facts.nullable)
        if facts.unique:
            col.state("unique", True)
        if facts.default is not None:
            col.state("default", facts.default)
        if facts.identity and column.type in ("integer", "bigint", "smallint", ""):
            if facts.identity == "serial":
                column.identity = _SERIALS.get(column.type, "serial")
                column.type = column.type or "integer"
                col.stated.add("type")
                col.unreadable_type = None
            else:
                column.identity = facts.identity
            col.stated.add("identity")
        if facts.max_length and column.type == "varchar":
            column.type = f"varchar({facts.max_length})"
        elif (n := read_max_length(constraints)) and column.type == "text" and read_max_length(
                column.description or "") is None:  # "| description | TEXT | Max 1000 chars |": kept as words
            column.description = "; ".join(filter(None, [column.description, f"max {n} characters"]))
        if facts.allowed_values:
            col.state("allowed_values", facts.allowed_values)
        if draft is None:
            return
        for name, expression in facts.checks:
            draft.checks.append(Check(name=name, expression=expression, location=column.location,
                                      columns=expression_columns(expression) or [column.name]))
        if facts.fk_target:
            schema, table, ref = facts.fk_target
            self.last_fk = ForeignKey(columns=[column.name], ref_table=table, ref_columns=[ref], ref_schema=schema,
                                      on_delete=facts.on_delete, on_update=facts.on_update,
                                      location=column.location)
            draft.foreign_keys.append(self.last_fk)
        elif facts.fk_said:
            assert column.location is not None and column.location.line is not None  # loc(line) of its bullet or row
            draft.fk_without_target[column.name] = column.location.line
        if facts.indexed:
            draft.indexes.append(Index(columns=[IndexColumn(name=column.name)], unique=bool(facts.unique),
                                       location=column.location))

    def section_draft(self, table: str | None, line: int, schema: str = "public") -> TableDraft | None:
        if table is None:
            found = self.current_table()
            if found is None:
                return None
            schema, table, _ = found
        draft = TableDraft(name=table, source=SECTION, location=self.loc(line), schema_name=schema)
        self.result.drafts.append(draft)
        return draft

    def index_bullet(self, block: Bullet) -> None:
        text = clean(block.text)
        if re.search(r"primary\s+key|\(automatic|automatic(ally)?\s+(created|from)", text, re.I):
            return
        if looks_like_ddl(text):
            self.sql_text(text, block.line)
            return
        index = parse_index_words(text, self.current_table())
        if index is None:
            return
        table, idx = index
        idx.location = self.loc(block.line)
        if table is None and self.current_table() is None:
            table = self.table_from_index_name(idx.name)
        if draft := self.section_draft(table, block.line):
            draft.indexes.append(idx)

    def table_from_index_name(self, name: str | None) -> str | None:
        """``idx_tasks_user_id`` in a global Indexes section is about ``tasks`` (the longest match)."""
        known = sorted({d.name for d in self.result.drafts if d.source != SECTION}, key=len, reverse=True)
        for table in known:
            if name and re.match(rf"^(idx|ix|uq|ux|index)_{re.escape(table)}_", name, re.I):
                return table
        return known[0] if len(known) == 1 else None

    def query_bullet(self, block: Bullet) -> None:
        text = block.text.strip()
        sql = None
        if m := re.match(r"^(.*?)\s*:\s*`([^`]+)`\s*$", text, re.S):
            text, sql = m.group(1), m.group(2).strip()
        description = clean(text) if sql is None else text.strip()
        if not description:
            return
        found = self.current_table()
        pattern = QueryPattern(description=description, sql=sql, location=self.loc(block.line))
        if found and any(h.table for h in self.stack):
            if draft := self.section_draft(None, block.line):
                draft.query_patterns.append(pattern)
        else:
            self.result.query_patterns.append((pattern, find_mentioned_tables(description + " " + (sql or ""))))

    def note_bullet(self, block: Bullet) -> None:
        if self.current_table() and any(h.table for h in self.stack):
            if draft := self.section_draft(None, block.line):
                draft.notes.append(block.text.strip())

    def enum_bullet(self, block: Bullet) -> None:
        text = clean(block.text)
        m = re.match(rf"^({IDENT})\s*[:=(-]\s*(.*?)\)?$", text)
        if not m:
            return
        values = re.findall(r"'((?:[^']|'')*)'", m.group(2))
        if not values:
            values = [v.strip() for v in re.split(r"[,|/]", m.group(2)) if is_identifier(v.strip())]
        if len(values) >= 1:
            self.result.enums.append(Enum(name=m.group(1).lower(), values=[v.replace("''", "'") for v in values],
                                          location=self.loc(block.line)))

    # ------------------------------------------------------------ markdown tables

    def on_table(self, block: MdTable) -> None:
        header = [clean(h).lower() for h in block.header]
        if not header:
            return
        first = header[0]
        if first in ("column", "field", "column name", "name", "attribute", "columns", "fields", "field name") and any(
                "type" in h for h in header[1:]):
            self.column_table(block, header)
        elif "index" in first or any(h in ("columns", "column(s)", "indexed columns") for h in header):
            self.index_table(block, header)

    def column_table(self, block: MdTable, header: list[str]) -> None:
        draft = self.new_draft(MARKDOWN_TABLE, block.line)
        if draft is None:
            self.warn("spec-table-without-name", block.line,
                      f"Line {block.line}: a column table with no table name above it; it was skipped.",
                      "Put it under a heading that names the table, e.g. `## Table: tasks`.")
            return
        type_col = next((i for i, h in enumerate(header) if h in ("type", "postgresql type", "data type",
                                                                  "sql type", "db type", "pg type")),
                        next(i for i, h in enumerate(header) if "type" in h and i > 0))
        def col_of(*names):
            return next((i for i, h in enumerate(header) if h in names), None)
        constraints_col = col_of("constraints", "constraint", "attributes", "key", "keys", "validation", "modifiers")
        notes_col = col_of("notes", "note")
        nullable_col = col_of("nullable", "null", "nullable?", "null?")
        required_col = col_of("required", "not null")
        default_col = col_of("default", "default value")
        description_col = col_of("description", "purpose", "comment", "comments", "meaning")
        for line, cells in block.rows:
            cells = cells + [""] * (len(header) - len(cells))
            name = clean(cells[0])
            if not is_identifier(name) or set(name) <= {"-"}:
                if any(clean(c) not in ("", "-", "—") for c in cells[1:]) and not set(name) <= {"-", ":", " "} or (
                        not name and any(clean(c) for c in cells[1:])):
                    self.warn("spec-unreadable-column", line, f"Line {line}: a row of {draft.name}'s column table "
                              + (f"whose name {name!r} is not a column name" if name else "with no column name")
                              + "; it was skipped.", "Write the column's name in the first cell, e.g. `user_id`.")
                continue
            spelled = cells[type_col]
            found = read_type(spelled)
            alternatives = type_alternatives(spelled)
            if found is None and len(alternatives) > 1:
                found = read_type(alternatives[0])
            if found is None and re.match(r"^(pk|fk|ck|chk|uq|idx|ix)_", name, re.I):
                continue  # a constraint or index listed as a row
            column = Column(name=name, type=found.type if found else "", identity=found.identity if found else None,
                            location=self.loc(line))
            col = ColumnDraft(column, {"type"} if found else set(),
                              unreadable_type=None if found else clean(spelled))
            if found and found.identity:
                col.stated.add("identity")
            description = clean_description(cells[description_col]) if description_col is not None else ""
            constraints = cells[constraints_col] if constraints_col is not None else ""
            if constraints_col is None and notes_col is None:
                # No column for constraints: the description is where keys get said ("UUID (primary key)").
                constraints = prose_constraints(description)
            if notes_col is not None:
                constraints += ", " + cells[notes_col]
                if description_col is None:
                    description = clean_description(cells[notes_col])
            if default_col is not None and (value := clean(cells[default_col])) and value not in ("-", "—"):
                constraints += f", DEFAULT {value}"
            column.description = description or None
            self.apply_facts(col, constraints, description, draft)
            if nullable_col is not None and (value := clean(cells[nullable_col]).lower()):
                if value.startswith(("yes", "null", "nullable", "true", "optional")):
                    column.nullable = True
                    col.stated.add("nullable")
                elif value.startswith(("no", "not null", "false", "required")):
                    column.nullable = False
                    col.stated.add("nullable")
            if required_col is not None and (value := clean(cells[required_col]).lower()):
                # "Auto", "Generated", "-": the value is not the user's to give; nullability not said
                if value.startswith(("yes", "true", "required", "not null", "no", "false", "optional")):
                    column.nullable = bool(re.match(r"(no|false|optional)\b", value))
                    col.stated.add("nullable")
            draft.add_column(col)
        if not draft.columns:
            self.result.drafts.remove(draft)
        # composite primary key: several rows say PRIMARY KEY
        pk = [n for n, c in draft.columns.items() if c.column.primary_key]
        if len(pk) > 1:
            draft.primary_key = pk

    def index_table(self, block: MdTable, header: list[str]) -> None:
        def col_of(*names):
            return next((i for i, h in enumerate(header) if h in names), None)
        name_col = col_of("index", "index name", "name")
        table_col = col_of("table")
        columns_col = col_of("columns", "column(s)", "column", "indexed columns", "fields")
        unique_col = col_of("unique")
        method_col = col_of("method", "using")
        type_col = col_of("type", "kind")
        where_col = col_of("where", "predicate", "partial", "condition")
        reason_col = col_of("reason", "purpose", "why", "description", "notes", "query", "serves")
        if columns_col is None:
            return
        for line, cells in block.rows:
            cells = cells + [""] * (len(header) - len(cells))
            table = clean(cells[table_col]).lower() if table_col is not None else None
            read = parse_index_columns(cells[columns_col])
            if not read:
                continue
            kind = " ".join(clean(cells[c]).lower() for c in (unique_col, type_col, method_col) if c is not None)
            unique = bool(re.search(r"\b(yes|true|unique)\b", kind))
            method = next((m for m in ("gin", "gist", "hash", "brin", "spgist", "btree") if m in kind), "btree")
            where = clean_cell(cells[where_col]) if where_col is not None else ""
            if where.upper().startswith("WHERE "):
                where = where[6:]
            name = clean(cells[name_col]) if name_col is not None else ""
            columns, include = read
            if where in ("-", "—"):
                where = ""
            index = Index(name=name if is_identifier(name) else None, columns=columns, unique=unique,
                          method=method, where=(normalize_expression(where) or where) if where else None,
                          include=include, location=self.loc(line),
                          reason=(cells[reason_col].strip() or None) if reason_col is not None else None)
            if table and "." in table:
                table = table.split(".")[-1]
            if draft := self.section_draft(table if table and is_identifier(table) else None, line):
                draft.indexes.append(index)

    # ------------------------------------------------------------ code blocks

    def on_code(self, block: Code) -> None:
        lang = block.lang
        text = block.text
        kind = self.current_kind()
        if lang in ("python", "py", "python3") or (lang in ("", "text") and looks_like_models(text)):
            if looks_like_models(text):
                self.python_blocks.append((text, block.first_line))
            return
        if lang in ("sql", "postgresql", "postgres", "pgsql", "psql", "plpgsql", "") and looks_like_ddl(text):
            self.sql_text(text, block.first_line)
            return
        if lang in ("sql", "postgresql", "postgres", "pgsql") and kind == "queries":
            description = self.last_text or "Query"
            pattern = QueryPattern(description=description, sql=text.strip(), location=self.loc(block.first_line))
            if self.current_table() and any(h.table for h in self.stack):
                if draft := self.section_draft(None, block.line):
                    draft.query_patterns.append(pattern)
            else:
                self.result.query_patterns.append((pattern, find_mentioned_tables(text)))
            return
        if lang in ("", "text", "txt", "plaintext") and self.current_table():
            self.key_value_block(block)

    def sql_text(self, text: str, first_line: int) -> None:
        result = read_sql(text, first_line, self.file)
        heading = self.stack[-1] if self.stack else None
        indexes = [i for d in result.drafts for i in d.indexes]
        if (heading and heading.kind in ("other", "indexes") and len(indexes) == 1 and not indexes[0].reason
                and any(h.kind == "indexes" for h in self.stack)):
            indexes[0].reason = index_reason(heading.text)  # "#### Filter a user's open tasks" above it
        self.result.warnings += result.warnings
        self.result.enums += result.enums
        managed = self.managed_by()
        for draft in result.drafts:
            if managed and draft.source != SECTION:
                draft.managed_by = managed
        self.result.drafts += result.drafts

    def key_value_block(self, block: Code) -> None:
        """An unlabelled block of ``name: TYPE (constraints)`` lines under a table heading."""
        draft = None
        for line, raw in block.lines:
            m = re.match(rf"^\s*({IDENT})\s*:\s*(.+)$", raw)
            if not m:
                continue
            found, _, rest = leading_type(m.group(2).strip())
            if found is None:
                continue
            if draft is None:
                draft = self.new_draft(BULLETS, block.line)
                if draft is None:
                    return
            column = Column(name=m.group(1), type=found.type, identity=found.identity, location=self.loc(line))
            col = ColumnDraft(column, {"type"} | ({"identity"} if found.identity else set()))
            constraints, description = split_bullet_rest(rest)
            self.apply_facts(col, constraints, description, draft)
            draft.add_column(col)


def read_document(text: str, file: str) -> DocumentResult:
    result = _Walker(text, file).walk()
    result.mentioned_tables = table_mentions(text, file)
    return result

"""The walker's reading of field headings (``#### id`` + ``- **Type**: uuid``), columns named without a
type, and foreign keys written as bullets (``Foreign key: a.b → c.d``, ``fk_x: REFERENCES users(id)``,
a lone ``ON DELETE CASCADE``). A mixin of the document walker: :class:`FieldsAndKeys` declares the
walker's state and methods it uses."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING

from ...schema.model import Check, Column, ForeignKey, Location, UniqueConstraint
from .drafts import BULLETS, SECTION, ColumnDraft, ReadResult, TableDraft
from .fields import column_for_constraint_name
from .markdown import Bullet, Code, Heading, MdTable
from .phrases import fk_target_words
from .words import FK_ACTIONS, IDENT, clean, expression_columns, normalize_expression, read_constraints

if TYPE_CHECKING:
    from .headings import HeadingInfo
    from .markdown import Block

_FK_LABEL = re.compile(r"^(?:foreign[\s_-]*keys?|fks?)(?:\s+constraints?)?\s*(?:[:\-–—]\s*|(?=\())", re.I)
_ACTION = r"(cascade|set\s+null|set\s+default|restrict|no\s+action)"
_AFTER = r"(?:\s*[.(\-–—:,;].*)?$"  # "ON DELETE CASCADE (a user's tasks go with the user)"


class _ActionOnly:
    """A bullet that is only a foreign key action, about the foreign key just above it: ``ON DELETE
    CASCADE``, ``On delete: set null``, ``CASCADE on delete``, ``Cascade delete``."""

    _FORMS = ((re.compile(rf"^on\s+(delete|update)\s*[:\-–—→=]?\s*{_ACTION}\b{_AFTER}", re.I), 1, 2),
              (re.compile(rf"^{_ACTION}\s+on\s+(delete|update)\b{_AFTER}", re.I), 2, 1),
              (re.compile(rf"^(?:cascad(?:e|es|ing)[\s-]+(delete)s?|(delete)s?\s*:?\s*(cascade)s?)\b{_AFTER}", re.I),
               None, None))

    def match(self, text: str) -> tuple[str, str] | None:
        for form, event, action in self._FORMS:
            if m := form.match(text.strip()):
                return (m.group(event), m.group(action)) if event and action else ("delete", "cascade")
        return None


ACTION_ONLY = _ActionOnly()


def set_action(fk: ForeignKey, action: tuple[str, str]) -> None:
    """Apply an ``ACTION_ONLY`` match (``ON DELETE CASCADE``: ("delete", "cascade")) to a foreign key."""
    setattr(fk, f"on_{action[0].lower()}", FK_ACTIONS[" ".join(action[1].lower().split())])


_EMBEDDED = re.compile(rf"(?:^|(?<=[\s(:,]))({IDENT}\.{IDENT})\s*(?:→|->|=>|\breferences\b|\brefers\s+to\b|"
                       r"(?:is\s+a\s+)?foreign\s+key\s+(?:to|references?|on)\b)\s*(.*)$", re.I)


def _until_group_end(text: str, start: int, rest: str) -> str:
    """``rest`` cut where the parenthesis open before ``start`` closes: ``users.id, ON DELETE CASCADE)``."""
    depth = text[:start].count("(") - text[:start].count(")")
    for i, ch in enumerate(rest):
        depth += (ch == "(") - (ch == ")")
        if depth < 0:
            return rest[:i]
    return rest


# A line that names a key's target (users.id, users(id)) with a key word: unread, it is worth a warning
_SAYS_A_KEY = re.compile(r"(?=.*(?:→|->|=>|\breferences?\b|\bforeign\s+key\b|\bFK\b))"
                         rf"(?=.*\b{IDENT}(?:\.{IDENT}|\s*\(\s*{IDENT}\s*\)))", re.I)


class FieldsAndKeys:
    """Field headings, typeless columns and foreign-key bullets, read into the walker's drafts.

    The document walker (document.py's ``_Walker``) sets the state and defines the methods declared
    here; this mixin only reads and updates them.
    """

    # The walker's state: the blocks and the one being visited, what was read so far, and the column
    # and foreign key the next sub-bullet may be about.
    blocks: list[Block]
    index: int
    result: ReadResult  # the document walker's DocumentResult; this mixin adds to its drafts
    bullet_draft: TableDraft | None
    last_column: ColumnDraft | None
    last_column_indent: int
    last_column_pending: bool
    last_column_nested: bool
    pending_keep: bool
    last_fk: ForeignKey | None

    # The walker's methods: a location in the spec, a warning, the table in scope and its drafts.
    loc: Callable[[int], Location]
    warn: Callable[..., None]  # (rule, line, message, fix=None, severity="warning", object_=None)
    current_table: Callable[[], tuple[str, str, HeadingInfo | None] | None]
    new_draft: Callable[..., TableDraft | None]  # (source, line, name=None, schema="public")
    section_draft: Callable[..., TableDraft | None]  # (table, line, schema="public")

    def flush_pending(self) -> None:
        col, draft = self.last_column, self.bullet_draft
        if self.last_column_pending and self.pending_keep and col and draft is not None:
            col.unreadable_type = ""  # no type was given: the merge makes it "unknown" and warns
            draft.add_column(col)
        self.last_column_pending = self.pending_keep = False

    def defines_a_table(self, heading: Heading) -> bool:
        """A heading whose section holds a column table or a code block names a table, not a field."""
        for block in self.blocks[self.index + 1:]:
            if isinstance(block, Heading) and block.level <= heading.level:
                return False
            if isinstance(block, MdTable | Code):
                return True
        return False

    def field_heading(self, name: str, line: int) -> None:
        draft = self.bullet_draft
        if draft is None or draft.name != (self.current_table() or (0, 0))[1]:
            draft = self.bullet_draft = self.new_draft(BULLETS, line)
        self.last_column = ColumnDraft(Column(name=name, type="", location=self.loc(line)), set())
        self.last_column_indent = -1
        self.last_column_pending = self.pending_keep = self.last_column_nested = True

    def fk_bullet(self, block: Bullet) -> bool:
        """``a.b → c.d``, ``Foreign key: a.b → c.d``, ``fk_x: REFERENCES users(id)``, ``ON DELETE CASCADE``
        (about the foreign key just before it); False when the bullet is not a foreign key."""
        text = _FK_LABEL.sub("", clean(block.text))
        line = block.line
        if action := ACTION_ONLY.match(text):
            if self.last_fk is not None:
                set_action(self.last_fk, action)
            return self.last_fk is not None
        named = re.match(rf"^({IDENT})\s*:\s*(.*)$", text)
        name = None
        if named and (re.search(r"→|->|\breferences\b", named.group(2), re.I)):
            name, text = named.group(1), named.group(2)
        m = re.match(rf"^\(?\s*((?:{IDENT}\.)?{IDENT}(?:\.{IDENT})?(?:\s*,\s*{IDENT})*)\s*\)?\s*"
                     r"(?:→|->|references|refers\s+to|is\s+a\s+foreign\s+key\s+to|FK\s+to)\s*(.*)$", text, re.I)
        left_text, target_text = (m.group(1), m.group(2)) if m else (None, "")
        if not m and name and (found := self.current_table()) and (
                r := re.match(r"^references\s+(.*)$", text, re.I)):
            # "`fk_tasks_owner`: REFERENCES users(id)": the column is in the constraint's name
            known = {c for d in self.result.drafts if d.name == found[1] and d.source != SECTION for c in d.columns}
            left_text, target_text = column_for_constraint_name(name, found[1], known), r.group(1)
        if not left_text and (e := _EMBEDDED.search(text)):
            # "One user has many tasks (`tasks.user_id` → `users.id`, ON DELETE CASCADE)": a dotted
            # table.column and its target inside prose; what follows, up to the group's end, is about it
            left_text, target_text = e.group(1), _until_group_end(text, e.start(), e.group(2))
        if not left_text:
            return False
        left = [p.strip() for p in left_text.split(",")]
        table = None
        if "." in left[0]:
            parts = left[0].split(".")
            table, left[0] = parts[-2], parts[-1]
        target = fk_target_words(target_text)
        if target is None:
            return False
        schema, ref_table, ref_columns = target
        if len(ref_columns) != len(left):
            ref_columns = ref_columns[:1] * len(left) if len(left) == 1 else ref_columns
        facts = read_constraints("FK " + target_text)
        draft = self.section_draft(table.lower() if table else None, line)
        if draft is None:
            return False
        self.last_fk = ForeignKey(name=name, columns=left, ref_table=ref_table, ref_schema=schema,
                                  ref_columns=ref_columns, on_delete=facts.on_delete,
                                  on_update=facts.on_update, location=self.loc(line))
        draft.foreign_keys.append(self.last_fk)
        return True

    def relationship_bullet(self, block: Bullet) -> None:
        before = sum(len(d.foreign_keys) + len(d.columns) + len(d.checks) for d in self.result.drafts)
        self.constraint_bullet(block)  # a foreign key first, then the constraint forms
        after = sum(len(d.foreign_keys) + len(d.columns) + len(d.checks) for d in self.result.drafts)
        if after == before and not ACTION_ONLY.match(clean(block.text)) and _SAYS_A_KEY.search(block.text):
            self.warn("spec-unread-relationship", block.line, f"Line {block.line}: this relationship line "
                      f"was not read as a foreign key: {clean(block.text)[:120]!r}.",
                      "Write it as `- tasks.user_id → users.id ON DELETE CASCADE`.", severity="info")

    def constraint_bullet(self, block: Bullet) -> None:
        if self.fk_bullet(block):
            return
        text = clean(block.text)
        line = block.line
        name = None
        if m := re.match(rf"^({IDENT})\s*:\s*((?:PRIMARY\s+KEY|UNIQUE|CHECK)\b.*)$", text, re.I):
            name, text = m.group(1), m.group(2)
        # "PRIMARY KEY (a, b)" and the label form "Primary Key: id"
        if m := re.match(rf"^PRIMARY\s+KEY\s*(?:\(\s*([^)]*)\)|[:=]\s*\(?\s*({IDENT}(?:\s*,\s*{IDENT})*)\s*\)?)\s*$",
                         text, re.I):
            if draft := self.section_draft(None, line):
                draft.primary_key = [c.strip() for c in (m.group(1) or m.group(2)).split(",")]
            return
        if m := re.match(r"^UNIQUE\s*\(([^)]*)\)\s*$", text, re.I):
            if draft := self.section_draft(None, line):
                draft.unique_constraints.append(UniqueConstraint(
                    name=name, columns=[c.strip() for c in m.group(1).split(",")], location=self.loc(line)))
            return
        if m := re.match(r"^CHECK\s*(\(.*\))\s*$", text, re.I | re.S):
            inner = m.group(1)[1:-1]
            expression = normalize_expression(inner) or inner.strip()
            if draft := self.section_draft(None, line):
                draft.checks.append(Check(name=name, expression=expression,
                                          columns=expression_columns(expression), location=self.loc(line)))
            return
        # "tasks.user_id: FOREIGN KEY ... CASCADE", "tasks.priority must be one of 'low', 'medium'"
        if m := re.match(rf"^({IDENT})\.({IDENT})\b\s*:?\s*(.*)$", text):
            table, column, rest = m.group(1).lower(), m.group(2), m.group(3)
            draft = self.section_draft(table, line)
            assert draft is not None  # a named table always gets one
            facts = read_constraints(rest)
            col = ColumnDraft(Column(name=column, type="", location=self.loc(line)), set())
            if facts.allowed_values:
                col.state("allowed_values", facts.allowed_values)
            if facts.unique:
                col.state("unique", True)
            if facts.nullable is False:
                col.state("nullable", False)
            draft.columns[column] = col
            if facts.fk_target:
                schema, ref_table, ref = facts.fk_target
                draft.foreign_keys.append(ForeignKey(columns=[column], ref_table=ref_table, ref_schema=schema,
                                                     ref_columns=[ref], on_delete=facts.on_delete,
                                                     location=self.loc(line)))

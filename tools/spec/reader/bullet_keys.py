"""The walker's reading of field headings (``#### id`` + ``- **Type**: uuid``), columns named without a
type, and foreign keys written as bullets (``Foreign key: a.b → c.d``, ``fk_x: REFERENCES users(id)``,
a lone ``ON DELETE CASCADE``). A mixin of the document walker: it uses the walker's state."""

from __future__ import annotations

import re

from ...schema.model import Column, ForeignKey
from .drafts import BULLETS, SECTION, ColumnDraft
from .fields import column_for_constraint_name
from .markdown import Code, Heading, MdTable
from .phrases import _fk_target_words
from .words import FK_ACTIONS, IDENT, clean, read_constraints

_FK_LABEL = re.compile(r"^(?:foreign[\s_-]*keys?|fks?)(?:\s+constraints?)?\s*[:\-–—]\s*", re.I)
ACTION_ONLY = re.compile(r"^on\s+(delete|update)\s*[:\-–—]?\s*"
                         r"(cascade|set\s+null|set\s+default|restrict|no\s+action)\s*\.?$", re.I)


def set_action(fk: ForeignKey, action: re.Match) -> None:
    """Apply an ``ACTION_ONLY`` match (``ON DELETE CASCADE``) to a foreign key."""
    setattr(fk, f"on_{action.group(1).lower()}", FK_ACTIONS[" ".join(action.group(2).lower().split())])


class FieldsAndKeys:
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
        if m := ACTION_ONLY.match(text):
            if self.last_fk is not None:
                set_action(self.last_fk, m)
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
        if not left_text:
            return False
        left = [p.strip() for p in left_text.split(",")]
        table = None
        if "." in left[0]:
            parts = left[0].split(".")
            table, left[0] = parts[-2], parts[-1]
        target = _fk_target_words(target_text)
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


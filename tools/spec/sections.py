"""Which part of a spec is a table's own section, decided by the reader that reads the spec.

"Does the spec have table X?" and "which lines would replacing X rewrite?" must have one answer, or a
write meant for one table rewrites something else (prose under a heading that happens to name it, or
another table nested inside its section). Both questions are answered here, from the same reading:

- a table *exists* when the lenient reader (``reader/``) reads a table of that name, columns and all;
- its *section* is the heading under which the reader found its definition, down to the next heading
  of the same or a higher level (headings are the reader's own: code fences, CRLF and lone CR counted
  the way it counts them);
- a heading that names a table but defines none (``## Archive`` over prose) is no table's section;
- a table defined under a heading nested inside the section is kept as it is, never rewritten.

Line numbers are 1-based, as the reader reports them; offsets index the text the reader was given.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ..schema.names import name_variants
from .reader.document import read_document
from .reader.headings import classify_heading
from .reader.markdown import Heading, scan
from .reader.merge import merge_tables

__all__ = ["SectionPlan", "SpecWriteError", "plan_table_write", "table_exists"]

#: Line ends as the reader splits them (markdown.split_lines): CRLF, lone CR, LF.
_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+\Z")


class SpecWriteError(ValueError):
    """A write the spec cannot take safely; the message names what is in the way and what to do."""


@dataclass
class SectionPlan:
    """Where one table's section goes: replaced in place (``start``..``end``) or appended."""

    table: str
    exists: bool
    #: Offsets of the section to replace, or None to append at the end.
    start: int | None = None
    end: int | None = None
    heading: str | None = None
    #: The heading level of the section being replaced (its replacement is written at the same level).
    level: int = 2
    first_line: int | None = None
    last_line: int | None = None
    #: What the write would remove, one human-readable entry each (the question lists them).
    removes: list[str] = field(default_factory=list)
    #: Nested table sections inside the replaced one, kept verbatim: (name, start, end offsets, line).
    kept: list[tuple[str, int, int, int]] = field(default_factory=list)
    #: Other places the spec states this table (outside its section); left as they are.
    elsewhere: list[str] = field(default_factory=list)

    def describe(self) -> str:
        """One paragraph: what replacing the section removes and keeps (for the person's question)."""
        if self.start is None:
            return f"The spec has no section of {self.table}: the new one is added at the end."
        parts = [f"It replaces lines {self.first_line}-{self.last_line} ({self.heading!r}) and removes: "
                 + "; ".join(self.removes) + "."]
        if self.kept:
            parts.append("Kept as they are: " + ", ".join(f"the section of table {name} (line {line})"
                                                            for name, _, _, line in self.kept) + ".")
        if self.elsewhere:
            parts.append("Also stated outside this section and left as is: " + "; ".join(self.elsewhere) + ".")
        return " ".join(parts)


@dataclass
class _Reading:
    text: str
    lines: list[tuple[int, str]]  # (offset, line with its end) for line 1, 2, ...
    headings: list[Heading]
    #: table -> [(line, representation)] of each definition the reader used (columns stated)
    definitions: dict[str, list[tuple[int, str]]]
    #: table -> [(line, representation)] of everything else it read about the table
    mentions: dict[str, list[tuple[int, str]]]

    def offset(self, line: int) -> int:
        """Offset of 1-based ``line`` (one past the end for the line after the last)."""
        return self.lines[line - 1][0] if line <= len(self.lines) else len(self.text)

    def end_line(self, heading: Heading) -> int:
        """The first line after ``heading``'s section (the next heading of its level or above)."""
        return next((h.line for h in self.headings if h.line > heading.line and h.level <= heading.level),
                    len(self.lines) + 1)


def _read(text: str) -> _Reading:
    try:
        document = read_document(text, "spec")
        tables, _, _ = merge_tables(document.drafts, document.enums, document.mentioned_tables)  # renames drafts
    except Exception as error:  # a reader bug must refuse the write, never guess at the sections
        raise SpecWriteError(f"Not written: the spec could not be read to find the table's section "
                             f"({type(error).__name__}). Edit the spec by hand, or report the spec's text.") from None
    names = {t.name for t in tables}
    definitions: dict[str, list[tuple[int, str]]] = {}
    mentions: dict[str, list[tuple[int, str]]] = {}
    for draft in document.drafts:
        if draft.name not in names:
            continue
        target = definitions if draft.defines_columns else mentions
        target.setdefault(draft.name, []).append((draft.location.line or 1, draft.source))
    offsets, position = [], 0
    for m in _LINE.finditer(text):
        offsets.append((position, m.group()))
        position = m.end()
    headings = [b for b in scan(text) if isinstance(b, Heading)]
    return _Reading(text, offsets, headings, definitions, mentions)


def table_exists(text: str, name: str) -> bool:
    """Whether the spec defines ``name`` (the same reading plan_table_write uses)."""
    return name.strip().lower() in _read(text).definitions


def plan_table_write(text: str, name: str, *, replace: bool) -> SectionPlan:
    """Where ``name``'s section goes in ``text``; SpecWriteError when the write is unsafe."""
    name = name.strip().lower()
    reading = _read(text)
    found = reading.definitions.get(name)
    if not found:
        return SectionPlan(table=name, exists=False)
    if not replace:
        raise SpecWriteError(f"The spec already defines table {name} (line {found[0][0]}). Pass replace=true to "
                             "replace its section (a breaking change the user must confirm), or pick another name.")
    by_line = {h.line: h for h in reading.headings}
    homes = sorted({home for line, _ in found if (home := _home(reading, name, line)) is not None})
    # a heading nested inside another home of the same table is part of that section
    homes = [line for line in homes
             if not any(o < line < reading.end_line(by_line[o]) for o in homes if o != line)]
    if not homes:
        where = ", ".join(f"line {line} ({source})" for line, source in found)
        raise SpecWriteError(
            f"Table {name} is defined at {where}, but not under a heading of its own, so there is no section "
            f"to replace without touching what surrounds it. Edit that definition by hand, or move it under a "
            f"`## Table: {name}` heading and call again.")
    if len(homes) > 1:
        raise SpecWriteError(
            f"Table {name} is defined in {len(homes)} sections (lines {', '.join(map(str, homes))}); replacing one "
            "would leave the other. Merge them into one section by hand, then call again.")
    heading = by_line[homes[0]]
    end_line = reading.end_line(heading)
    plan = SectionPlan(table=name, exists=True, start=reading.offset(heading.line), end=reading.offset(end_line),
                       level=heading.level, first_line=heading.line, last_line=end_line - 1,
                       heading=reading.lines[heading.line - 1][1].rstrip("\r\n").strip())
    inside = [h for h in reading.headings if heading.line < h.line < end_line]
    others = {other: lines for other, lines in reading.definitions.items() if other != name}
    skip_until = 0
    for sub in inside:
        if sub.line < skip_until:
            continue
        nested = [other for other, lines in others.items()
                  if any(_home(reading, other, line) == sub.line for line, _ in lines)]
        if nested:
            sub_end = reading.end_line(sub)
            plan.kept.append((nested[0], reading.offset(sub.line), reading.offset(sub_end), sub.line))
            skip_until = sub_end
    for other, lines in others.items():
        for line, source in lines:
            if heading.line <= line < end_line and not any(
                    start <= reading.offset(line) < stop for _, start, stop, _ in plan.kept):
                raise SpecWriteError(
                    f"The section of {name} ({plan.heading!r}, line {heading.line}) also defines table {other} at "
                    f"line {line} ({source}), not under a heading of its own; replacing the section would delete "
                    f"it. Move {other} under its own heading (e.g. `## Table: {other}`) first, then call again.")
    plan.removes = _removals(reading, name, heading, end_line, plan)
    plan.elsewhere = [f"line {line} ({source})"
                      for line, source in reading.definitions[name] + reading.mentions.get(name, [])
                      if not heading.line <= line < end_line]
    return plan


def _home(reading: _Reading, name: str, line: int) -> int | None:
    """The line of the heading whose section holds this definition of ``name`` as its own: the heading
    itself, or the innermost enclosing heading that names a table when it names this one."""
    if any(h.line == line for h in reading.headings):
        return line
    enclosing = [h for h in reading.headings if h.line < line < reading.end_line(h)]
    for heading in sorted(enclosing, key=lambda h: -h.line):
        named = classify_heading(heading.text).table
        if named:
            # the heading may name the table by a guessed singular ("Task Model" for tasks)
            singulars = {name} | {v for v in name_variants(name) if len(v) < len(name)}
            return heading.line if named in singulars else None
    return None


def _removals(reading: _Reading, name: str, heading: Heading, end_line: int, plan: SectionPlan) -> list[str]:
    """Everything in the section that the write deletes: the table's definitions, then each subsection
    heading and the other lines, so the person sees all of it (nested tables kept are not listed)."""
    def kept(line: int) -> bool:
        return any(start <= reading.offset(line) < stop for _, start, stop, _ in plan.kept)

    lines = [n for n in range(heading.line, end_line) if not kept(n)]
    definitions = sorted({f"its definition as a {source} (line {line})" for line, source in reading.definitions[name]
                          if heading.line <= line < end_line and not kept(line)})
    subheadings = [f"the subsection {reading.lines[h.line - 1][1].strip()!r} (line {h.line})"
                   for h in reading.headings if heading.line < h.line < end_line and not kept(h.line)]
    written = [n for n in lines if reading.lines[n - 1][1].strip()]
    out = [f"the heading {reading.lines[heading.line - 1][1].strip()!r}"] + definitions + subheadings
    out.append(f"{len(written)} non-blank line(s) in all")
    return out

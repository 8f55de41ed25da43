"""Split a markdown spec into blocks (headings, code, tables, bullets, paragraphs) with line numbers.

Deliberately forgiving: CRLF endings, a ```md fence wrapping the whole spec (closed or not), unclosed
code fences, cells holding ``|`` inside backticks.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_FENCE = re.compile(r"^\s{0,3}(`{3,}|~{3,})\s*([^\s`]*)")
_HEADING = re.compile(r"^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
_BULLET = re.compile(r"^(\s*)(?:[-*+]|\d+[.)])\s+(.*)$")
_TABLE_SEPARATOR = re.compile(r"^\s*\|?\s*:?-{2,}:?\s*(\|\s*:?-{2,}:?\s*)*\|?\s*$")
_WRAPPER_LANGS = {"md", "markdown"}


@dataclass
class Heading:
    line: int
    level: int
    text: str


@dataclass
class Code:
    line: int  # the opening fence
    lang: str
    lines: list[tuple[int, str]]

    @property
    def text(self) -> str:
        return "\n".join(text for _, text in self.lines)

    @property
    def first_line(self) -> int:
        return self.lines[0][0] if self.lines else self.line + 1


@dataclass
class MdTable:
    line: int
    header: list[str]
    rows: list[tuple[int, list[str]]] = field(default_factory=list)


@dataclass
class Bullet:
    line: int
    indent: int
    text: str


@dataclass
class Paragraph:
    line: int
    text: str


Block = Heading | Code | MdTable | Bullet | Paragraph


def split_lines(text: str) -> list[str]:
    return text.replace("\r\n", "\n").replace("\r", "\n").split("\n")


def split_cells(row: str, expected: int | None = None) -> list[str]:
    """Cells of a table row. ``\\|`` is a literal pipe; a pipe inside backticks is kept when splitting on
    it would give more cells than the header has."""
    cells = _split_row(row, respect_code=False)
    if expected is not None and len(cells) > expected:
        cells = _split_row(row, respect_code=True)
    return cells


def _split_row(row: str, respect_code: bool) -> list[str]:
    body = row.strip()
    if body.startswith("|"):
        body = body[1:]
    if body.endswith("|") and not body.endswith("\\|"):
        body = body[:-1]
    cells, current, in_code, i = [], [], False, 0
    while i < len(body):
        ch = body[i]
        if ch == "\\" and i + 1 < len(body) and body[i + 1] in "|\\":
            current.append(body[i + 1])
            i += 2
            continue
        if ch == "`" and respect_code:
            in_code = not in_code
        if ch == "|" and not in_code:
            cells.append("".join(current).strip())
            current = []
        else:
            current.append(ch)
        i += 1
    cells.append("".join(current).strip())
    return cells


def scan(text: str) -> list[Block]:
    lines = split_lines(text)
    blocks: list[Block] = []
    i = 0
    n = len(lines)
    while i < n:
        raw = lines[i]
        number = i + 1
        if m := _FENCE.match(raw):
            fence, lang = m.group(1), m.group(2).lower()
            close = _find_closing_fence(lines, i + 1, fence)
            if lang in _WRAPPER_LANGS:
                # A spec wrapped in a ```md fence is still the spec: read what is inside. Its closing
                # fence (if any) is the one left unpaired after the inner code blocks.
                later = [(j, mark) for j in range(i + 1, n) if (mark := _FENCE.match(lines[j]))]
                if len(later) % 2 == 1 and not later[-1][1].group(2):
                    lines[later[-1][0]] = ""
                i += 1
                continue
            end = close if close is not None else n
            blocks.append(Code(number, lang, [(j + 1, lines[j]) for j in range(i + 1, end)]))
            i = end + 1
            continue
        if m := _HEADING.match(raw):
            blocks.append(Heading(number, len(m.group(1)), m.group(2).strip()))
            i += 1
            continue
        stripped = raw.strip()
        if stripped.startswith("|") and i + 1 < n and _TABLE_SEPARATOR.match(lines[i + 1]):
            header = split_cells(raw)
            table = MdTable(number, header)
            i += 2
            while i < n and lines[i].strip().startswith("|"):
                table.rows.append((i + 1, split_cells(lines[i], expected=len(header))))
                i += 1
            blocks.append(table)
            continue
        if m := _BULLET.match(raw):
            blocks.append(Bullet(number, len(m.group(1).expandtabs(4)), m.group(2).strip()))
        elif stripped:
            blocks.append(Paragraph(number, stripped))
        i += 1
    return blocks


def _find_closing_fence(lines: list[str], start: int, fence: str) -> int | None:
    for j in range(start, len(lines)):
        s = lines[j].strip()
        if s.startswith(fence[0] * len(fence)) and set(s) <= {fence[0]}:
            return j
    return None

"""How a tool's result is made compact and paged for an agent: declared beside each result model.

The server (server/results.py) applies it: what ``detail="summary"`` leaves out, which lists are paged by
table and how an item names its table, and what is not repeated after the first page. Plain data, so a
tool's folder says it without knowing MCP.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Shape:
    """How one tool's result is made compact and paged."""

    #: Left out in summary: a top-level field (``None``) or keys dropped anywhere inside it.
    summary_omits: Mapping[str, frozenset[str] | None] = field(default_factory=dict)
    #: List fields paged by table, with how to read an item's table (``None``: not about one table).
    per_table: Mapping[str, Callable[[Any], str | None]] = field(default_factory=dict)
    #: Fields given on the first page only (what is not about one table and may be large).
    first_page_only: frozenset[str] = frozenset()
    #: Fields given only when the result is not paged: whole-result renderings (a diagram, a report)
    #: that would not fit a page and that a ``tables`` filter makes small again.
    whole_only: frozenset[str] = frozenset()


# How a listed item names its table, for Shape.per_table.

def table_of_object(item: dict) -> str | None:
    """The table of a finding or drift: its object is a table, "table.column" or "table.index"."""
    obj = item.get("object")
    return obj.removeprefix("public.").split(".", 1)[0] if isinstance(obj, str) and obj else None


def table_field(item: dict) -> str | None:
    return item.get("table") if isinstance(item, dict) else None


def name_field(item: dict) -> str | None:
    return item.get("name") if isinstance(item, dict) else None


def itself(item: Any) -> str | None:
    return item if isinstance(item, str) else None


_NOTE_TABLE = re.compile(r"([a-z_][a-z0-9_$]*(?:\.[a-z_][a-z0-9_$]*)?): ")


def note_prefix(item: Any) -> str | None:
    """The table a note opens with ("items_000: ..."); a general note opens with words."""
    m = _NOTE_TABLE.match(item) if isinstance(item, str) else None
    return m.group(1) if m else None

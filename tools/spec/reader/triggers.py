"""BEFORE UPDATE triggers in the spec's SQL: the spec saying the database keeps a column current.

``CREATE TRIGGER update_tasks_updated_at BEFORE UPDATE ON tasks ... EXECUTE FUNCTION update_updated_at_column()``
marks the column the function sets (``NEW.updated_at = now()``) with ``on_update = "trigger <name>"``.
When the function is not in the spec, the column is the ``updated``/``modified`` one the trigger or the
function is named after.
"""

from __future__ import annotations

import re

from ...schema.model import Table
from .markdown import Code, scan

_NAME = r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)?"
_FUNCTION = re.compile(rf"\bcreate\s+(?:or\s+replace\s+)?function\s+\"?({_NAME})\"?\s*\((.*?)(?:\$\$|\$[A-Za-z_]+\$)"
                       r"(.*?)(?:\$\$|\$[A-Za-z_]+\$)", re.I | re.S)
_TRIGGER = re.compile(rf"\bcreate\s+(?:or\s+replace\s+)?trigger\s+\"?({_NAME})\"?\s+before\s+([a-z\s]*?)\s+on\s+"
                      rf"\"?({_NAME})\"?[^;]*?\bexecute\s+(?:function|procedure)\s+\"?({_NAME})\"?", re.I | re.S)
_SETS = re.compile(r"\bNEW\.\"?([A-Za-z_][A-Za-z0-9_]*)\"?\s*:?=(?!=)", re.I)


def mark_update_triggers(text: str, tables: list[Table]) -> None:
    """Set ``on_update`` on the columns a BEFORE UPDATE trigger of the spec keeps current."""
    sql = "\n".join(b.text for b in scan(text) if isinstance(b, Code))
    if "trigger" not in sql.lower():
        return
    sets = {m.group(1).lower().rpartition(".")[2]: {c.lower() for c in _SETS.findall(m.group(3))}
            for m in _FUNCTION.finditer(sql)}
    by_name = {t.name.lower(): t for t in tables}
    for m in _TRIGGER.finditer(sql):
        if "update" not in m.group(2).lower():
            continue
        table = by_name.get(m.group(3).lower().rpartition(".")[2])
        if table is None:
            continue
        function = m.group(4).lower().rpartition(".")[2]
        named = f"{m.group(1)} {function}".lower()
        for column in table.columns:
            low = column.name.lower()
            known = sets.get(function)
            if (low in known) if known else (low in named and re.search(r"updat|modif", low)):
                column.on_update = column.on_update or f"trigger {m.group(1)}"

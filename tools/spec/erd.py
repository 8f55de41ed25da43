"""A Mermaid ``erDiagram`` of a :class:`~.schema.Schema`.

Entities list their columns as ``type name [PK, FK, UK] ["comment"]``. Mermaid accepts only word
characters in types and names, so ``varchar(200)`` becomes ``varchar_200``, ``double precision``
becomes ``double_precision`` and ``text[]`` becomes ``text_array``; a name that had to change keeps its
real spelling in the comment (entity names in an alias: ``my_table["my table"]``).

Relationships come from foreign keys, parent on the left, labelled with the FK column(s):

* ``||--o{``  NOT NULL FK: every child has one parent; a parent has any number of children;
* ``|o--o{``  nullable FK: a child may have no parent;
* ``||--o|`` / ``|o--o|``  the FK columns are unique (a one-to-one link): a parent has at most one.

Tables referenced but not in the schema (Better Auth's ``users``, usually) appear as entities holding
the referenced columns. Better Auth tables are labelled as such. Output order is sorted, so the same
schema always gives the same text.
"""

from __future__ import annotations

import re

from ..schema.model import BETTER_AUTH_TABLES, ForeignKey, Schema, Table


def _word(text: str) -> str:
    """A Mermaid-safe word: letters, digits and underscores, not starting with a digit."""
    text = text.strip().replace("[]", " array")
    word = re.sub(r"[^A-Za-z0-9_]+", "_", text).strip("_") or "x"
    return f"_{word}" if word[0].isdigit() else word


def _comment(text: str) -> str:
    """A quoted Mermaid string; it cannot hold a double quote."""
    return '"' + text.replace('"', "'") + '"'


def _alias(text: str) -> str:
    """A quoted entity alias; Mermaid's parser also rejects % and backslash there."""
    return _comment(re.sub(r"[%\\]", "_", text))


def _table_key(schema_name: str | None, name: str) -> str:
    return name if schema_name in (None, "public") else f"{schema_name}.{name}"


def _is_unique(table: Table, columns: list[str]) -> bool:
    """Whether the column set is unique on its own (PK, UNIQUE constraint or unique index)."""
    wanted = set(columns)
    pk = table.primary_key or [c.name for c in table.columns if c.primary_key]
    if set(pk) == wanted:
        return True
    if any(set(uc.columns) == wanted for uc in table.unique_constraints):
        return True
    if len(columns) == 1 and (col := table.column(columns[0])) is not None and col.unique:
        return True
    return any(ix.unique and ix.where is None and set(ix.column_names) == wanted for ix in table.indexes)


def _markers(table: Table, column: str) -> list[str]:
    pk = table.primary_key or [c.name for c in table.columns if c.primary_key]
    marks = []
    if column in pk:
        marks.append("PK")
    if any(column in fk.columns for fk in table.foreign_keys):
        marks.append("FK")
    if column not in pk and _is_unique(table, [column]):
        marks.append("UK")
    return marks


def _cardinality(table: Table, fk: ForeignKey) -> str:
    nullable = any((c := table.column(n)) is None or c.nullable for n in fk.columns)
    parent = "|o" if nullable else "||"
    children = "o|" if _is_unique(table, fk.columns) else "o{"
    return f"{parent}--{children}"


def mermaid_er(schema: Schema) -> str:
    """The schema as a Mermaid ``erDiagram``: entities with typed columns, relationships from FKs."""
    # entity key (schema-qualified unless public) -> list of attribute lines
    entities: dict[str, list[str]] = {}
    better_auth: set[str] = set()
    tables = {_table_key(t.schema_name, t.name): t for t in schema.tables}

    for key, t in tables.items():
        lines = []
        for col in t.columns:
            parts = [_word(col.type), _word(col.name)]
            if marks := _markers(t, col.name):
                parts.append(", ".join(marks))
            if _word(col.name) != col.name:
                parts.append(_comment(col.name))
            lines.append(" ".join(parts))
        entities[key] = lines
        if t.managed_by == "better-auth":
            better_auth.add(key)

    # Referenced tables we were not given: an entity with the referenced columns, typed like the FK.
    stubs: dict[str, dict[str, str]] = {}
    for t in schema.tables:
        for fk in t.foreign_keys:
            key = _table_key(fk.ref_schema, fk.ref_table)
            if key in tables:
                continue
            cols = stubs.setdefault(key, {})
            for own, ref in zip(fk.columns, fk.ref_columns, strict=False):
                column = t.column(own)
                cols.setdefault(ref, column.type if column else "unknown")
            if fk.ref_table in BETTER_AUTH_TABLES:
                better_auth.add(key)
    for key, cols in stubs.items():
        # A referenced column is a key of its table: PK when it is "id", otherwise unique.
        entities[key] = [f"{_word(typ)} {_word(name)} {'PK' if name == 'id' else 'UK'}"
                         + (f" {_comment(name)}" if _word(name) != name else "")
                         for name, typ in sorted(cols.items())]

    # Mermaid ids: safe words. Names already safe keep theirs; the others get a suffix on collision.
    ids = {key: key for key in entities if _word(key) == key}
    taken = set(ids)
    for key in sorted(k for k in entities if k not in ids):
        base = _word(key.replace(".", "__"))
        word, n = base, 2
        while word in taken:
            word, n = f"{base}_{n}", n + 1
        taken.add(word)
        ids[key] = word

    out = ["erDiagram"]
    for key in sorted(entities):
        label = f"{key} (Better Auth)" if key in better_auth else key
        head = ids[key] if label == ids[key] else f"{ids[key]}[{_alias(label)}]"
        if entities[key]:
            out += [f"    {head} {{", *(f"        {line}" for line in entities[key]), "    }"]
        else:
            out.append(f"    {head}")

    relations = []
    for key, t in tables.items():
        for fk in t.foreign_keys:
            parent = ids[_table_key(fk.ref_schema, fk.ref_table)]
            relations.append((ids[key], fk.columns, parent, _cardinality(t, fk)))
    for child, columns, parent, card in sorted(relations):
        out.append(f"    {parent} {card} {child} : {_comment(', '.join(columns))}")
    return "\n".join(out) + "\n"

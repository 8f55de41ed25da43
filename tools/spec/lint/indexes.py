"""Rules on foreign keys and indexes: ON DELETE stated, FKs indexed, no boolean, redundant or duplicate
indexes, and a stated reason for each.
"""

from __future__ import annotations

from collections.abc import Iterator

from ...database.ddl import qualified
from ...database.quoting import ident, ident_list
from ...schema.model import Index, Schema, location_of
from .core import (
    Hit,
    IndexShape,
    LintContext,
    add_fk_sql,
    covers_columns,
    index_shapes,
    rule,
)

# ---------------------------------------------------------------------------------------------------
# Foreign keys and indexes


@rule("fk-on-delete-missing", "warning")
def fk_on_delete_missing(ctx: LintContext) -> Iterator[Hit]:
    """Every foreign key states what happens when its parent row is deleted.

    Unstated means NO ACTION: the parent's delete fails while children exist, which is seldom what was
    meant. The owner foreign key is checked by `owner-fk-on-delete` instead. A live database always
    states an action, so this rule fires on specs and models.

    Bad:
        task_id integer NOT NULL REFERENCES tasks (id)

    Good:
        task_id integer NOT NULL REFERENCES tasks (id) ON DELETE CASCADE

    Fix: CASCADE for rows owned by the parent, SET NULL for a nullable optional link, RESTRICT to forbid.
    """
    for t in ctx.tables:
        for fk in t.foreign_keys:
            if fk.on_delete is not None or fk.columns == [ctx.owner_column]:
                continue
            nullable = any((c := t.column(n)) is not None and c.nullable for n in fk.columns)
            action = "SET NULL" if nullable else "CASCADE"
            yield Hit(
                f"The foreign key {t.name} ({', '.join(fk.columns)}) -> {fk.ref_table} does not state ON DELETE.",
                f"{t.name}.{','.join(fk.columns)}", location_of(fk, t),
                add_fk_sql(t, fk, action) + f" model: Field(foreign_key=\"{fk.ref_table}."
                f"{fk.ref_columns[0]}\", ondelete=\"{action}\") -- or RESTRICT to forbid the delete",
            )


@rule("fk-not-indexed", "warning")
def fk_not_indexed(ctx: LintContext) -> Iterator[Hit]:
    """Foreign key columns lead some index, or each parent delete and each join scans the child table.

    Covered means: a valid, non-partial btree index whose leading columns are exactly the foreign key
    columns (in any order). A partial index does not cover, since the cascade's query has no predicate.
    The owner column is checked by `owner-not-indexed` instead.

    Bad:
        task_id integer NOT NULL REFERENCES tasks (id) ON DELETE CASCADE   -- no index

    Good:
        CREATE INDEX ix_comments_task_id ON comments (task_id);

    Fix: create the index (CONCURRENTLY on a live table).
    """
    for t in ctx.tables:
        indexes = index_shapes(t)
        for fk in t.foreign_keys:
            if fk.columns == [ctx.owner_column] or any(covers_columns(ix, fk.columns) for ix in indexes):
                continue
            name = ident(f"ix_{t.name}_{'_'.join(fk.columns)}")
            yield Hit(
                f"No index on {t.name} starts with the foreign key columns ({', '.join(fk.columns)}).",
                f"{t.name}.{','.join(fk.columns)}", location_of(fk, t),
                f"CREATE INDEX CONCURRENTLY {name} ON {qualified(t)} ({ident_list(fk.columns)});",
            )


@rule("boolean-index", "warning")
def boolean_index(ctx: LintContext) -> Iterator[Hit]:
    """An index on a boolean alone is nearly always useless: half the table matches either value.

    Bad:
        CREATE INDEX ix_tasks_completed ON tasks (completed);

    Good:
        CREATE INDEX ix_tasks_user_id_completed ON tasks (user_id, completed);

    Fix: drop it; lead with the owner column, or use a partial index (`WHERE NOT completed`).
    """
    for t in ctx.tables:
        for ix in index_shapes(t):
            if ix.source is None or ix.unique or len(ix.keys) != 1 or ix.has_expression:
                continue
            col = t.column(ix.names[0])
            if col is None or col.type != "boolean":
                continue
            drop = f"DROP INDEX CONCURRENTLY {ident(ix.name)};" if ix.name else "remove the index;"
            if t.column(ctx.owner_column) is not None:
                better = (f"CREATE INDEX CONCURRENTLY {ident(f'ix_{t.name}_{ctx.owner_column}_{col.name}')} "
                          f"ON {qualified(t)} ({ident_list([ctx.owner_column, col.name])});")
            else:
                better = (f"if rows with {col.name} = true are rare: "
                          f"CREATE INDEX ... ON {qualified(t)} (...) WHERE {ident(col.name)};")
            yield Hit(
                f"{ix.label(t)} indexes the boolean {t.name}.{col.name} alone.",
                f"{t.name}.{ix.name}" if ix.name else t.name,
                location_of(ix.source, t), f"{drop} {better}",
            )


def _same_prefix(short: IndexShape, long: IndexShape) -> bool:
    return long.keys[: len(short.keys)] == short.keys


@rule("redundant-index", "warning")
def redundant_index(ctx: LintContext) -> Iterator[Hit]:
    """An index whose columns are the leftmost prefix of another index is redundant: the longer one serves its queries.

    Both must use the same method and have no predicate; the shorter one must not be unique (its
    uniqueness is a constraint) and its INCLUDE columns must be in the longer one. Primary keys and
    UNIQUE constraints count as the longer index.

    Bad:
        CREATE INDEX ix_tasks_user_id ON tasks (user_id);
        CREATE INDEX ix_tasks_user_id_created_at ON tasks (user_id, created_at DESC);

    Good:
        CREATE INDEX ix_tasks_user_id_created_at ON tasks (user_id, created_at DESC);

    Fix: drop the shorter index.
    """
    for t in ctx.tables:
        indexes = index_shapes(t)
        for short in indexes:
            if short.source is None or short.unique or short.where is not None:
                continue
            longer = next(
                (ix for ix in indexes
                 if ix is not short and ix.method == short.method and ix.where is None
                 and len(ix.keys) > len(short.keys) and _same_prefix(short, ix)
                 and set(short.include) <= set(ix.names) | set(ix.include)),
                None,
            )
            if longer is None:
                continue
            yield Hit(
                f"{short.label(t)} ({', '.join(short.names)}) is the leftmost prefix of "
                f"{longer.label(t)} ({', '.join(longer.names)}).",
                f"{t.name}.{short.name}" if short.name else t.name, location_of(short.source, t),
                f"DROP INDEX CONCURRENTLY {ident(short.name)};" if short.name
                else "remove the index from the spec/model",
            )


@rule("duplicate-index", "warning")
def duplicate_index(ctx: LintContext) -> Iterator[Hit]:
    """Two indexes with the same columns, method and predicate cost two writes for one index's reads.

    The one kept is the primary key, else a unique one, else one backing a constraint, else the first
    by name; the others are reported.

    Bad:
        slug varchar(100) UNIQUE,
        CREATE INDEX ix_posts_slug ON posts (slug);

    Good:
        slug varchar(100) UNIQUE

    Fix: drop the extra index (or the extra UNIQUE constraint).
    """
    for t in ctx.tables:
        groups: dict[tuple[object, ...], list[IndexShape]] = {}
        for ix in index_shapes(t):
            groups.setdefault((ix.keys, ix.method, ix.where, tuple(sorted(ix.include))), []).append(ix)
        for same in groups.values():
            if len(same) < 2:
                continue
            same.sort(key=lambda ix: (not ix.primary, not ix.unique, ix.constraint is None, ix.name or ""))
            kept = same[0]
            for extra in same[1:]:
                if extra.constraint:
                    fix = f"ALTER TABLE {qualified(t)} DROP CONSTRAINT {ident(extra.constraint)};"
                elif extra.name:
                    fix = f"DROP INDEX CONCURRENTLY {ident(extra.name)};"
                else:
                    fix = "remove the index from the spec/model"
                yield Hit(
                    f"{extra.label(t)} duplicates {kept.label(t)} ({', '.join(kept.names)}).",
                    f"{t.name}.{extra.name}" if extra.name else t.name, location_of(extra.source, t), fix,
                )


def _from_spec(schema: Schema, ix: Index) -> bool:
    if ix.location is not None:
        return ix.location.file.endswith(".md")
    return schema.source is not None and schema.source.endswith(".md")


@rule("index-without-reason", "info")
def index_without_reason(ctx: LintContext) -> Iterator[Hit]:
    """Every index in the spec says which query it serves, or nobody can tell later whether to keep it.

    Spec side only: an index counts as read from a spec when its location (or the schema's source) is a
    Markdown file. Models and the live database have no place for a reason.

    Bad:
        - ix_tasks_user_id_completed (user_id, completed)

    Good:
        - ix_tasks_user_id_completed (user_id, completed): list a user's open tasks

    Fix: add the query pattern next to the index in the spec.
    """
    for t in ctx.tables:
        for ix in t.indexes:
            if ix.primary or ix.constraint or (ix.reason or "").strip() or not _from_spec(ctx.schema, ix):
                continue
            label = ix.name or f"the index on {t.name} ({', '.join(ix.column_names)})"
            yield Hit(
                f"{label} has no stated reason.", f"{t.name}.{ix.name}" if ix.name else t.name, location_of(ix, t),
                f"In the spec, after the index: `{ix.name or 'ix_' + t.name} ({', '.join(ix.column_names)}): "
                f"<the query it serves, e.g. list a user's tasks by created_at>`",
            )



"""Rules on user ownership: every user-owned table has a NOT NULL, indexed user_id FK to the users table."""

from __future__ import annotations

from collections.abc import Iterator

from ...database.ddl import qualified
from ...database.quoting import ident
from ...schema.model import location_of
from .core import (
    SHARED_WORDS,
    Hit,
    LintContext,
    add_fk_sql,
    covers_columns,
    index_shapes,
    py_type,
    rule,
    type_family,
)

# ---------------------------------------------------------------------------------------------------
# Ownership


@rule("owner-column-missing", "warning")
def owner_column_missing(ctx: LintContext) -> Iterator[Hit]:
    """A table whose rows belong to a user carries `user_id` itself, so every query can filter by it.

    What counts as user-owned: a table that has the owner column, or that reaches the users table
    through foreign keys (directly through another column such as `author_id`, or through a chain such
    as `comments -> tasks -> users`). This rule reports the user-owned tables that lack the owner
    column: without it, "only my rows" needs a join, and a forgotten join leaks other users' rows.

    Bad:
        CREATE TABLE comments (
            id serial PRIMARY KEY,
            task_id integer NOT NULL REFERENCES tasks (id) ON DELETE CASCADE
        );

    Good:
        CREATE TABLE comments (
            id serial PRIMARY KEY,
            user_id text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
            task_id integer NOT NULL REFERENCES tasks (id) ON DELETE CASCADE
        );

    Fix: add the owner column, backfill it from the parent row, then make it NOT NULL.
    """
    for t in ctx.tables:
        how = ctx.owned.get(t.qualified_name)
        if how is None or t.column(ctx.owner_column) is not None:
            continue
        col = ident(ctx.owner_column)
        yield Hit(
            f"{t.name} holds user data ({how}) but has no {ctx.owner_column} column.",
            t.name, location_of(t),
            f"ALTER TABLE {qualified(t)} ADD COLUMN {col} {ctx.users_id_type} "
            f"REFERENCES {ident(ctx.users_table)} (id) ON DELETE CASCADE; -- backfill from the parent, "
            f"then: ALTER TABLE {qualified(t)} ALTER COLUMN {col} SET NOT NULL; "
            f"CREATE INDEX ON {qualified(t)} ({col});",
        )


@rule("table-ownership-unclear", "info")
def table_ownership_unclear(ctx: LintContext) -> Iterator[Hit]:
    """A table with no owner column and no foreign-key path to the users table is shared by all users; say so.

    Nothing in the structure tells user data that forgot its `user_id` from a shared lookup table.
    So the rule asks. A table counts as declared shared when its description or notes say
    "shared", "global", "lookup", "system-wide" or "not user-owned".

    Bad:
        CREATE TABLE tasks (id serial PRIMARY KEY, title varchar(200) NOT NULL);

    Good:
        CREATE TABLE tasks (
            id serial PRIMARY KEY,
            user_id text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
            title varchar(200) NOT NULL
        );
        -- or, for a table every user reads: describe it as "shared lookup table".

    Fix: add `user_id` if rows belong to a user; otherwise describe the table as shared.
    """
    for t in ctx.tables:
        if t.qualified_name in ctx.owned or t.column(ctx.owner_column) is not None:
            continue
        if any(SHARED_WORDS.search(text) for text in [t.description or "", *t.notes]):
            continue
        yield Hit(
            f"{t.name} has no {ctx.owner_column} and no foreign key path to {ctx.users_table}: every user "
            f"sees every row.",
            t.name, location_of(t),
            f"If rows belong to a user: ALTER TABLE {qualified(t)} ADD COLUMN {ident(ctx.owner_column)} "
            f"{ctx.users_id_type} NOT NULL REFERENCES {ident(ctx.users_table)} (id) ON DELETE CASCADE; "
            f"if the table is shared on purpose, say \"shared lookup table\" in its description.",
        )


@rule("owner-column-nullable", "error")
def owner_column_nullable(ctx: LintContext) -> Iterator[Hit]:
    """A row with a NULL owner belongs to nobody: no user's `WHERE user_id = $1` finds it again.

    Bad:
        user_id text REFERENCES users (id) ON DELETE CASCADE

    Good:
        user_id text NOT NULL REFERENCES users (id) ON DELETE CASCADE

    Fix: delete or assign the ownerless rows, then `SET NOT NULL`; in the model drop `Optional`.
    """
    for t in ctx.tables:
        col = t.column(ctx.owner_column)
        if col is None or not col.nullable:
            continue
        c = ident(col.name)
        yield Hit(
            f"{t.name}.{col.name} is nullable: rows without an owner are visible to no one, or to everyone.",
            f"{t.name}.{col.name}", location_of(col, t),
            f"SELECT count(*) FROM {qualified(t)} WHERE {c} IS NULL; -- fix those rows, then: "
            f"ALTER TABLE {qualified(t)} ALTER COLUMN {c} SET NOT NULL; "
            f"model: {col.name}: {py_type(col.type)} = Field(foreign_key=\"{ctx.users_table}.id\", "
            f"ondelete=\"CASCADE\", index=True)",
        )


@rule("owner-fk-missing", "error")
def owner_fk_missing(ctx: LintContext) -> Iterator[Hit]:
    """The owner column references the users table, so a row cannot name a user who does not exist.

    Bad:
        user_id text NOT NULL

    Good:
        user_id text NOT NULL REFERENCES users (id) ON DELETE CASCADE

    Fix: add the foreign key (after deleting rows whose owner is gone).
    """
    for t in ctx.tables:
        col = t.column(ctx.owner_column)
        if col is None:
            continue
        fk = ctx.owner_fk(t)
        if fk is not None and ctx.is_users_ref(fk):
            continue
        what = "has no foreign key" if fk is None else f"references {fk.ref_table}, not {ctx.users_table}"
        c = ident(col.name)
        yield Hit(
            f"{t.name}.{col.name} {what}: rows can point at users that do not exist.",
            f"{t.name}.{col.name}", location_of(fk, col, t),
            f"ALTER TABLE {qualified(t)} ADD CONSTRAINT {ident(f'{t.name}_{col.name}_fkey')} FOREIGN KEY ({c}) "
            f"REFERENCES {ident(ctx.users_table)} (id) ON DELETE CASCADE; "
            f"model: {col.name}: {py_type(col.type)} = Field(foreign_key=\"{ctx.users_table}.id\", "
            f"ondelete=\"CASCADE\", index=True)",
        )


@rule("owner-fk-on-delete", "warning")
def owner_fk_on_delete(ctx: LintContext) -> Iterator[Hit]:
    """A user's data goes with the user: the owner foreign key says ON DELETE CASCADE.

    Unstated, PostgreSQL uses NO ACTION, and deleting a user who has rows fails (Better Auth's
    "delete account" breaks). RESTRICT fails the same way; SET NULL contradicts NOT NULL.

    Bad:
        user_id text NOT NULL REFERENCES users (id)

    Good:
        user_id text NOT NULL REFERENCES users (id) ON DELETE CASCADE

    Fix: recreate the constraint with ON DELETE CASCADE (`ondelete="CASCADE"` in the model).
    """
    for t in ctx.tables:
        fk = ctx.owner_fk(t)
        if fk is None or not ctx.is_users_ref(fk) or fk.on_delete == "CASCADE":
            continue
        said = "does not state ON DELETE" if fk.on_delete is None else f"says ON DELETE {fk.on_delete}"
        yield Hit(
            f"The foreign key {t.name}.{ctx.owner_column} -> {fk.ref_table} {said}: deleting a user who "
            f"has {t.name} rows fails.",
            f"{t.name}.{ctx.owner_column}", location_of(fk, t),
            add_fk_sql(t, fk, "CASCADE")
            + f" model: Field(foreign_key=\"{fk.ref_table}.id\", ondelete=\"CASCADE\")",
        )


@rule("owner-type-mismatch", "error")
def owner_type_mismatch(ctx: LintContext) -> Iterator[Hit]:
    """A column that references the users table has the users id's type (Better Auth's default is text).

    The users table's id type is read from the schema (the `users`/`user` table, or the column the
    owner foreign keys point at); without one it is `text`. All string types (text, varchar,
    varchar(n)) count as one type here; uuid, integer and text do not mix.

    Bad:
        user_id uuid NOT NULL REFERENCES users (id)   -- users.id is text

    Good:
        user_id text NOT NULL REFERENCES users (id) ON DELETE CASCADE

    Fix: change the column type to the users id type (`str` in the model for text).
    """
    for t in ctx.tables:
        cols = {ctx.owner_column} if t.column(ctx.owner_column) else set()
        cols |= {fk.columns[0] for fk in t.foreign_keys if ctx.is_users_ref(fk) and len(fk.columns) == 1}
        for name in sorted(cols):
            col = t.column(name)
            if col is None or type_family(col.type) == type_family(ctx.users_id_type):
                continue
            if "unknown" in (col.type, ctx.users_id_type):
                continue  # the spec did not say the type (the reader warned): nothing to compare
            c = ident(name)
            yield Hit(
                f"{t.name}.{name} is {col.type} but {ctx.users_table}.id is {ctx.users_id_type}.",
                f"{t.name}.{name}", location_of(col, t),
                f"ALTER TABLE {qualified(t)} ALTER COLUMN {c} TYPE {ctx.users_id_type} USING {c}::{ctx.users_id_type}; "
                f"model: {name}: {py_type(ctx.users_id_type)} = Field(foreign_key=\"{ctx.users_table}.id\", "
                f"ondelete=\"CASCADE\", index=True)",
            )


@rule("owner-not-indexed", "warning")
def owner_not_indexed(ctx: LintContext) -> Iterator[Hit]:
    """Every query of user data filters by `user_id`, so some index starts with it.

    Only a valid, non-partial btree index whose first column is the owner column counts (a composite
    such as `(user_id, created_at DESC)` does). Without one, each "my rows" query and each
    user deletion (the cascade) reads the whole table.

    Bad:
        CREATE INDEX ix_tasks_created_at ON tasks (created_at);

    Good:
        CREATE INDEX ix_tasks_user_id_created_at ON tasks (user_id, created_at DESC);

    Fix: create an index led by the owner column, shaped by the table's list queries.
    """
    for t in ctx.tables:
        if t.column(ctx.owner_column) is None:
            continue
        if any(covers_columns(ix, [ctx.owner_column]) for ix in index_shapes(t)):
            continue
        c = ident(ctx.owner_column)
        yield Hit(
            f"No index on {t.name} starts with {ctx.owner_column}: every per-user query scans the table.",
            f"{t.name}.{ctx.owner_column}", location_of(t.column(ctx.owner_column), t),
            f"CREATE INDEX CONCURRENTLY {ident(f'ix_{t.name}_{ctx.owner_column}')} ON {qualified(t)} ({c}); "
            f"model: Field(..., index=True) on {ctx.owner_column}",
        )



"""The house conventions as lint rules over a :class:`~.schema.Schema`.

Each rule is one small function that takes a :class:`LintContext` and yields `Hit` tuples;
:func:`lint_schema` turns them into `Finding` objects carrying the rule's id and severity.
A rule's docstring is its documentation: the first paragraph is the one-line rationale, then any
notes, then `Bad:` and `Good:` blocks (indented SQL) and a `Fix:` paragraph.
:func:`render_rules_doc` turns them into `docs/rules.md`; regenerate it with::

    python -m schema_architect.tools.lint --write-docs

Better Auth tables (`managed_by="better-auth"`) and the users table itself are exempt from every
rule: we reference them, we never create or alter them.
"""

from __future__ import annotations

import argparse
import inspect
import re
import sys
import textwrap
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, NamedTuple

from pglast.keywords import RESERVED_KEYWORDS, TYPE_FUNC_NAME_KEYWORDS

from .findings import Finding, Severity
from .pgtypes import varchar_length
from .schema import Column, ForeignKey, Index, Location, Schema, Table

RuleId = Literal[
    "owner-column-missing",
    "table-ownership-unclear",
    "owner-column-nullable",
    "owner-fk-missing",
    "owner-fk-on-delete",
    "owner-type-mismatch",
    "owner-not-indexed",
    "missing-primary-key",
    "timestamps-missing",
    "timestamp-without-time-zone",
    "timestamp-default-missing",
    "updated-at-trigger",
    "varchar-without-length",
    "prose-length-not-enforced",
    "allowed-values-not-enforced",
    "reserved-word-name",
    "fk-on-delete-missing",
    "fk-not-indexed",
    "boolean-index",
    "redundant-index",
    "duplicate-index",
    "index-without-reason",
]

DOCS_PATH = Path(__file__).resolve().parents[1] / "docs" / "rules.md"

# Words PostgreSQL will not take as a bare table or column name (ColId excludes both categories).
RESERVED_NAMES = frozenset(RESERVED_KEYWORDS) | frozenset(TYPE_FUNC_NAME_KEYWORDS)

# Words in a table's description or notes that declare it shared on purpose (not user-owned).
_SHARED_WORDS = re.compile(r"\b(shared|global|lookup|system-wide|not user-owned)\b", re.IGNORECASE)

_SEVERITY_RANK = {"error": 0, "warning": 1, "info": 2}


class Hit(NamedTuple):
    """What a rule found; :func:`lint_schema` adds the rule id and severity."""

    message: str
    object: str | None
    location: Location | None
    fix: str


@dataclass
class LintContext:
    """Everything a rule needs, worked out once per :func:`lint_schema` call."""

    schema: Schema
    owner_column: str
    users_table: str
    users_id_type: str
    #: Our own tables: not Better Auth's, not the users table.
    tables: list[Table] = field(default_factory=list)
    #: Qualified name of each user-owned table -> how it is owned (for messages).
    owned: dict[str, str] = field(default_factory=dict)

    def is_users_ref(self, fk: ForeignKey) -> bool:
        return fk.ref_table == self.users_table

    def owner_fk(self, table: Table) -> ForeignKey | None:
        return next((fk for fk in table.foreign_keys if fk.columns == [self.owner_column]), None)


Rule = Callable[[LintContext], Iterable[Hit]]


def rule(rule_id: RuleId, severity: Severity) -> Callable[[Callable[[LintContext], Iterable[Hit]]], Rule]:
    """Attach a rule id and severity to a rule function."""

    def wrap(fn: Callable[[LintContext], Iterable[Hit]]) -> Rule:
        fn.id = rule_id  # type: ignore[attr-defined]
        fn.severity = severity  # type: ignore[attr-defined]
        return fn

    return wrap


# ---------------------------------------------------------------------------------------------------
# Small helpers


def _ident(name: str) -> str:
    """An SQL identifier, quoted only when it has to be."""
    if re.fullmatch(r"[a-z_][a-z0-9_]*", name) and name not in RESERVED_NAMES:
        return name
    return '"' + name.replace('"', '""') + '"'


def _tname(table: Table) -> str:
    bare = _ident(table.name)
    return bare if table.schema_name == "public" else f"{_ident(table.schema_name)}.{bare}"


def _cols(names: Iterable[str]) -> str:
    return ", ".join(_ident(n) for n in names)


def _loc(*candidates: object) -> Location | None:
    """The first location any of the candidates carries."""
    for c in candidates:
        if (loc := getattr(c, "location", None)) is not None:
            return loc
    return None


def _py_type(pg_type: str) -> str:
    """The SQLModel annotation for a key column type (used in model-side fix examples)."""
    if pg_type == "uuid":
        return "uuid.UUID"
    if pg_type in ("integer", "bigint", "smallint"):
        return "int"
    return "str"


def _type_family(pg_type: str) -> str:
    """Types an FK can join without surprises compare equal: all string types are one family."""
    if pg_type in ("text", "varchar", "citext") or varchar_length(pg_type) is not None:
        return "text"
    return pg_type


def _pk_columns(table: Table) -> list[str]:
    return table.primary_key or [c.name for c in table.columns if c.primary_key]


def _mentions(text: str | None, word: str) -> bool:
    return bool(text) and re.search(rf"\b{re.escape(word)}\b", text, re.IGNORECASE) is not None


class _Ix(NamedTuple):
    """An index as the planner sees it: real ones plus those implied by PK/UNIQUE in a spec."""

    name: str | None
    keys: tuple[tuple[str, bool, bool, bool | None], ...]  # (name, expression, desc, nulls_first)
    unique: bool
    method: str
    where: str | None
    include: tuple[str, ...]
    primary: bool
    constraint: str | None
    source: Index | None  # None: implied by a PK or UNIQUE constraint

    @property
    def names(self) -> list[str]:
        return [k[0] for k in self.keys]

    @property
    def has_expression(self) -> bool:
        return any(k[1] for k in self.keys)

    def label(self, table: Table) -> str:
        return self.name or f"the index on {_tname(table)} ({_cols(self.names)})"


def _norm_where(where: str | None) -> str | None:
    if where is None:
        return None
    text = " ".join(where.lower().split())
    while text.startswith("(") and text.endswith(")"):
        text = text[1:-1].strip()
    return text


def _indexes(table: Table) -> list[_Ix]:
    """Valid indexes of a table, plus the unique indexes its PK and UNIQUE constraints imply.

    A live database lists the PK/UNIQUE indexes itself; a spec or a model usually does not, so an
    implied index is added only when no real unique index has the same columns.
    """
    out = [
        _Ix(ix.name, tuple((c.name, c.is_expression, c.descending, c.nulls_first) for c in ix.columns),
            ix.unique or ix.primary, ix.method, _norm_where(ix.where), tuple(ix.include), ix.primary,
            ix.constraint, ix)
        for ix in table.indexes if ix.valid
    ]
    real_unique = {tuple(ix.names) for ix in out if ix.unique and ix.where is None}
    implied: list[tuple[list[str], bool, str | None]] = []
    if pk := _pk_columns(table):
        implied.append((pk, True, f"{table.name}_pkey"))
    implied += [(uc.columns, False, uc.name or f"{table.name}_{'_'.join(uc.columns)}_key")
                for uc in table.unique_constraints]
    implied += [([c.name], False, f"{table.name}_{c.name}_key")
                for c in table.columns if c.unique and not c.primary_key]
    for cols, primary, constraint in implied:
        if tuple(cols) not in real_unique:
            real_unique.add(tuple(cols))
            out.append(_Ix(constraint, tuple((c, False, False, None) for c in cols), True, "btree", None,
                           (), primary, constraint, None))
    return out


def _covers(ix: _Ix, columns: list[str]) -> bool:
    """A plain btree index whose leading columns are exactly `columns` (in any order)."""
    n = len(columns)
    return (ix.method == "btree" and ix.where is None and len(ix.keys) >= n
            and not any(k[1] for k in ix.keys[:n]) and set(ix.names[:n]) == set(columns))


#: Public names for the index helpers above, shared with explain_indexes (one definition of "covers").
IndexShape = _Ix
index_shapes = _indexes
covers_columns = _covers
norm_where = _norm_where

#: The rules that are about indexes (explain_indexes reports these as its static problems).
INDEX_RULE_IDS: tuple[str, ...] = ("fk-not-indexed", "owner-not-indexed", "boolean-index", "redundant-index",
                                   "duplicate-index")


def _add_fk_sql(table: Table, fk: ForeignKey, on_delete: str) -> str:
    name = fk.name or f"{table.name}_{'_'.join(fk.columns)}_fkey"
    ref = _ident(fk.ref_table)
    if fk.ref_schema and fk.ref_schema != "public":
        ref = f"{_ident(fk.ref_schema)}.{ref}"
    return (f"ALTER TABLE {_tname(table)} DROP CONSTRAINT {_ident(name)}, ADD CONSTRAINT {_ident(name)} "
            f"FOREIGN KEY ({_cols(fk.columns)}) REFERENCES {ref} ({_cols(fk.ref_columns)}) "
            f"ON DELETE {on_delete};")


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
        col = _ident(ctx.owner_column)
        yield Hit(
            f"{t.name} holds user data ({how}) but has no {ctx.owner_column} column.",
            t.name, _loc(t),
            f"ALTER TABLE {_tname(t)} ADD COLUMN {col} {ctx.users_id_type} "
            f"REFERENCES {_ident(ctx.users_table)} (id) ON DELETE CASCADE; -- backfill from the parent, "
            f"then: ALTER TABLE {_tname(t)} ALTER COLUMN {col} SET NOT NULL; "
            f"CREATE INDEX ON {_tname(t)} ({col});",
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
        if any(_SHARED_WORDS.search(text) for text in [t.description or "", *t.notes]):
            continue
        yield Hit(
            f"{t.name} has no {ctx.owner_column} and no foreign key path to {ctx.users_table}: every user "
            f"sees every row.",
            t.name, _loc(t),
            f"If rows belong to a user: ALTER TABLE {_tname(t)} ADD COLUMN {_ident(ctx.owner_column)} "
            f"{ctx.users_id_type} NOT NULL REFERENCES {_ident(ctx.users_table)} (id) ON DELETE CASCADE; "
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
        c = _ident(col.name)
        yield Hit(
            f"{t.name}.{col.name} is nullable: rows without an owner are visible to no one, or to everyone.",
            f"{t.name}.{col.name}", _loc(col, t),
            f"SELECT count(*) FROM {_tname(t)} WHERE {c} IS NULL; -- fix those rows, then: "
            f"ALTER TABLE {_tname(t)} ALTER COLUMN {c} SET NOT NULL; "
            f"model: {col.name}: {_py_type(col.type)} = Field(foreign_key=\"{ctx.users_table}.id\", "
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
        c = _ident(col.name)
        yield Hit(
            f"{t.name}.{col.name} {what}: rows can point at users that do not exist.",
            f"{t.name}.{col.name}", _loc(fk, col, t),
            f"ALTER TABLE {_tname(t)} ADD CONSTRAINT {_ident(f'{t.name}_{col.name}_fkey')} FOREIGN KEY ({c}) "
            f"REFERENCES {_ident(ctx.users_table)} (id) ON DELETE CASCADE; "
            f"model: {col.name}: {_py_type(col.type)} = Field(foreign_key=\"{ctx.users_table}.id\", "
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
            f"{t.name}.{ctx.owner_column}", _loc(fk, t),
            _add_fk_sql(t, fk, "CASCADE")
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
            if col is None or _type_family(col.type) == _type_family(ctx.users_id_type):
                continue
            c = _ident(name)
            yield Hit(
                f"{t.name}.{name} is {col.type} but {ctx.users_table}.id is {ctx.users_id_type}.",
                f"{t.name}.{name}", _loc(col, t),
                f"ALTER TABLE {_tname(t)} ALTER COLUMN {c} TYPE {ctx.users_id_type} USING {c}::{ctx.users_id_type}; "
                f"model: {name}: {_py_type(ctx.users_id_type)} = Field(foreign_key=\"{ctx.users_table}.id\", "
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
        if any(_covers(ix, [ctx.owner_column]) for ix in _indexes(t)):
            continue
        c = _ident(ctx.owner_column)
        yield Hit(
            f"No index on {t.name} starts with {ctx.owner_column}: every per-user query scans the table.",
            f"{t.name}.{ctx.owner_column}", _loc(t.column(ctx.owner_column), t),
            f"CREATE INDEX CONCURRENTLY {_ident(f'ix_{t.name}_{ctx.owner_column}')} ON {_tname(t)} ({c}); "
            f"model: Field(..., index=True) on {ctx.owner_column}",
        )


# ---------------------------------------------------------------------------------------------------
# Tables and columns


@rule("missing-primary-key", "error")
def missing_primary_key(ctx: LintContext) -> Iterator[Hit]:
    """Every table has a primary key: rows need an identity to be updated, deleted and referenced.

    Bad:
        CREATE TABLE task_tags (task_id integer NOT NULL, tag_id integer NOT NULL);

    Good:
        CREATE TABLE task_tags (task_id integer NOT NULL, tag_id integer NOT NULL,
                                PRIMARY KEY (task_id, tag_id));

    Fix: promote a NOT NULL unique key to the primary key, or add an identity column.
    """
    for t in ctx.tables:
        if _pk_columns(t) or any(ix.primary for ix in t.indexes):
            continue
        not_null = {c.name for c in t.columns if not c.nullable}
        natural = next((uc.columns for uc in t.unique_constraints if set(uc.columns) <= not_null), None)
        if natural:
            fix = f"ALTER TABLE {_tname(t)} ADD PRIMARY KEY ({_cols(natural)});"
        else:
            fix = (f"ALTER TABLE {_tname(t)} ADD COLUMN id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY; "
                   f"model: id: int | None = Field(default=None, primary_key=True)")
        yield Hit(f"{t.name} has no primary key.", t.name, _loc(t), fix)


_TIMESTAMPS = ("created_at", "updated_at")


@rule("timestamps-missing", "warning")
def timestamps_missing(ctx: LintContext) -> Iterator[Hit]:
    """Every table has `created_at` and `updated_at`: support questions and syncs need them later.

    Bad:
        CREATE TABLE tasks (id serial PRIMARY KEY, title varchar(200) NOT NULL);

    Good:
        CREATE TABLE tasks (
            id serial PRIMARY KEY,
            title varchar(200) NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now()
        );

    Fix: add the missing column with a database default.
    """
    for t in ctx.tables:
        for name in _TIMESTAMPS:
            if t.column(name) is None:
                yield Hit(
                    f"{t.name} has no {name} column.", f"{t.name}.{name}", _loc(t),
                    f"ALTER TABLE {_tname(t)} ADD COLUMN {name} timestamptz NOT NULL DEFAULT now(); "
                    f"model: {name}: datetime = Field(default_factory=lambda: datetime.now(timezone.utc), "
                    f"sa_column_kwargs={{\"server_default\": sa.func.now()}})",
                )


@rule("timestamp-without-time-zone", "warning")
def timestamp_without_time_zone(ctx: LintContext) -> Iterator[Hit]:
    """Points in time are `timestamptz`: a bare `timestamp` forgets which zone it was written in.

    Applies to every `timestamp` column, not only `created_at`/`updated_at`. SQLModel maps
    `datetime` to timestamptz since 0.0.45; `NaiveDatetime` or older versions give `timestamp`.

    Bad:
        created_at timestamp NOT NULL DEFAULT now()

    Good:
        created_at timestamptz NOT NULL DEFAULT now()

    Fix: `ALTER COLUMN ... TYPE timestamptz USING ... AT TIME ZONE 'UTC'` (rewrites the table).
    """
    for t in ctx.tables:
        for col in t.columns:
            if col.type == "timestamp":
                c = _ident(col.name)
                yield Hit(
                    f"{t.name}.{col.name} is timestamp without time zone.", f"{t.name}.{col.name}",
                    _loc(col, t),
                    f"ALTER TABLE {_tname(t)} ALTER COLUMN {c} TYPE timestamptz USING {c} AT TIME ZONE 'UTC'; "
                    f"model: {col.name}: datetime (SQLModel >= 0.0.45 maps it to timestamptz)",
                )


@rule("timestamp-default-missing", "warning")
def timestamp_default_missing(ctx: LintContext) -> Iterator[Hit]:
    """`created_at`/`updated_at` have a database default; a Python `default_factory` never reaches SQL.

    Rows written by raw SQL, migrations, seeds or another service otherwise get NULL, or fail.

    Bad:
        created_at timestamptz NOT NULL

    Good:
        created_at timestamptz NOT NULL DEFAULT now()

    Fix: `SET DEFAULT now()`; in the model `sa_column_kwargs={"server_default": sa.func.now()}`.
    """
    for t in ctx.tables:
        for name in _TIMESTAMPS:
            col = t.column(name)
            if col is not None and not col.default:
                yield Hit(
                    f"{t.name}.{name} has no database default.", f"{t.name}.{name}", _loc(col, t),
                    f"ALTER TABLE {_tname(t)} ALTER COLUMN {name} SET DEFAULT now(); "
                    f"model: Field(..., sa_column_kwargs={{\"server_default\": sa.func.now()}})",
                )


_TRIGGER_FUNCTION = (
    "CREATE OR REPLACE FUNCTION set_updated_at() RETURNS trigger LANGUAGE plpgsql AS "
    "$$ BEGIN NEW.updated_at := now(); RETURN NEW; END $$;"
)


@rule("updated-at-trigger", "info")
def updated_at_trigger(ctx: LintContext) -> Iterator[Hit]:
    """`onupdate=func.now()` is added by the ORM to its own UPDATEs only; a trigger keeps `updated_at` true for all.

    One finding for the whole schema, listing the tables with `updated_at`. The schema model does not
    record triggers, so the rule stays quiet for a table whose description, notes or `updated_at`
    description mention a trigger; if you already have one, ignore this.

    Bad:
        updated_at timestamptz NOT NULL DEFAULT now()  -- kept current only by SQLAlchemy onupdate

    Good:
        CREATE TRIGGER tasks_set_updated_at BEFORE UPDATE ON tasks
            FOR EACH ROW EXECUTE FUNCTION set_updated_at();

    Fix: create `set_updated_at()` once and one BEFORE UPDATE trigger per table.
    """
    names: list[Table] = []
    for t in sorted(ctx.tables, key=lambda t: t.qualified_name):
        col = t.column("updated_at")
        if col is None:
            continue
        if any(_mentions(text, "trigger") for text in [t.description, col.description, *t.notes]):
            continue
        names.append(t)
    if not names:
        return
    triggers = " ".join(
        f"CREATE TRIGGER {_ident(t.name + '_set_updated_at')} BEFORE UPDATE ON {_tname(t)} "
        f"FOR EACH ROW EXECUTE FUNCTION set_updated_at();"
        for t in names
    )
    yield Hit(
        f"updated_at on {', '.join(t.name for t in names)} is kept current only by the ORM's onupdate, "
        f"which raw SQL and bulk updates bypass.",
        None, None, f"{_TRIGGER_FUNCTION} {triggers}",
    )


@rule("varchar-without-length", "info")
def varchar_without_length(ctx: LintContext) -> Iterator[Hit]:
    """A `varchar` without a length is `text` by another name; usually the spec meant a limit.

    SQLModel's bare `str` gives this type. When the column's description states a maximum,
    `prose-length-not-enforced` reports it instead (with the number); a column with a fixed value set
    (`allowed_values`) is bounded by its CHECK or enum and is left alone.

    Bad:
        title varchar NOT NULL

    Good:
        title varchar(200) NOT NULL   -- or: title text NOT NULL, on purpose

    Fix: give the length (`Field(max_length=200)`), or declare `text` if there is none.
    """
    for t in ctx.tables:
        for col in t.columns:
            if col.type == "varchar" and _prose_max(col) is None and not col.allowed_values:
                yield Hit(
                    f"{t.name}.{col.name} is varchar without a length.", f"{t.name}.{col.name}", _loc(col, t),
                    f"ALTER TABLE {_tname(t)} ALTER COLUMN {_ident(col.name)} TYPE varchar(N); "
                    f"model: {col.name}: str = Field(max_length=N) (N from the spec), or make it text on purpose",
                )


_PROSE_MAX = [
    # "max 200", "maximum 200 characters", "max_length=200"; not "max 10 tags"
    re.compile(r"\bmax(?:imum)?(?:[ _]length)?\s*(?:of|is|:|=)?\s*(\d+)(?!\d)"
               r"(?:\s*(?:characters|chars?)\b|(?!\s*[a-z]))", re.IGNORECASE),
    re.compile(r"\b(?:up to|at most|<=|≤)\s*(\d+)\s*(?:characters|chars?)\b", re.IGNORECASE),
    re.compile(r"\b\d+\s*(?:-|–|to)\s*(\d+)\s*(?:characters|chars?)\b", re.IGNORECASE),
    re.compile(r"\bbetween\s+\d+\s+and\s+(\d+)\s*(?:characters|chars?)\b", re.IGNORECASE),
]


def _prose_max(col: Column) -> int | None:
    """The maximum length a column's description states in words ("max 200 characters", "1-200 chars")."""
    for pattern in _PROSE_MAX:
        if col.description and (m := pattern.search(col.description)):
            return int(m.group(1))
    return None


@rule("prose-length-not-enforced", "warning")
def prose_length_not_enforced(ctx: LintContext) -> Iterator[Hit]:
    """A length the spec states in words ("max 200 characters") is enforced by the type or a CHECK.

    Applies to `text` and length-less `varchar` columns; a CHECK using `length`/`char_length`
    on the column counts as enforcement.

    Bad:
        title text NOT NULL   -- spec: "Task title (max 200 characters)"

    Good:
        title varchar(200) NOT NULL

    Fix: `ALTER COLUMN ... TYPE varchar(N)` and `Field(max_length=N)`.
    """
    for t in ctx.tables:
        for col in t.columns:
            if col.type not in ("text", "varchar") or (n := _prose_max(col)) is None:
                continue
            if any(re.search(r"\b(char_)?length\s*\(", ck.expression, re.IGNORECASE)
                   and (col.name in ck.columns or _mentions(ck.expression, col.name)) for ck in t.checks):
                continue
            c = _ident(col.name)
            yield Hit(
                f"{t.name}.{col.name} is {col.type} but its description says at most {n} characters.",
                f"{t.name}.{col.name}", _loc(col, t),
                f"ALTER TABLE {_tname(t)} ALTER COLUMN {c} TYPE varchar({n}); "
                f"model: {col.name}: str = Field(max_length={n}); spec: | {col.name} | VARCHAR({n}) |",
            )


_ENFORCEABLE = re.compile(r"(text|varchar(\(\d+\))?|char\(\d+\)|citext|integer|bigint|smallint)")


@rule("allowed-values-not-enforced", "warning")
def allowed_values_not_enforced(ctx: LintContext) -> Iterator[Hit]:
    """A fixed value set is enforced by the database (CHECK ... IN or an enum), not by hope.

    The rule reads `Column.allowed_values` (from the spec's words, a CHECK or an enum). It counts the
    set as enforced when the column's type is one of the schema's enums, or a CHECK names the column.
    It only judges plain text and integer columns: for any other type (an enum or domain the source did
    not describe) it cannot tell, and says nothing.

    Bad:
        priority varchar(10) NOT NULL DEFAULT 'medium'   -- spec: low, medium or high

    Good:
        priority varchar(10) NOT NULL DEFAULT 'medium'
            CHECK (priority IN ('low', 'medium', 'high'))

    Fix: add the CHECK constraint (or use an enum type).
    """
    enums = {e.name for e in ctx.schema.enums} | {f"{e.schema_name}.{e.name}" for e in ctx.schema.enums}
    for t in ctx.tables:
        for col in t.columns:
            if not col.allowed_values or col.type in enums or not _ENFORCEABLE.fullmatch(col.type):
                continue
            if any(col.name in ck.columns or _mentions(ck.expression, col.name) for ck in t.checks):
                continue
            c = _ident(col.name)
            if col.type in ("integer", "bigint", "smallint"):
                values = ", ".join(col.allowed_values)
            else:
                values = ", ".join("'" + v.replace("'", "''") + "'" for v in col.allowed_values)
            yield Hit(
                f"{t.name}.{col.name} takes one of {', '.join(col.allowed_values)} but nothing in the "
                f"database enforces it.",
                f"{t.name}.{col.name}", _loc(col, t),
                f"ALTER TABLE {_tname(t)} ADD CONSTRAINT {_ident(f'{t.name}_{col.name}_check')} "
                f"CHECK ({c} IN ({values}));",
            )


# Friendlier names for the reserved words people most often reach for.
_RENAMES = {"order": "sort_order", "user": "app_user", "group": "group_name", "desc": "description",
            "end": "ends_at", "limit": "max_count", "default": "is_default", "check": "check_value",
            "column": "column_name", "table": "table_name", "from": "from_value", "to": "to_value"}


@rule("reserved-word-name", "warning")
def reserved_word_name(ctx: LintContext) -> Iterator[Hit]:
    """Table and column names avoid PostgreSQL reserved words, which work only when quoted everywhere.

    The list is PostgreSQL's reserved keywords, including those allowed only as function or type
    names (`pglast.keywords`): `order`, `user`, `group`, `left`...

    Bad:
        CREATE TABLE tasks (id serial PRIMARY KEY, "order" integer NOT NULL);

    Good:
        CREATE TABLE tasks (id serial PRIMARY KEY, sort_order integer NOT NULL);

    Fix: rename it (`ALTER TABLE ... RENAME`); until then every raw query must quote it.
    """
    for t in ctx.tables:
        if t.name in RESERVED_NAMES:
            new = _RENAMES.get(t.name, f"{t.name}s")
            yield Hit(f"The table name {t.name} is a reserved word.", t.name, _loc(t),
                      f"ALTER TABLE {_tname(t)} RENAME TO {new};")
        for col in t.columns:
            if col.name in RESERVED_NAMES:
                new = _RENAMES.get(col.name, f"{col.name}_value")
                yield Hit(f"The column name {t.name}.{col.name} is a reserved word.", f"{t.name}.{col.name}",
                          _loc(col, t), f"ALTER TABLE {_tname(t)} RENAME COLUMN {_ident(col.name)} TO {new};")


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
                f"{t.name}.{','.join(fk.columns)}", _loc(fk, t),
                _add_fk_sql(t, fk, action) + f" model: Field(foreign_key=\"{fk.ref_table}."
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
        indexes = _indexes(t)
        for fk in t.foreign_keys:
            if fk.columns == [ctx.owner_column] or any(_covers(ix, fk.columns) for ix in indexes):
                continue
            name = _ident(f"ix_{t.name}_{'_'.join(fk.columns)}")
            yield Hit(
                f"No index on {t.name} starts with the foreign key columns ({', '.join(fk.columns)}).",
                f"{t.name}.{','.join(fk.columns)}", _loc(fk, t),
                f"CREATE INDEX CONCURRENTLY {name} ON {_tname(t)} ({_cols(fk.columns)});",
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
        for ix in _indexes(t):
            if ix.source is None or ix.unique or len(ix.keys) != 1 or ix.has_expression:
                continue
            col = t.column(ix.names[0])
            if col is None or col.type != "boolean":
                continue
            drop = f"DROP INDEX CONCURRENTLY {_ident(ix.name)};" if ix.name else "remove the index;"
            if t.column(ctx.owner_column) is not None:
                better = (f"CREATE INDEX CONCURRENTLY {_ident(f'ix_{t.name}_{ctx.owner_column}_{col.name}')} "
                          f"ON {_tname(t)} ({_cols([ctx.owner_column, col.name])});")
            else:
                better = (f"if rows with {col.name} = true are rare: "
                          f"CREATE INDEX ... ON {_tname(t)} (...) WHERE {_ident(col.name)};")
            yield Hit(
                f"{ix.label(t)} indexes the boolean {t.name}.{col.name} alone.", ix.name or t.name,
                _loc(ix.source, t), f"{drop} {better}",
            )


def _same_prefix(short: _Ix, long: _Ix) -> bool:
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
        indexes = _indexes(t)
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
                short.name or t.name, _loc(short.source, t),
                f"DROP INDEX CONCURRENTLY {_ident(short.name)};" if short.name
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
        groups: dict[tuple[object, ...], list[_Ix]] = {}
        for ix in _indexes(t):
            groups.setdefault((ix.keys, ix.method, ix.where, tuple(sorted(ix.include))), []).append(ix)
        for same in groups.values():
            if len(same) < 2:
                continue
            same.sort(key=lambda ix: (not ix.primary, not ix.unique, ix.constraint is None, ix.name or ""))
            kept = same[0]
            for extra in same[1:]:
                if extra.constraint:
                    fix = f"ALTER TABLE {_tname(t)} DROP CONSTRAINT {_ident(extra.constraint)};"
                elif extra.name:
                    fix = f"DROP INDEX CONCURRENTLY {_ident(extra.name)};"
                else:
                    fix = "remove the index from the spec/model"
                yield Hit(
                    f"{extra.label(t)} duplicates {kept.label(t)} ({', '.join(kept.names)}).",
                    extra.name or t.name, _loc(extra.source, t), fix,
                )


def _from_spec(schema: Schema, ix: Index) -> bool:
    if ix.location is not None:
        return ix.location.file.endswith(".md")
    return bool(schema.source) and schema.source.endswith(".md")


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
                f"{label} has no stated reason.", ix.name or t.name, _loc(ix, t),
                f"In the spec, after the index: `{ix.name or 'ix_' + t.name} ({', '.join(ix.column_names)}): "
                f"<the query it serves, e.g. list a user's tasks by created_at>`",
            )


RULES: tuple[Rule, ...] = (
    owner_column_missing,
    table_ownership_unclear,
    owner_column_nullable,
    owner_fk_missing,
    owner_fk_on_delete,
    owner_type_mismatch,
    owner_not_indexed,
    missing_primary_key,
    timestamps_missing,
    timestamp_without_time_zone,
    timestamp_default_missing,
    updated_at_trigger,
    varchar_without_length,
    prose_length_not_enforced,
    allowed_values_not_enforced,
    reserved_word_name,
    fk_on_delete_missing,
    fk_not_indexed,
    boolean_index,
    redundant_index,
    duplicate_index,
    index_without_reason,
)


# ---------------------------------------------------------------------------------------------------
# Running the rules


def find_users_table(schema: Schema, owner_column: str, users_table: str | None) -> tuple[str, str]:
    """The users table's name and id type: given, else a users/user table, else the owner FKs' target."""
    targets = [fk for t in schema.tables for fk in t.foreign_keys if fk.columns == [owner_column]]
    if users_table is None:
        named = [t.name for t in schema.tables if t.name in ("users", "user")]
        aimed = sorted({fk.ref_table for fk in targets})
        # Prefer a users/user table that the owner FKs point at, then any users/user table.
        users_table = next((n for n in named if n in aimed), None) or (named[0] if named else None)
        users_table = users_table or (aimed[0] if aimed else "users")
    ref_col = next((fk.ref_columns[0] for fk in targets if fk.ref_table == users_table), "id")
    table = schema.table(users_table)
    col = table.column(ref_col) if table else None
    return users_table, col.type if col else "text"


def _owned(tables: list[Table], ctx: LintContext) -> dict[str, str]:
    """Which tables are user-owned, and how: the owner column, a direct FK to users, or an FK chain."""
    owned: dict[str, str] = {}
    for t in tables:
        if t.column(ctx.owner_column) is not None:
            owned[t.qualified_name] = f"it has {ctx.owner_column}"
        elif fk := next((fk for fk in t.foreign_keys if ctx.is_users_ref(fk)), None):
            owned[t.qualified_name] = f"{', '.join(fk.columns)} references {ctx.users_table}"
    by_name = {t.name: t for t in tables}
    changed = True
    while changed:  # follow FK chains to a fixed point
        changed = False
        for t in tables:
            if t.qualified_name in owned:
                continue
            for fk in t.foreign_keys:
                parent = by_name.get(fk.ref_table)
                if parent is not None and parent.qualified_name in owned:
                    owned[t.qualified_name] = f"through {fk.ref_table}"
                    changed = True
                    break
    return owned


def lint_schema(schema: Schema, *, owner_column: str = "user_id", users_table: str | None = None) -> list[Finding]:
    """Check a schema against the house conventions; findings sorted by severity, object, rule."""
    users_name, users_id_type = find_users_table(schema, owner_column, users_table)
    ctx = LintContext(schema, owner_column, users_name, users_id_type)
    ctx.tables = [t for t in schema.tables if t.managed_by != "better-auth" and t.name != users_name]
    ctx.owned = _owned(ctx.tables, ctx)
    order = {r.id: i for i, r in enumerate(RULES)}  # type: ignore[attr-defined]
    findings = [
        Finding(rule=r.id, severity=r.severity, message=h.message, object=h.object,  # type: ignore[attr-defined]
                location=h.location, fix=h.fix)
        for r in RULES for h in r(ctx)
    ]
    return sorted(findings, key=lambda f: (_SEVERITY_RANK[f.severity], f.object or "", order[f.rule], f.message))


# ---------------------------------------------------------------------------------------------------
# docs/rules.md


def _doc_sections(fn: Rule) -> tuple[str, list[str], str, str, str]:
    """Split a rule docstring into rationale, notes, bad, good and fix."""
    doc = inspect.cleandoc(fn.__doc__ or "")
    head, _, rest = doc.partition("\nBad:\n")
    bad, _, rest = rest.partition("\nGood:\n")
    good, _, fix = rest.partition("\nFix:")
    paragraphs = [p.strip() for p in head.split("\n\n") if p.strip()]
    return (" ".join(paragraphs[0].split()), [" ".join(p.split()) for p in paragraphs[1:]],
            textwrap.dedent(bad).strip("\n"), textwrap.dedent(good).strip("\n"), " ".join(fix.split()))


def render_rules_doc() -> str:
    """The text of docs/rules.md, generated from the rule docstrings."""
    out = [
        "# Lint rules",
        "",
        "<!-- Generated from the rule docstrings in tools/lint.py; do not edit by hand.",
        "     Regenerate: python -m schema_architect.tools.lint --write-docs -->",
        "",
        "`lint_schema` checks a schema (read from a spec, the models or the live database) against the",
        "house conventions. Better Auth tables and the users table are exempt: we reference them only.",
        "",
        "| rule | severity |",
        "|---|---|",
        *[f"| [`{r.id}`](#{r.id}) | {r.severity} |" for r in RULES],  # type: ignore[attr-defined]
    ]
    for r in RULES:
        rationale, notes, bad, good, fix = _doc_sections(r)
        rid, severity = r.id, r.severity  # type: ignore[attr-defined]
        out += ["", f"## {rid} {{#{rid}}}", "", f"**Severity:** {severity}", "", rationale]
        for note in notes:
            out += ["", note]
        out += ["", "Bad:", "", "```sql", bad, "```", "", "Good:", "", "```sql", good, "```", "",
                f"**Fix:** {fix}"]
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m schema_architect.tools.lint")
    parser.add_argument("--write-docs", action="store_true", help=f"write {DOCS_PATH}")
    parser.add_argument("--check-docs", action="store_true", help="exit 1 if docs/rules.md is stale")
    args = parser.parse_args(argv)
    text = render_rules_doc()
    if args.write_docs:
        DOCS_PATH.write_text(text, encoding="utf-8")
        return 0
    if args.check_docs:
        current = DOCS_PATH.read_text(encoding="utf-8") if DOCS_PATH.exists() else ""
        return 0 if current == text else 1
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

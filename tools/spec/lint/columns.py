"""Rules on tables and columns: primary keys, timestamps, lengths, fixed value sets, reserved words."""

from __future__ import annotations

import re
from collections.abc import Iterator

from ...database.ddl import pk_columns, qualified
from ...database.quoting import ident, ident_list, literal_list
from ...schema.model import Column, Table, location_of
from .core import RESERVED_NAMES, Hit, LintContext, mentions, rule

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
        if pk_columns(t) or any(ix.primary for ix in t.indexes):
            continue
        not_null = {c.name for c in t.columns if not c.nullable}
        natural = next((uc.columns for uc in t.unique_constraints if set(uc.columns) <= not_null), None)
        if natural:
            fix = f"ALTER TABLE {qualified(t)} ADD PRIMARY KEY ({ident_list(natural)});"
        else:
            fix = (f"ALTER TABLE {qualified(t)} ADD COLUMN id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY; "
                   f"model: id: int | None = Field(default=None, primary_key=True)")
        yield Hit(f"{t.name} has no primary key.", t.name, location_of(t), fix)


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
                    f"{t.name} has no {name} column.", f"{t.name}.{name}", location_of(t),
                    f"ALTER TABLE {qualified(t)} ADD COLUMN {name} timestamptz NOT NULL DEFAULT now(); "
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
                c = ident(col.name)
                yield Hit(
                    f"{t.name}.{col.name} is timestamp without time zone.", f"{t.name}.{col.name}",
                    location_of(col, t),
                    f"ALTER TABLE {qualified(t)} ALTER COLUMN {c} TYPE timestamptz USING {c} AT TIME ZONE 'UTC'; "
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
                    f"{t.name}.{name} has no database default.", f"{t.name}.{name}", location_of(col, t),
                    f"ALTER TABLE {qualified(t)} ALTER COLUMN {name} SET DEFAULT now(); "
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
        if (col.on_update or "").startswith("trigger") or any(
                mentions(text, "trigger") for text in [t.description, col.description, *t.notes]):
            continue  # the spec's own BEFORE UPDATE trigger (its SQL), or words that say it has one
        names.append(t)
    if not names:
        return
    if len(names) <= _LISTED_TABLES:
        listed = ", ".join(t.name for t in names)
        triggers = " ".join(
            f"CREATE TRIGGER {ident(t.name + '_set_updated_at')} BEFORE UPDATE ON {qualified(t)} "
            f"FOR EACH ROW EXECUTE FUNCTION set_updated_at();"
            for t in names
        )
    else:  # one statement per table would make the finding as long as the schema: loop over the names
        listed = f"{', '.join(t.name for t in names[:_LISTED_TABLES])} and {len(names) - _LISTED_TABLES} more"
        array = literal_list(qualified(t) for t in names)
        # The trigger is named from the table's own name (relname), not its SQL spelling, which may be quoted.
        triggers = ("DO $do$ DECLARE t text; BEGIN FOREACH t IN ARRAY ARRAY[" + array + "] LOOP "
                    "EXECUTE format('CREATE TRIGGER %I BEFORE UPDATE ON %s FOR EACH ROW EXECUTE FUNCTION "
                    "set_updated_at()', (SELECT relname FROM pg_class WHERE oid = t::regclass) || "
                    "'_set_updated_at', t); END LOOP; END $do$;")
    yield Hit(
        f"updated_at on {listed} is kept current only by the ORM's onupdate, which raw SQL and bulk "
        f"updates bypass.",
        None, None, f"{_TRIGGER_FUNCTION} {triggers}",
    )


#: Tables named one by one in the updated-at-trigger finding; beyond this it counts them.
_LISTED_TABLES = 8


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
                    f"{t.name}.{col.name} is varchar without a length.", f"{t.name}.{col.name}", location_of(col, t),
                    f"ALTER TABLE {qualified(t)} ALTER COLUMN {ident(col.name)} TYPE varchar(N); "
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
                   and (col.name in ck.columns or mentions(ck.expression, col.name)) for ck in t.checks):
                continue
            c = ident(col.name)
            yield Hit(
                f"{t.name}.{col.name} is {col.type} but its description says at most {n} characters.",
                f"{t.name}.{col.name}", location_of(col, t),
                f"ALTER TABLE {qualified(t)} ALTER COLUMN {c} TYPE varchar({n}); "
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
            if any(col.name in ck.columns or mentions(ck.expression, col.name) for ck in t.checks):
                continue
            c = ident(col.name)
            if col.type in ("integer", "bigint", "smallint"):
                values = ", ".join(col.allowed_values)
            else:
                values = literal_list(col.allowed_values)
            yield Hit(
                f"{t.name}.{col.name} takes one of {', '.join(col.allowed_values)} but nothing in the "
                f"database enforces it.",
                f"{t.name}.{col.name}", location_of(col, t),
                f"ALTER TABLE {qualified(t)} ADD CONSTRAINT {ident(f'{t.name}_{col.name}_check')} "
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
            yield Hit(f"The table name {t.name} is a reserved word.", t.name, location_of(t),
                      f"ALTER TABLE {qualified(t)} RENAME TO {new};")
        for col in t.columns:
            if col.name in RESERVED_NAMES:
                new = _RENAMES.get(col.name, f"{col.name}_value")
                yield Hit(f"The column name {t.name}.{col.name} is a reserved word.", f"{t.name}.{col.name}",
                          location_of(col, t), f"ALTER TABLE {qualified(t)} RENAME COLUMN {ident(col.name)} TO {new};")



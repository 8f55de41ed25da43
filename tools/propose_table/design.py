"""propose_table: design a table by the house conventions and say which rule added what.

Pure design here (no I/O): :func:`design_table` turns a request into a :class:`Table`, the spec section,
SQLModel code, DDL, lint findings and a migration note. Proving it (the dry run on a database and the
code/DDL diff) lives in :mod:`tools.propose_table.proof`.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import cast

from pglast.keywords import RESERVED_KEYWORDS, TYPE_FUNC_NAME_KEYWORDS
from pydantic import BaseModel, Field

from ..database.ddl import UPDATED_AT_FUNCTION, index_name, literal, table_ddl, updated_at_trigger_sql
from ..database.expressions import ExpressionError, sql_expression
from ..database.types import UnknownType, normalize_type
from ..models.codegen import GeneratedCodeError, sqlmodel_code
from ..schema.errors import AgentError, unknown_tables
from ..schema.findings import Finding
from ..schema.model import (
    BETTER_AUTH_TABLES,
    Check,
    Column,
    FkAction,
    ForeignKey,
    Identity,
    Index,
    IndexColumn,
    QueryPattern,
    Schema,
    Table,
)
from ..schema.names import singular
from ..spec.lint import find_users_table, lint_schema
from ..spec.query_patterns import PatternError, index_columns_for_pattern, looks_like_sql, sql_summary
from ..spec.writer import render_table_section

_IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]{0,62}")
_RESERVED = frozenset(RESERVED_KEYWORDS) | frozenset(TYPE_FUNC_NAME_KEYWORDS)


class ProposalError(AgentError, ValueError):
    """The request cannot become a valid table; the message says what to change."""

    rule = "proposal-invalid"


class ProposedColumn(BaseModel):
    name: str = Field(description="snake_case")
    type: str = Field(description="Any spelling: string, int, uuid, bool, datetime, varchar(200)...")
    required: bool = Field(False, description="NOT NULL")
    description: str | None = None
    max_length: int | None = Field(None, ge=1, description="varchar(n)")
    unique: bool = False
    allowed_values: list[str] | None = Field(None, description="A value set: a CHECK")
    default: str | None = Field(None, description="One SQL expression, e.g. now() or 'todo' (parsed and "
                                "re-printed; no ';', no subquery)")
    references: str | None = Field(None, description="FK target: table or table.column")
    on_delete: FkAction | None = Field(None, description="Default CASCADE")


class AppliedRule(BaseModel):
    rule: str = Field(description="The convention applied")
    added: str = Field(description="What it added or changed")
    why: str


class TableDesign(BaseModel):
    table: Table = Field(description="The designed table in the common schema model")
    rules_applied: list[AppliedRule] = Field(description="Which convention added or changed what, and why")
    spec_section: str = Field(description="The table's section in the canonical spec format")
    sqlmodel_code: str = Field(description="Table model plus Create / Read / Update schemas")
    ddl: list[str] = Field(description="CREATE TABLE and CREATE INDEX statements")
    updated_at_trigger: list[str] = Field(
        description="Optional: keeps updated_at current for every UPDATE, not only ORM ones")
    lint: list[Finding] = Field(default_factory=list, description="Convention findings on the proposed table")
    migration_note: str = Field(description="How to ship it: Alembic steps, locks, rollback")
    referenced_tables: list[str] = Field(description="Existing tables the foreign keys point at")


def design_table(
    *, name: str, purpose: str, columns: list[ProposedColumn], user_owned: bool = True,
    references: list[str] | None = None, query_patterns: list[str] | None = None,
    existing: Schema, owner_column: str = "user_id", replace: bool = False,
) -> TableDesign:
    """Apply the conventions to a request; ``existing`` is what the spec (and database) already hold."""
    name = _check_name(name, "table")
    _check_duplicates(columns)
    if existing.table(name) is not None and not replace:
        raise ProposalError(
            f"A table named {name} already exists. Pick another name, or pass replace=true to replace "
            "its section (a breaking change that needs confirmation)."
        )
    rules: list[AppliedRule] = []
    users_table, users_id_type = find_users_table(existing, owner_column, None)
    table = Table(name=name, description=purpose.strip() or None)
    given = {c.name.lower(): c for c in columns}
    link_targets = [_target(existing, ref, name) for ref in references or []]
    is_link_table = len(link_targets) == 2 and not [c for c in columns if not c.references]

    if is_link_table:
        rules.append(AppliedRule(rule="link-table-composite-key",
                                 added=f"PRIMARY KEY ({', '.join(_fk_column_name(t) for t, _ in link_targets)})",
                                 why="A link table's pair is its identity; a surrogate id would allow duplicates."))
    elif "id" not in given:
        id_column, why = _id_column(existing)
        table.columns.append(id_column)
        table.primary_key = ["id"]
        rules.append(AppliedRule(rule="primary-key", added=f"id {id_column.identity or id_column.type} PRIMARY KEY",
                                 why=why))

    if user_owned and owner_column not in given:
        table.columns.append(Column(name=owner_column, type=users_id_type, nullable=False,
                                    description=f"Owner: the {users_table} row this belongs to"))
        table.foreign_keys.append(ForeignKey(columns=[owner_column], ref_table=users_table,
                                             ref_columns=["id"], on_delete="CASCADE"))
        rules.append(AppliedRule(
            rule="owner-column", added=f"{owner_column} {users_id_type} NOT NULL → {users_table}.id ON DELETE CASCADE",
            why=f"Every user-owned row names its owner; the type follows {users_table}.id; deleting a user "
                "deletes their rows."))

    for target, ref_column in link_targets:
        column_name = _fk_column_name(target)
        if column_name in given:
            continue
        ref = existing.table(target)
        ref_type = _referenced_type(ref, ref_column) if ref else "integer"
        table.columns.append(Column(name=column_name, type=ref_type, nullable=False,
                                    description=f"The {singular(target)} this row belongs to"))
        table.foreign_keys.append(ForeignKey(columns=[column_name], ref_table=target,
                                             ref_columns=[ref_column], on_delete="CASCADE"))
        rules.append(AppliedRule(rule="reference", added=f"{column_name} {ref_type} NOT NULL → {target}.{ref_column} "
                                 "ON DELETE CASCADE", why=f"You asked for a reference to {target}; rows go with it."))
    if is_link_table:
        table.primary_key = [_fk_column_name(t) for t, _ in link_targets]

    for proposed in columns:
        table.columns.append(_column(proposed, table, existing, rules, owner_column, users_table))

    for column in table.columns:
        column.primary_key = column.name in table.primary_key
        if column.primary_key:
            column.nullable = False

    _add_timestamps(table, rules)
    _add_indexes(table, query_patterns or [], owner_column if user_owned else None, rules)
    table.query_patterns = [QueryPattern(description=p) if not looks_like_sql(p)
                            else QueryPattern(description=sql_summary(p, table, owner_column), sql=p)
                            for p in query_patterns or []]

    whole = existing.model_copy(update={"tables": [t for t in existing.tables if t.name != name] + [table]})
    findings = [f for f in lint_schema(whole, owner_column=owner_column)
                if (f.object or "").split(".")[0] == name and f.rule != "updated-at-trigger"]
    referenced = sorted({fk.ref_table for fk in table.foreign_keys})
    try:
        ddl = table_ddl(table)
    except ExpressionError as exc:
        raise ProposalError(str(exc)) from None
    try:
        code = sqlmodel_code(table, owner_column=owner_column)
    except GeneratedCodeError:
        raise  # a bug in the generator, not the caller's to fix
    except ValueError as exc:
        raise ProposalError(f"{exc}. Use a type SQLModel maps directly (text, varchar(n), integer, bigint, "
                            "boolean, uuid, timestamptz, date, numeric(p,s), jsonb).") from None
    return TableDesign(
        table=table, rules_applied=rules, spec_section=render_table_section(table),
        sqlmodel_code=code, ddl=ddl,
        updated_at_trigger=[UPDATED_AT_FUNCTION, updated_at_trigger_sql(table)] if table.column("updated_at") else [],
        lint=findings, migration_note=_migration_note(table, replace), referenced_tables=referenced,
    )


def _check_name(name: str, what: str) -> str:
    clean = name.strip()
    if not _IDENTIFIER.fullmatch(clean):
        raise ProposalError(
            f"The {what} name {name!r} is not a plain PostgreSQL identifier. Use lower-case snake_case: "
            "letters, digits and underscores, starting with a letter, at most 63 characters."
        )
    if clean in _RESERVED:
        raise ProposalError(
            f"The {what} name {clean!r} is a reserved word in PostgreSQL; every query would have to quote "
            f"it. Pick another name (e.g. {clean}_name or app_{clean})."
        )
    return clean


def _check_duplicates(columns: list[ProposedColumn]) -> None:
    counts = Counter(c.name.strip().lower() for c in columns)
    doubled = sorted(n for n, k in counts.items() if k > 1)
    if doubled:
        raise ProposalError(f"Duplicate column(s): {', '.join(doubled)}. Give each column once.")


def _target(existing: Schema, reference: str, own_name: str) -> tuple[str, str]:
    """'tasks' or 'tasks.id' -> (table, column), refusing tables that do not exist."""
    table_name, _, column = reference.strip().lower().partition(".")
    if table_name == own_name:
        return table_name, column or "id"
    table = existing.table(table_name)
    if table is None and table_name not in BETTER_AUTH_TABLES:
        raise unknown_tables([table_name], [t.name for t in existing.tables], "the spec or the database",
                             "references", reference, f"Propose {table_name} first, or fix the name.")
    if table is not None and column and table.column(column) is None:
        raise ProposalError(f"{table_name} has no column {column!r}; reference its primary key instead.")
    return table_name, column or (table.primary_key[0] if table and len(table.primary_key) == 1 else "id")


def _fk_column_name(table_name: str) -> str:
    return f"{singular(table_name)}_id"


def _referenced_type(table: Table, column_name: str) -> str:
    column = table.column(column_name)
    if column is None:
        return "integer"
    return column.type


def _id_column(existing: Schema) -> tuple[Column, str]:
    """The primary key in the project's own style (what most of its tables use)."""
    styles: Counter[str] = Counter()
    for t in existing.tables:
        if t.managed_by or t.name in BETTER_AUTH_TABLES or t.primary_key != ["id"]:
            continue
        col = t.column("id")
        if col is not None:
            styles["uuid" if col.type == "uuid" else (col.identity or col.type)] += 1
    style = styles.most_common(1)[0][0] if styles else "serial"
    seen = f"{styles[style]} of the project's tables use it" if styles else "the project has no tables yet"
    if style == "uuid":
        return Column(name="id", type="uuid", nullable=False, primary_key=True, default="gen_random_uuid()",
                      description="Primary key"), f"uuid primary keys are the project's style ({seen})."
    if style in ("identity always", "identity by default"):
        identity = cast(Identity, style)  # one of the two just named
        return Column(name="id", type="integer", nullable=False, primary_key=True, identity=identity,
                      description="Primary key"), f"identity primary keys are the project's style ({seen})."
    if style == "bigserial":
        return Column(name="id", type="bigint", nullable=False, primary_key=True, identity="bigserial",
                      description="Primary key"), f"bigserial primary keys are the project's style ({seen})."
    return Column(name="id", type="integer", nullable=False, primary_key=True, identity="serial",
                  description="Primary key"), f"serial integer primary keys are the project's style ({seen})."


def _column(proposed: ProposedColumn, table: Table, existing: Schema, rules: list[AppliedRule],
            owner_column: str, users_table: str) -> Column:
    name = _check_name(proposed.name.lower(), "column")
    spelled = proposed.type.strip()
    is_string = spelled.lower() in ("string", "str", "varchar", "character varying")
    try:
        pg = normalize_type(spelled)
    except UnknownType:
        raise ProposalError(
            f"Cannot map the type {proposed.type!r} of {name} to PostgreSQL. Use e.g. text, varchar(200), "
            "integer, bigint, boolean, uuid, timestamptz, date, numeric(10,2) or jsonb."
        ) from None
    column_type, identity = pg
    if proposed.max_length and column_type in ("varchar", "text"):
        column_type = f"varchar({proposed.max_length})"
        rules.append(AppliedRule(rule="max-length", added=f"{name} varchar({proposed.max_length})",
                                 why="The length you gave is enforced by the database, not only the API."))
    elif is_string and column_type == "varchar" and not proposed.allowed_values:
        column_type = "text"
        rules.append(AppliedRule(rule="unbounded-string", added=f"{name} text",
                                 why="No max length was given; text says so plainly (varchar without a "
                                     "length is the same thing with a misleading name)."))
    column = Column(name=name, type=column_type, identity=identity, nullable=not proposed.required,
                    unique=proposed.unique, default=_default(proposed.default, name), description=proposed.description)
    if proposed.allowed_values:
        values = list(dict.fromkeys(proposed.allowed_values))
        if not values or any("\x00" in v for v in values):
            raise ProposalError(f"allowed_values of {name} must be a non-empty list of strings without NUL bytes.")
        if column_type in ("varchar", "text"):
            column.type = f"varchar({max(len(v) for v in values)})"
        column.allowed_values = values
        table.checks.append(Check(name=f"{table.name}_{name}_check",
                                  expression=f"{name} IN ({', '.join(literal(v) for v in values)})",
                                  columns=[name]))
        rules.append(AppliedRule(rule="fixed-value-set", added=f"CHECK ({name} IN (...)) on {len(values)} values",
                                 why="A fixed set of values is enforced by the database, not by convention."))
    if name == owner_column:
        column.nullable = False
        users_id_type = find_users_table(existing, owner_column, None)[1]
        if column.type != users_id_type:
            rules.append(AppliedRule(rule="owner-column", added=f"{name} {users_id_type} (was {column.type})",
                                     why=f"{owner_column} must have the type of {users_table}.id."))
            column.type = users_id_type
        table.foreign_keys.append(ForeignKey(columns=[name], ref_table=users_table, on_delete="CASCADE"))
    elif proposed.references:
        target, ref_column = _target(existing, proposed.references, table.name)
        ref = existing.table(target)
        if ref is not None and (ref_col := ref.column(ref_column)) is not None and ref_col.type != column.type:
            rules.append(AppliedRule(rule="reference", added=f"{name} {ref_col.type} (was {column.type})",
                                     why=f"A foreign key has the type of {target}.{ref_column}."))
            column.type = ref_col.type
        on_delete = proposed.on_delete or ("CASCADE" if column.nullable is False else "SET NULL")
        table.foreign_keys.append(ForeignKey(columns=[name], ref_table=target, ref_columns=[ref_column],
                                             on_delete=on_delete))
        if not proposed.on_delete:
            rules.append(AppliedRule(rule="explicit-on-delete", added=f"{name} ON DELETE {on_delete}",
                                     why="ON DELETE is always stated; a required reference goes with its "
                                         "parent, an optional one is cleared."))
    return column


def _default(text: str | None, column: str) -> str | None:
    """The default as one SQL expression, re-printed by PostgreSQL's parser (so the DDL, the spec and the
    model's server_default all carry what was parsed, never the text as given)."""
    if text is None:
        return None
    try:
        return sql_expression(text, f"default of {column}",
                              example="now(), 'todo', 0, false or gen_random_uuid() (the value only, no DEFAULT "
                                      "keyword, no ';')")
    except ExpressionError as exc:
        raise ProposalError(str(exc)) from None


def _add_timestamps(table: Table, rules: list[AppliedRule]) -> None:
    for stamp in ("created_at", "updated_at"):
        existing = table.column(stamp)
        if existing is None:
            table.columns.append(Column(name=stamp, type="timestamptz", nullable=False, default="now()",
                                        description="Set by the database" if stamp == "created_at"
                                        else "Kept current on update (trigger offered)"))
            rules.append(AppliedRule(rule="timestamps", added=f"{stamp} timestamptz NOT NULL DEFAULT now()",
                                     why="Every table records when rows change, in UTC-aware time."))
        elif existing.type != "timestamptz" or existing.default is None:
            existing.type, existing.nullable = "timestamptz", False
            existing.default = existing.default or "now()"
            rules.append(AppliedRule(rule="timestamps", added=f"{stamp} made timestamptz NOT NULL DEFAULT now()",
                                     why="Timestamps are timezone-aware with a database default."))


# ---------------------------------------------------------------------------------------------------
# Indexes from query patterns



def _add_indexes(table: Table, patterns: list[str], owner_column: str | None, rules: list[AppliedRule]) -> None:
    candidates: list[tuple[list[IndexColumn], str]] = []
    for pattern in patterns:
        try:
            columns, equality = index_columns_for_pattern(pattern, table, owner_column)
        except PatternError as exc:
            raise ProposalError(str(exc)) from None
        if not columns:
            rules.append(AppliedRule(rule="index-from-query", added="no index",
                                     why=f"Could not tell which columns {pattern!r} filters or sorts on; "
                                         "write it as SQL for a precise index."))
            continue
        if len(table.primary_key) == 1 and table.primary_key[0] in [c.name for c in columns]:
            rules.append(AppliedRule(rule="index-from-query", added="no index",
                                     why=f"{pattern!r} looks rows up by the primary key; its index serves it."))
            continue
        if len(columns) == 1 and (col := table.column(columns[0].name)) is not None and col.type == "boolean":
            rules.append(AppliedRule(rule="no-lone-boolean-index", added="no index",
                                     why=f"{pattern!r} filters only on the boolean {col.name}: an index on two "
                                         "values rarely beats a scan."))
            continue
        candidates.append((columns, f"serves: {pattern} ({_explain(columns, equality)})"))
    for fk in table.foreign_keys:
        candidates.append(([IndexColumn(name=c) for c in fk.columns],
                           f"covers the foreign key to {fk.ref_table}: joins and ON DELETE {fk.on_delete} "
                           f"from {fk.ref_table} find rows without a scan"))
    chosen: list[tuple[list[IndexColumn], str]] = []
    for columns, reason in sorted(candidates, key=lambda c: -len(c[0])):
        if table.primary_key and [c.name for c in columns] == table.primary_key[: len(columns)]:
            continue  # the primary key's index already leads with these columns
        if any(_is_prefix(columns, longer) for longer, _ in chosen):
            continue  # a longer index serves it through its leftmost prefix
        chosen.append((columns, reason))
    order = {id(c): i for i, (c, _) in enumerate(candidates)}
    for columns, reason in sorted(chosen, key=lambda c: order[id(c[0])]):
        index = Index(columns=columns, reason=reason)
        index.name = index_name(table, index)
        table.indexes.append(index)
        rules.append(AppliedRule(rule="index-from-query", added=f"index ({_show(columns)})", why=reason))


def _is_prefix(short: list[IndexColumn], long: list[IndexColumn]) -> bool:
    return len(short) <= len(long) and all(
        a.name == b.name and (a.descending == b.descending or i == len(short) - 1 and len(short) < len(long))
        for i, (a, b) in enumerate(zip(short, long, strict=False)))  # long may go on


def _show(columns: list[IndexColumn]) -> str:
    return ", ".join(c.name + (" DESC" if c.descending else "") for c in columns)


def _explain(columns: list[IndexColumn], equality: int) -> str:
    """How the planner uses the index, from its columns: equality prefix, then the order."""
    found = ", ".join(c.name for c in columns[:equality])
    ordered = ", ".join(c.name + (" DESC" if c.descending else "") for c in columns[equality:])
    if found and ordered:
        return f"equality on {found} finds the rows; {ordered} then gives their order without a sort"
    if found:
        return f"equality on {found} finds the rows"
    return f"rows come out in {ordered} order without a sort"


def _migration_note(table: Table, replace: bool) -> str:
    if replace:
        return (f"Replacing {table.name} is a breaking change: write an Alembic migration that alters the "
                "existing table column by column (backfill before SET NOT NULL; create indexes with "
                "CREATE INDEX CONCURRENTLY inside op.get_context().autocommit_block()); never drop and "
                "recreate a table that holds data. Roll back by reversing each step.")
    return (f"New table: `alembic revision --autogenerate -m 'add {table.name}'` then check the generated "
            "op.create_table / op.create_index against the DDL above. Creating a table takes only a brief "
            "SHARE ROW EXCLUSIVE lock on the tables its foreign keys reference; its indexes are built on an "
            "empty table, so CONCURRENTLY is not needed. Roll back with op.drop_table("
            f"{table.name!r}). Add the updated_at trigger in the same migration if you want every UPDATE, not "
            "only ORM ones, to keep updated_at current.")

"""Merge every representation of every table into one Table each, recording each disagreement.

Precedence: markdown table > SQL DDL > bullet list > Python model (then index/relationship sections,
which only add). For a column, an aspect is taken from the highest-precedence representation that
*stated* it; a different value stated elsewhere is a SpecConflict naming both lines and the winner.
"""

from __future__ import annotations

from ...schema.findings import Finding, SpecConflict
from ...schema.model import BETTER_AUTH_TABLES, Column, Enum, ForeignKey, Index, Location, Table
from ...schema.names import name_variants
from .drafts import PRECEDENCE, PRECEDENCE_TEXT, PYTHON, SECTION, ColumnDraft, TableDraft
from .words import in_list_values

_COLUMN_ASPECTS = ("type", "nullable", "default", "unique", "identity", "allowed_values")


def _why(winner: TableDraft, loser: TableDraft) -> str:
    if winner.source == loser.source:
        return f"both are {winner.source}s; the one stated first in the file wins"
    return f"{winner.source} wins over {loser.source} (precedence: {PRECEDENCE_TEXT})"


def _show(value) -> str:
    if value is None:
        return "not set"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list):
        return ", ".join(map(str, value))
    return str(value)


def resolve_names(drafts: list[TableDraft], conflicts: list[SpecConflict],
                  mentioned: dict[str, Location] | None = None) -> None:
    """Give guessed names (``user`` from ``class User``, a "Task Model" heading) the plural another
    representation states or, failing that, the plural the document's text calls the table by
    (``tasks.user_id``, "the tasks table"); ``mentioned`` maps such names to where they are first said.
    A Python class keeps its implicit name against mere mentions: SQLModel really names it so."""
    strong = {d.name for d in drafts if not d.weak_name and d.source != SECTION}
    mentioned = mentioned or {}
    renames: dict[str, str] = {}
    for draft in drafts:
        if not draft.weak_name or draft.name in strong:
            continue
        match = next((form for form in name_variants(draft.name) if form in strong), None)
        if match:
            winner = next(d for d in drafts if d.name == match and not d.weak_name)
            where, by = winner.location, "stated elsewhere"
        elif draft.source != PYTHON and draft.name not in mentioned and (match := next(
                (form for form in name_variants(draft.name) if form in mentioned and len(form) > len(draft.name)),
                None)):  # only a plural: "Users Model" must not become a passing "user.id"
            where, by = mentioned[match], f"named in the text at line {mentioned[match].line}"
        else:
            continue
        conflicts.append(SpecConflict(
            object=match, aspect="table_name", winner=match, winner_location=where,
            loser=draft.name, loser_location=draft.location,
            why=f"the {draft.source} at line {draft.location.line} has no explicit table name; its "
                f"implicit name {draft.name!r} was matched to the table {match!r} {by}",
        ))
        renames[draft.name] = match
        draft.name = match
    # Sections under the same guessed heading (its indexes, its relationships) follow the rename.
    for draft in drafts:
        if draft.source == SECTION and draft.name in renames:
            draft.name = renames[draft.name]
    # ... and so do the foreign keys that name it by its implicit name (foreign_key="user.id" in the class
    # whose table is "users"): one fact, already reported as the table_name conflict above.
    kept = {d.name for d in drafts if d.defines_columns}
    for draft in drafts:
        for fk in draft.foreign_keys:
            if fk.ref_table in renames and fk.ref_table not in kept:
                fk.ref_table = renames[fk.ref_table]


def merge_tables(drafts: list[TableDraft], enums: list[Enum], mentioned: dict[str, Location] | None = None,
                 ) -> tuple[list[Table], list[Finding], list[SpecConflict]]:
    warnings: list[Finding] = []
    conflicts: list[SpecConflict] = []
    resolve_names(drafts, conflicts, mentioned)
    order: list[str] = []
    by_name: dict[str, list[TableDraft]] = {}
    for draft in drafts:
        if draft.defines_columns and draft.name not in by_name:
            order.append(draft.name)
            by_name[draft.name] = []
    for draft in drafts:
        if draft.name in by_name:
            by_name[draft.name].append(draft)
        elif draft.source == SECTION and (draft.indexes or draft.foreign_keys or draft.checks):
            warnings.append(Finding(
                rule="spec-unknown-table", severity="info", object=draft.name, location=draft.location,
                message=f"Line {draft.location.line} refers to a table {draft.name!r} that no column "
                        "definition in the spec describes; it was ignored.",
                fix=f"Add a `## Table: {draft.name}` section with its columns, or correct the name.",
            ))
    tables = [_merge_one(name, by_name[name], enums, warnings, conflicts) for name in order]
    _check_fk_targets(tables, warnings)
    return tables, warnings, conflicts


def _merge_one(name: str, drafts: list[TableDraft], enums: list[Enum], warnings: list[Finding],
               conflicts: list[SpecConflict]) -> Table:
    ranked = sorted(drafts, key=lambda d: (PRECEDENCE[d.source], d.location.line or 0))
    first = next(d for d in ranked if d.defines_columns)
    columns: dict[str, Column] = {}
    said_by: dict[tuple[str, str], TableDraft] = {}  # (column, aspect) -> the draft that said it
    column_location: dict[str, Location | None] = {}
    for draft in ranked:
        for col_name, col_draft in draft.columns.items():
            if col_name not in columns:
                if not (draft.defines_columns and ("type" in col_draft.stated
                                                      or col_draft.unreadable_type is not None)):
                    continue  # a section may add facts to a column, never invent one
                columns[col_name] = col_draft.column.model_copy(deep=True)
                column_location[col_name] = col_draft.column.location
                for aspect in col_draft.stated:
                    said_by[(col_name, aspect)] = draft
                _check_type(name, col_draft, columns[col_name], enums, warnings)
                continue
            merged = columns[col_name]
            if merged.description is None and col_draft.column.description:
                merged.description = col_draft.column.description
            for aspect in _COLUMN_ASPECTS:
                if aspect not in col_draft.stated or (aspect == "type" and col_draft.unreadable_type is not None):
                    continue
                if aspect == "unique" and (merged.primary_key or col_draft.column.primary_key):
                    continue  # "Primary key, unique" and "Primary key": a key is unique, one fact
                new = getattr(col_draft.column, aspect)
                winner = said_by.get((col_name, aspect))
                if winner is None:
                    setattr(merged, aspect, new)
                    said_by[(col_name, aspect)] = draft
                elif getattr(merged, aspect) != new:
                    conflicts.append(SpecConflict(
                        object=f"{name}.{col_name}", aspect=aspect,
                        winner=_show(getattr(merged, aspect)),
                        winner_location=winner.columns[col_name].column.location,
                        loser=_show(new), loser_location=col_draft.column.location,
                        why=_why(winner, draft),
                    ))
    table = Table(name=name, schema_name=first.schema_name, location=first.location,
                  columns=list(columns.values()))
    _merge_primary_key(table, ranked, conflicts)
    for column in table.columns:  # what no representation said stays unknown (drift: "not stated")
        said = {aspect for (col_name, aspect) in said_by if col_name == column.name}
        if column.primary_key or column.identity:
            said.add("nullable")  # a key or a generated value is NOT NULL without saying so
        if any(e.name == column.type for e in enums):
            said.add("type")  # an enum the spec declares, named as the type
        column.unstated = [a for a in ("type", "nullable", "default") if a not in said]
    _merge_foreign_keys(table, ranked, conflicts, warnings)
    _merge_constraints_and_indexes(table, ranked)
    table.description = next((d.description for d in ranked if d.description), None)
    table.managed_by = next((d.managed_by for d in ranked if d.managed_by), None)
    for draft in sorted(drafts, key=lambda d: d.location.line or 0):
        table.notes += [n for n in draft.notes if n not in table.notes]
        table.query_patterns += [q for q in draft.query_patterns
                                 if q.description not in {p.description for p in table.query_patterns}]
    return table


def _check_type(table: str, draft: ColumnDraft, column: Column, enums: list[Enum],
                warnings: list[Finding]) -> None:
    raw = draft.unreadable_type
    if raw is None:
        return
    enum = next((e for e in enums if e.name == raw.strip().lower()), None)
    if enum:
        column.type = enum.name
        if column.allowed_values is None:
            column.allowed_values = list(enum.values)
        return
    where = column.location.line if column.location else "?"
    if raw.strip():
        column.type = raw.strip().lower()
        message = f"Line {where}: the type {raw!r} of {table}.{column.name} is not a PostgreSQL type we know."
    else:
        column.type = "unknown"
        message = f"Line {where}: {table}.{column.name} has no type."
    warnings.append(Finding(
        rule="spec-unreadable-type", severity="warning", object=f"{table}.{column.name}",
        location=column.location, message=message,
        fix="Write a PostgreSQL type such as text, varchar(200), integer, boolean, timestamptz or uuid "
            "(or declare the enum type in an `## Enums` section).",
    ))


def _merge_primary_key(table: Table, ranked: list[TableDraft], conflicts: list[SpecConflict]) -> None:
    chosen: list[str] = []
    chosen_from: TableDraft | None = None
    for draft in ranked:
        pk = [c for c in draft.pk_list() if table.column(c)]
        if not pk:
            continue
        if not chosen:
            chosen, chosen_from = pk, draft
        elif pk != chosen and chosen_from is not None:
            conflicts.append(SpecConflict(
                object=table.name, aspect="primary_key", winner=", ".join(chosen),
                winner_location=chosen_from.location, loser=", ".join(pk), loser_location=draft.location,
                why=_why(chosen_from, draft),
            ))
    table.primary_key = chosen
    for column in table.columns:
        column.primary_key = column.name in chosen
        if column.primary_key:
            column.nullable = False


def _merge_foreign_keys(table: Table, ranked: list[TableDraft], conflicts: list[SpecConflict],
                        warnings: list[Finding]) -> None:
    kept: dict[tuple[str, ...], tuple[ForeignKey, TableDraft]] = {}
    for draft in ranked:
        for fk in draft.foreign_keys:
            key = tuple(fk.columns)
            if not all(table.column(c) for c in key):
                missing = ", ".join(c for c in key if not table.column(c))
                line = fk.location.line if fk.location else None
                warnings.append(Finding(
                    rule="spec-unknown-column", severity="warning", object=f"{table.name}.{missing}",
                    location=fk.location, message=f"Line {line}: a foreign key on {table.name}.{missing}, a "
                    f"column the spec's definition of {table.name} does not have; it was ignored.",
                    fix=f"Add the column to {table.name}'s definition, or correct the name."))
                continue
            if key not in kept:
                kept[key] = (fk.model_copy(deep=True), draft)
                continue
            winner, winner_draft = kept[key]
            target = (winner.ref_schema, winner.ref_table, winner.ref_columns)
            if target != (fk.ref_schema, fk.ref_table, fk.ref_columns):
                conflicts.append(SpecConflict(
                    object=f"{table.name}.{','.join(key)}", aspect="foreign_key",
                    winner=_fk_target(winner), winner_location=winner.location,
                    loser=_fk_target(fk), loser_location=fk.location, why=_why(winner_draft, draft),
                ))
                continue
            for aspect in ("on_delete", "on_update"):
                mine, theirs = getattr(winner, aspect), getattr(fk, aspect)
                if mine is None and theirs is not None:
                    setattr(winner, aspect, theirs)
                elif theirs is not None and mine != theirs:
                    conflicts.append(SpecConflict(
                        object=f"{table.name}.{','.join(key)}", aspect=aspect, winner=mine,
                        winner_location=winner.location, loser=theirs, loser_location=fk.location,
                        why=_why(winner_draft, draft),
                    ))
            winner.name = winner.name or fk.name
    table.foreign_keys = [fk for fk, _ in kept.values()]
    said = {c for fk in table.foreign_keys for c in fk.columns}
    for draft in ranked:
        for column, line in draft.fk_without_target.items():
            if column in said or not table.column(column):
                continue
            said.add(column)
            warnings.append(Finding(
                rule="spec-unknown-fk-target", severity="warning", object=f"{table.name}.{column}",
                location=Location(file=draft.location.file, line=line),
                message=f"Line {line}: {table.name}.{column} is said to be a foreign key, but not to "
                        "which table and column.",
                fix=f"Name the target, e.g. `FK → users.id ON DELETE CASCADE`, or add "
                    f"`- {column} → users.id ON DELETE CASCADE` under `### Relationships`.",
            ))


def _fk_target(fk: ForeignKey) -> str:
    schema = f"{fk.ref_schema}." if fk.ref_schema else ""
    return f"{schema}{fk.ref_table}({', '.join(fk.ref_columns)})"


def _merge_constraints_and_indexes(table: Table, ranked: list[TableDraft]) -> None:
    for draft in ranked:
        for unique in draft.unique_constraints:
            cols = [c for c in unique.columns if table.column(c)]
            if len(cols) != len(unique.columns):
                continue
            if len(cols) == 1 and unique.name is None and (column := table.column(cols[0])) is not None:
                column.unique = True
            elif all(u.columns != cols for u in table.unique_constraints):
                table.unique_constraints.append(unique.model_copy(deep=True))
        for check in draft.checks:
            if all(c.expression != check.expression for c in table.checks):
                table.checks.append(check.model_copy(deep=True))
        for index in draft.indexes:
            if not all(table.column(c.name) for c in index.columns if not c.is_expression):
                continue
            same = next((i for i in table.indexes if _same_index(i, index)), None)
            if same is None:
                table.indexes.append(index.model_copy(deep=True))
            else:
                same.name = same.name or index.name
                same.reason = same.reason or index.reason
    for check in table.checks:
        values = in_list_values(check.expression)
        if values and len(check.columns) == 1 and (column := table.column(check.columns[0])):
            if column.allowed_values is None:
                column.allowed_values = values


def _same_index(a: Index, b: Index) -> bool:
    if a.name and b.name and a.name == b.name:
        return True
    if a.name and b.name and a.name != b.name:
        return False
    shape = lambda i: ([(c.name, c.descending, c.nulls_first) for c in i.columns], i.unique,  # noqa: E731
                       i.where, i.method, i.include)
    return shape(a) == shape(b)


def _check_fk_targets(tables: list[Table], warnings: list[Finding]) -> None:
    names = {t.name for t in tables}
    for table in tables:
        for fk in table.foreign_keys:
            if fk.ref_table in names or fk.ref_table in BETTER_AUTH_TABLES:
                continue
            warnings.append(Finding(
                rule="spec-unknown-fk-target", severity="warning",
                object=f"{table.name}.{','.join(fk.columns)}", location=fk.location,
                message=f"{table.name}.{', '.join(fk.columns)} references {fk.ref_table!r}, which the "
                        "spec does not describe.",
                fix=f"Add a section for {fk.ref_table!r}, or correct the target table name.",
            ))

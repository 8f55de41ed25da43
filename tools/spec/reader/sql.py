"""SQL DDL blocks, read with PostgreSQL's own parser (pglast), one statement at a time so that one
broken statement (a MySQL-ism, a typo) costs a warning, not the whole block."""

from __future__ import annotations

import re

from ...database.types import try_normalize_type
from ...schema.findings import Finding
from ...schema.model import (
    Check,
    Column,
    Enum,
    FkAction,
    ForeignKey,
    Index,
    IndexColumn,
    Location,
    UniqueConstraint,
)
from .drafts import SECTION, SQL_DDL, ColumnDraft, ReadResult, TableDraft
from .words import normalize_default, print_node

_FK_ACTION: dict[str, FkAction] = {"c": "CASCADE", "n": "SET NULL", "d": "SET DEFAULT", "r": "RESTRICT",
                                   "a": "NO ACTION"}
_INTERNAL_TYPES = {"int4": "integer", "int8": "bigint", "int2": "smallint", "bool": "boolean",
                   "float8": "double precision", "float4": "real", "bpchar": "char"}
_DDL_HINT = re.compile(r"\b(create|alter)\s+(unique\s+)?(table|index|type)\b", re.I)
# MySQL spellings seen in specs that PostgreSQL rejects; dropped before parsing.
_MYSQLISMS = re.compile(r"\bon\s+update\s+current_timestamp(\(\))?|\bauto_increment\b", re.I)


def looks_like_ddl(text: str) -> bool:
    return bool(_DDL_HINT.search(text))


def split_statements(text: str) -> list[tuple[int, str]]:
    """(offset, statement) pairs, split on ``;`` outside quotes, comments and dollar quotes."""
    out, start, i, n = [], 0, 0, len(text)
    while i < n:
        ch = text[i]
        if text.startswith("--", i):
            end = text.find("\n", i)
            i = n if end < 0 else end
            continue
        if text.startswith("/*", i):
            end = text.find("*/", i + 2)
            i = n if end < 0 else end + 2
            continue
        if ch in "'\"":
            end = text.find(ch, i + 1)
            i = n if end < 0 else end + 1
            continue
        if ch == "$" and (m := re.match(r"\$[A-Za-z_]*\$", text[i:])):
            end = text.find(m.group(0), i + len(m.group(0)))
            i = n if end < 0 else end + len(m.group(0))
            continue
        if ch == ";":
            out.append((start, text[start:i]))
            start = i + 1
        i += 1
    if text[start:].strip():
        out.append((start, text[start:]))
    return out


def read_sql(text: str, first_line: int, file: str) -> ReadResult:
    """Every CREATE TABLE / CREATE INDEX / ALTER TABLE ADD CONSTRAINT / CREATE TYPE AS ENUM in a block
    whose first line is ``first_line``. Other statements (queries, triggers, policies) are ignored."""
    from pglast import parse_sql

    result = ReadResult()
    tables: dict[str, TableDraft] = {}
    for offset, statement in split_statements(text):
        body = _strip_comments(statement)
        if not body.strip() or not looks_like_ddl(body):
            continue
        lead = len(statement) - len(statement.lstrip())
        base_line = first_line + text.count("\n", 0, offset + lead)
        stripped = statement.strip()
        try:
            parsed = parse_sql(_MYSQLISMS.sub(" ", stripped))
        except Exception as error:  # pglast.parser.ParseError, and anything odd inside the parser
            result.warnings.append(Finding(
                rule="spec-sql-unparsable", severity="warning", location=Location(file=file, line=base_line),
                message=f"Line {base_line}: PostgreSQL cannot parse this statement ({_short(error)}); "
                        "it was skipped.",
                fix="Write it as PostgreSQL DDL (e.g. `user_id text NOT NULL REFERENCES users(id) "
                    "ON DELETE CASCADE`), or move it out of the schema spec.",
            ))
            continue

        def line_of(location: int | None, source: str = stripped, base: int = base_line) -> int:
            if location is None or location < 0:
                return base
            prefix = source.encode("utf-8")[:location].decode("utf-8", "ignore")
            return base + prefix.count("\n")

        for raw in parsed:
            _read_statement(raw.stmt, line_of, file, tables, result, _leading_comment(statement))
    result.drafts.extend(tables.values())
    return result


def _leading_comment(statement: str) -> str | None:
    """The ``--`` comment lines right above a statement (no blank line between): why it exists.
    A section title ("-- Indexes", "-- Indexes for tasks") is not a reason."""
    from .fields import index_reason

    run: list[str] = []
    for line in statement.splitlines():
        text = line.strip()
        if text.startswith("--"):
            run.append(text.lstrip("-").strip())
        elif text:
            break
        else:
            run = []
    return index_reason(" ".join(r for r in run if r))


def _strip_comments(sql: str) -> str:
    return re.sub(r"--[^\n]*", "", sql)


def _short(error: Exception) -> str:
    return str(error).split("\n")[0][:120]


def _name(range_var) -> tuple[str | None, str]:
    return range_var.schemaname, range_var.relname


def _read_statement(stmt, line_of, file: str, tables: dict[str, TableDraft], result: ReadResult,
                    comment: str | None = None) -> None:
    kind = type(stmt).__name__
    if kind == "CreateStmt":
        schema, name = _name(stmt.relation)
        draft = TableDraft(name=name, source=SQL_DDL, schema_name=schema or "public",
                           location=Location(file=file, line=line_of(stmt.relation.location)))
        tables[name] = draft
        for element in stmt.tableElts or ():
            if type(element).__name__ == "ColumnDef":
                _read_column(element, draft, line_of, file)
            elif type(element).__name__ == "Constraint":
                _read_table_constraint(element, draft, line_of, file)
    elif kind == "IndexStmt":
        schema, name = _name(stmt.relation)
        draft = _section(tables, result, name, line_of(stmt.relation.location), file)
        draft.indexes.append(Index(
            name=stmt.idxname, unique=bool(stmt.unique), method=(stmt.accessMethod or "btree").lower(),
            columns=[_index_column(e) for e in stmt.indexParams or ()],
            include=[e.name for e in stmt.indexIncludingParams or () if e.name],
            where=print_node(stmt.whereClause) if stmt.whereClause else None,
            location=Location(file=file, line=line_of(stmt.relation.location)), reason=comment,
        ))
    elif kind == "AlterTableStmt":
        schema, name = _name(stmt.relation)
        for cmd in stmt.cmds or ():
            constraint = getattr(cmd, "def_", None)
            if constraint is not None and type(constraint).__name__ == "Constraint":
                draft = _section(tables, result, name, line_of(stmt.relation.location), file)
                _read_table_constraint(constraint, draft, line_of, file)
            elif constraint is not None and type(constraint).__name__ == "ColumnDef":
                draft = tables.get(name) or _section(tables, result, name, line_of(stmt.relation.location), file)
                if draft.source == SQL_DDL:
                    _read_column(constraint, draft, line_of, file)
    elif kind == "CreateEnumStmt":
        result.enums.append(Enum(
            name=stmt.typeName[-1].sval, values=[v.sval for v in stmt.vals or ()],
            schema_name=stmt.typeName[0].sval if len(stmt.typeName) > 1 else "public",
            location=Location(file=file, line=line_of(None)),
        ))


def _section(tables: dict[str, TableDraft], result: ReadResult, name: str, line: int, file: str) -> TableDraft:
    """Indexes and ALTERs attach to the CREATE TABLE of the same block, else to a section draft."""
    if name in tables:
        return tables[name]
    draft = TableDraft(name=name, source=SECTION, location=Location(file=file, line=line))
    result.drafts.append(draft)
    return draft


def type_spelling(type_name) -> str:
    names = [n.sval for n in type_name.names]
    base = names[-1]
    if len(names) > 1 and names[0] == "pg_catalog":
        base = _INTERNAL_TYPES.get(base, base)
    mods = []
    for mod in type_name.typmods or ():
        value = getattr(getattr(mod, "val", None), "ival", None)
        if value is not None:
            mods.append(str(value))
    spelled = f"{base}({','.join(mods)})" if mods else base
    if base in ("timestamp", "timestamptz", "time", "timetz", "interval"):
        spelled = base  # fractional-second precision is not part of our canonical type
    return spelled + "[]" * len(type_name.arrayBounds or ())


def _read_column(element, draft: TableDraft, line_of, file: str) -> None:
    spelled = type_spelling(element.typeName)
    found = try_normalize_type(spelled)
    column = Column(name=element.colname, type=found.type if found else spelled,
                    identity=found.identity if found else None,
                    location=Location(file=file, line=line_of(element.location)))
    col_draft = ColumnDraft(column, {"type", "nullable", "default", "unique", "identity"},
                            unreadable_type=None if found else spelled)
    for constraint in element.constraints or ():
        ctype = constraint.contype.name
        if ctype == "CONSTR_NOTNULL":
            column.nullable = False
        elif ctype == "CONSTR_DEFAULT":
            column.default = normalize_default(print_node(constraint.raw_expr))
        elif ctype == "CONSTR_IDENTITY":
            column.identity = "identity always" if constraint.generated_when == "a" else "identity by default"
            column.nullable = False
        elif ctype == "CONSTR_PRIMARY":
            column.primary_key = True
            column.nullable = False
        elif ctype == "CONSTR_UNIQUE":
            column.unique = True
        elif ctype == "CONSTR_CHECK":
            expression = print_node(constraint.raw_expr)
            draft.checks.append(Check(name=constraint.conname, expression=expression, columns=[column.name],
                                      location=Location(file=file, line=line_of(constraint.location))))
        elif ctype == "CONSTR_FOREIGN":
            draft.foreign_keys.append(_foreign_key(constraint, [column.name], line_of, file))
    if column.primary_key:
        col_draft.stated.add("primary_key")
    draft.add_column(col_draft)


def _foreign_key(constraint, columns: list[str], line_of, file: str) -> ForeignKey:
    schema, table = _name(constraint.pktable)
    on_delete = _FK_ACTION.get(constraint.fk_del_action or "")
    on_update = _FK_ACTION.get(constraint.fk_upd_action or "")
    return ForeignKey(
        name=constraint.conname, columns=columns, ref_table=table, ref_schema=schema,
        ref_columns=[a.sval for a in constraint.pk_attrs or ()] or ["id"],
        # pglast reports "no action" both when written and when omitted: treat it as not said.
        on_delete=None if on_delete == "NO ACTION" else on_delete,
        on_update=None if on_update == "NO ACTION" else on_update,
        location=Location(file=file, line=line_of(constraint.location)),
    )


def _read_table_constraint(constraint, draft: TableDraft, line_of, file: str) -> None:
    ctype = constraint.contype.name
    location = Location(file=file, line=line_of(constraint.location))
    keys = [k.sval for k in constraint.keys or ()]
    if ctype == "CONSTR_PRIMARY":
        draft.primary_key = keys
    elif ctype == "CONSTR_UNIQUE":
        draft.unique_constraints.append(UniqueConstraint(name=constraint.conname, columns=keys, location=location))
    elif ctype == "CONSTR_CHECK":
        from .words import expression_columns

        expression = print_node(constraint.raw_expr)
        draft.checks.append(Check(name=constraint.conname, expression=expression,
                                  columns=expression_columns(expression), location=location))
    elif ctype == "CONSTR_FOREIGN":
        draft.foreign_keys.append(_foreign_key(constraint, [a.sval for a in constraint.fk_attrs or ()],
                                               line_of, file))


def _index_column(element) -> IndexColumn:
    ordering = getattr(element.ordering, "name", "")
    nulls = getattr(element.nulls_ordering, "name", "")
    if element.name:
        name, is_expression = element.name, False
    else:
        name, is_expression = print_node(element.expr), True
    return IndexColumn(
        name=name, is_expression=is_expression, descending=ordering == "SORTBY_DESC",
        nulls_first=True if nulls == "SORTBY_NULLS_FIRST" else False if nulls == "SORTBY_NULLS_LAST" else None,
    )

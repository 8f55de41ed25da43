"""One migration for the whole drift: the database fixes ordered by dependency, made re-runnable, as
plain SQL and as the text of an Alembic revision.

    database fixes ─ split (pglast) ─ each statement made re-runnable ─ ordered by phase and table
                   ─ runs of transactional statements in BEGIN/COMMIT, CONCURRENTLY and ADD VALUE alone
                   ─> Migration(steps, sql, alembic)

The Alembic revision says each step in Alembic's own operation where one says exactly that statement
(revision.py: op.add_column(..., if_not_exists=True), op.create_index(..., postgresql_concurrently=True),
...) and in ``op.execute`` otherwise; the steps outside a transaction go in ``autocommit_block``.

Re-runnable means a run stopped anywhere (a lock timeout, a duplicate row, a lost connection) can be
started again from the top and completes: ``IF [NOT] EXISTS`` wherever PostgreSQL has it; a ``DO`` block
that tests the catalog where it has not (ADD CONSTRAINT, a type change with USING, renames); an INVALID
index left by a stopped ``CREATE INDEX CONCURRENTLY`` dropped before the build starts again. Every
statement runs under ``lock_timeout`` and ``statement_timeout``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ..database.ddl import dependency_order, ident, literal
from ..schema.model import Schema
from .model import Drift, Fix
from .revision import op_call

LOCK_TIMEOUT = "5s"
STATEMENT_TIMEOUT = "30min"

#: The order drift kinds are fixed in: new types and tables before the columns that use them, columns
#: before their constraints and indexes, what loses data last.
PHASES = {
    "enum-labels": 0, "missing-table": 1, "table-name": 2, "missing-column": 2, "possible-rename": 2,
    "column-type": 3, "column-length": 3, "timestamp-timezone": 3, "identity": 3, "default": 3,
    "nullability": 4, "updated-at-not-maintained": 4, "primary-key": 5, "unique": 5, "check": 6,
    "fk-missing": 7, "fk-target": 7, "fk-on-delete": 7, "fk-on-update": 7, "fk-extra": 7,
    "index-missing": 8, "index-columns": 8, "index-order": 8, "index-predicate": 8, "index-method": 8,
    "index-unique": 8, "index-include": 8, "index-name": 8, "index-extra": 9, "extra-column": 10,
    "extra-table": 11,
}


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MigrationStep(_Model):
    sql: str = Field(description="One statement, in its re-runnable form")
    transactional: bool = Field(description="False for CONCURRENTLY and ADD VALUE: run outside a transaction")
    drift: str = Field(description='The drift it fixes: "object kind"')
    risk: str | None = Field(None, description='"data-loss" or "backfill" when the step needs a look first')
    note: str | None = Field(None, description="What to check or fill in before this step")


class Migration(_Model):
    """The whole drift's database fixes as one re-runnable migration (or the tables asked for)."""

    steps: list[MigrationStep]
    sql: str = Field(description="Plain SQL: run with psql -v ON_ERROR_STOP=1 -f; if it stops, run it again")
    alembic: str = Field(description="An Alembic revision: upgrade() and downgrade(), concurrent steps in "
                         "autocommit_block; set down_revision to your head")
    downgrade_sql: str | None = Field(None, description="The way back, found by applying the upgrade to the "
                                      "copy and diffing it against the database as it is")
    called_out: list[str] = Field(default_factory=list, description="Steps that need a backfill or can lose data")
    proof: str | None = Field(None, description="What running it on the copy showed")
    lint: dict[str, int] = Field(default_factory=dict, description="squawk's findings on the SQL, by rule")
    lint_remaining: dict[str, str] = Field(default_factory=dict, description="Why each remaining rule is inherent")


# ---------------------------------------------------------------------------------------------------
# Statements


def split_fix_sql(sql: str | None) -> tuple[list[str], list[str]]:
    """A fix's migration_sql as its statements and its comment lines (notes such as "check first")."""
    from pglast import parser

    if not sql:
        return [], []
    notes = [ln.strip()[2:].strip() for ln in sql.splitlines() if ln.strip().startswith("--")]
    code = "\n".join(ln for ln in sql.splitlines() if not ln.strip().startswith("--"))
    return [s.strip() for s in parser.split(code) if s.strip()], notes


def _guard(condition: str, statement: str) -> str:
    return f"DO $$ BEGIN IF {condition} THEN EXECUTE {literal(statement)}; END IF; END $$"


def _rel(name: str) -> str:
    return f"to_regclass({literal(ident(name))})"


def robust(statement: str) -> list[tuple[str, bool]]:
    """The statement in a form that can run again after it (or the migration) ran once, with whether it
    can run inside a transaction. One statement can become two (an INVALID index dropped first)."""
    import pglast
    from pglast.enums import AlterTableType as A, ObjectType as O

    node: Any = pglast.parse_sql(statement)[0].stmt  # its class is read by name below
    kind = type(node).__name__
    s = statement.rstrip().rstrip(";")
    if kind == "IndexStmt":
        if not node.if_not_exists:
            s = re.sub(r"^(CREATE (?:UNIQUE )?INDEX(?: CONCURRENTLY)?) ", r"\1 IF NOT EXISTS ", s, count=1)
        if not node.concurrent:
            return [(s, True)]
        invalid = ("EXISTS (SELECT 1 FROM pg_index i WHERE i.indexrelid = "
                   f"{_rel(node.idxname)} AND NOT i.indisvalid)")
        return [(_guard(invalid, f"DROP INDEX {ident(node.idxname)}"), True), (s, False)]
    if kind == "DropStmt":
        if not node.missing_ok:
            s = re.sub(r"^(DROP (?:INDEX|TABLE|TYPE|SEQUENCE)(?: CONCURRENTLY)?) ", r"\1 IF EXISTS ", s, count=1)
        return [(s, not node.concurrent)]
    if kind == "CreateStmt":
        return [(re.sub(r"^CREATE TABLE (?!IF NOT EXISTS)", "CREATE TABLE IF NOT EXISTS ", s, count=1), True)]
    if kind == "CreateEnumStmt":
        name = node.typeName[-1].sval
        return [(_guard(f"to_regtype({literal(ident(name))}) IS NULL", s), True)]
    if kind == "AlterEnumStmt":
        if not node.skipIfNewValExists:
            s = s.replace(" ADD VALUE ", " ADD VALUE IF NOT EXISTS ", 1)
        return [(s, False)]  # a label added in a transaction cannot be used before it commits
    if kind == "CreateTrigStmt" and not node.replace:
        return [(s.replace("CREATE TRIGGER", "CREATE OR REPLACE TRIGGER", 1), True)]
    if kind == "RenameStmt":
        table = node.relation.relname if node.relation else None
        assert table is not None  # the fixes rename tables, columns and indexes: each on a relation
        if node.renameType == O.OBJECT_COLUMN:
            cond = (f"EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = {_rel(table)} AND attname = "
                    f"{literal(node.subname)} AND NOT attisdropped)")
        else:  # a table or an index: rename it while the old name exists
            cond = f"{_rel(table)} IS NOT NULL AND to_regclass({literal(ident(node.newname))}) IS NULL"
        return [(_guard(cond, s), True)]
    if kind == "AlterTableStmt" and len(node.cmds) == 1:
        cmd, table = node.cmds[0], node.relation.relname
        sub = cmd.subtype
        if sub == A.AT_AddColumn and not cmd.missing_ok:
            s = s.replace(" ADD COLUMN ", " ADD COLUMN IF NOT EXISTS ", 1)
        elif sub in (A.AT_DropColumn, A.AT_DropConstraint) and not cmd.missing_ok:
            s = re.sub(r" DROP (COLUMN|CONSTRAINT) ", r" DROP \1 IF EXISTS ", s, count=1)
        elif sub == A.AT_AddConstraint:
            cond = (f"NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conrelid = {_rel(table)} AND conname = "
                    f"{literal(cmd.def_.conname)})")
            s = _guard(cond, s)
        elif sub == A.AT_AlterColumnType and cmd.def_.raw_default is not None:
            using = re.search(r" TYPE (.+?) USING ", s)
            assert using is not None  # raw_default is the USING expression
            target = using.group(1)
            cond = (f"(SELECT atttypid FROM pg_attribute WHERE attrelid = {_rel(table)} AND attname = "
                    f"{literal(cmd.name)}) IS DISTINCT FROM {literal(target)}::regtype")
            s = _guard(cond, s)  # USING converts the values: run it once only
        elif sub == A.AT_AddIdentity:
            cond = (f"(SELECT attidentity FROM pg_attribute WHERE attrelid = {_rel(table)} AND attname = "
                    f"{literal(cmd.name)}) = ''")
            s = _guard(cond, s)
        elif sub == A.AT_DropIdentity and not cmd.missing_ok:
            s = s.replace(" DROP IDENTITY", " DROP IDENTITY IF EXISTS", 1)
        return [(s, True)]
    return [(s, True)]  # CREATE OR REPLACE FUNCTION, SET/DROP DEFAULT, [DROP|SET] NOT NULL, VALIDATE, setval


# ---------------------------------------------------------------------------------------------------
# The migration


def _risk(drift: Drift, fix: Fix, statement: str, notes: list[str]) -> str | None:
    text = statement.upper()
    if re.search(r"\bDROP (TABLE|COLUMN)\b", text) or (drift.severity == "data-loss-risk" and "TYPE" in text):
        return "data-loss"
    if any(n.lower().startswith(("backfill", "check first")) for n in notes) or "SET NOT NULL" in text:
        return "backfill"
    return None


def database_fixes(drifts: Iterable[Drift]) -> list[tuple[Drift, Fix]]:
    """The database fix to use for each drift (the first one offered: renames offer two)."""
    out = []
    for d in drifts:
        fix = next((f for f in d.fixes if f.side == "database" and f.migration_sql), None)
        if fix is not None:
            out.append((d, fix))
    return out


def build_migration(fixes: list[tuple[Drift, Fix]], schemas: Iterable[Schema] = ()) -> list[MigrationStep]:
    """The steps of one re-runnable migration for these fixes: by phase, then by table dependency."""
    tables = [t for s in schemas for t in s.tables]
    order = {t.name: n for n, t in enumerate(dependency_order(tables))}

    def key(df: tuple[Drift, Fix]) -> tuple:
        d = df[0]
        table = d.object.split(".", 1)[0]
        rank = order.get(table, len(order))
        if PHASES.get(d.kind, 5) >= 10:
            rank = -rank  # drops: dependants first
        return PHASES.get(d.kind, 5), rank, d.object, d.kind

    steps: list[MigrationStep] = []
    seen: set[str] = set()
    for d, fix in sorted(fixes, key=key):
        statements, notes = split_fix_sql(fix.migration_sql)
        for n, statement in enumerate(statements):
            for sql, transactional in robust(statement):
                if sql in seen:
                    continue  # two fixes add the same FK (a missing column and its missing FK)
                seen.add(sql)
                risk = _risk(d, fix, statement, notes)
                steps.append(MigrationStep(sql=sql, transactional=transactional, drift=f"{d.object} {d.kind}",
                                           risk=risk, note="; ".join(notes) if notes and n == 0 else None))
    return steps


def transaction_blocks(steps: list[MigrationStep]) -> list[tuple[bool, list[MigrationStep]]]:
    """Runs of steps that share a transaction, and each step that must run outside one."""
    out: list[tuple[bool, list[MigrationStep]]] = []
    for st in steps:
        if out and st.transactional and out[-1][0]:
            out[-1][1].append(st)
        else:
            out.append((st.transactional, [st]))
    return out


def render_sql(steps: list[MigrationStep], title: str = "drift fixes") -> str:
    lines = [f"-- schema-architect: {title}. Re-runnable: if it stops, fix the cause and run it again.",
             "-- psql -v ON_ERROR_STOP=1 -f this.sql   (CONCURRENTLY steps run outside a transaction)",
             f"SET lock_timeout = '{LOCK_TIMEOUT}';", f"SET statement_timeout = '{STATEMENT_TIMEOUT}';"]
    for transactional, block in transaction_blocks(steps):
        lines.append("")
        if transactional:
            lines.append("BEGIN;")
        for st in block:
            head = f"-- {st.drift}" + (f" [{st.risk}]" if st.risk else "") + (f": {st.note}" if st.note else "")
            lines += [head, st.sql + ";"]
        if transactional:
            lines.append("COMMIT;")
    return "\n".join(lines) + "\n"


def _alembic_body(steps: list[MigrationStep]) -> list[str]:
    # SET lasts for the session, so it holds in the autocommit blocks too
    body = [f"    op.execute({f'SET lock_timeout = {literal(LOCK_TIMEOUT)}'!r})",
            f"    op.execute({f'SET statement_timeout = {literal(STATEMENT_TIMEOUT)}'!r})"]
    for transactional, block in transaction_blocks(steps):
        indent = "    " if transactional else "        "
        if not transactional:
            body.append("    with op.get_context().autocommit_block():")
        for st in block:
            body.append(f"{indent}# {st.drift}" + (f" [{st.risk}]" if st.risk else ""))
            body += [indent + line for line in op_call(st.sql).splitlines()]
    return body


def render_alembic(upgrade: list[MigrationStep], downgrade: list[MigrationStep] | None,
                   revision: str = "schema_architect_drift") -> str:
    """The steps as an Alembic revision: upgrade() and downgrade() in op.* calls, concurrent steps in
    autocommit_block."""
    down = _alembic_body(downgrade) if downgrade else [
        "    raise NotImplementedError('no way back was proven for this migration')"]
    up = _alembic_body(upgrade)
    dialect = ["from sqlalchemy.dialects import postgresql"] if any("postgresql." in ln for ln in up + down) else []
    return "\n".join([
        '"""schema-architect: the drift fixes, re-runnable.', "",
        f"Revision ID: {revision}", "Revises: set down_revision to your current head", '"""',
        "import sqlalchemy as sa", *dialect, "from alembic import op", "",
        f"revision = {revision!r}", "down_revision = None", "branch_labels = None", "depends_on = None", "", "",
        "def upgrade() -> None:", *up, "", "",
        "def downgrade() -> None:", *down, ""])


def called_out(steps: list[MigrationStep]) -> list[str]:
    return [f"[{st.risk}] {st.drift}: {st.sql.splitlines()[0][:160]}" + (f" ({st.note})" if st.note else "")
            for st in steps if st.risk]


#: Rules squawk may still raise on our migrations, and why each is inherent to the fix.
INHERENT = {
    "ban-drop-column": "the column is not in the reference: dropping it is the fix (marked data-loss)",
    "ban-drop-table": "the table is not in the reference: dropping it is the fix (marked data-loss)",
    "changing-column-type": "the type differs from the reference: ALTER COLUMN TYPE is the fix (lock notes say "
                            "when it rewrites)",
    "prefer-bigint-over-int": "the reference's type is integer; the migration follows the reference",
    "prefer-bigint-over-smallint": "the reference's type is smallint; the migration follows the reference",
    "prefer-identity": "the reference says serial; the migration follows the reference",
    "prefer-text-field": "the reference says varchar(n); the migration follows the reference",
    "prefer-timestamptz": "the reference says timestamp; the migration follows the reference",
    "adding-not-nullable-field": "SET NOT NULL runs after a validated CHECK (col IS NOT NULL), so it does not "
                                 "scan under ACCESS EXCLUSIVE; squawk cannot see the CHECK",
    "adding-field-with-default": "a constant default is a catalog change since PostgreSQL 11",
    "ban-drop-not-null": "the reference allows NULL here: DROP NOT NULL is the fix",
    "ban-drop-constraint": "a constraint is replaced (another ON DELETE, another CHECK) or not in the reference",
    "renaming-column": "the fix for a possible rename is the rename",
    "renaming-table": "the fix for a table-name drift is the rename",
    "disallowed-unique-constraint": "the unique constraint is attached USING INDEX built CONCURRENTLY",
    "ban-concurrent-index-creation-in-transaction": "squawk reads BEGIN ... COMMIT loosely; every CONCURRENTLY "
                                                    "step runs outside one",
    "transaction-nesting": "each BEGIN has its COMMIT; the SET lines run outside any transaction",
}


def lint(sql: str) -> tuple[dict[str, int], dict[str, str]] | None:
    """squawk's findings by rule, and why each is inherent; None when squawk is not installed."""
    import json
    import shutil
    import subprocess
    import sys
    import tempfile
    from pathlib import Path

    exe = shutil.which("squawk") or next((str(p) for p in [Path(sys.executable).with_name("squawk")] if p.exists()),
                                         None)
    if exe is None:
        return None
    with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as f:
        f.write(sql)
    try:
        run = subprocess.run([exe, "--reporter", "json", f.name], capture_output=True, text=True, timeout=60)
        found = json.loads(run.stdout or "[]")
    except (OSError, ValueError, subprocess.TimeoutExpired):
        return None
    finally:
        Path(f.name).unlink(missing_ok=True)
    counts: dict[str, int] = {}
    for item in found:
        counts[item["rule_name"]] = counts.get(item["rule_name"], 0) + 1
    return dict(sorted(counts.items())), {r: INHERENT.get(r, "not explained: please report it") for r in counts}

"""Issue 28: the migration as an Alembic revision in Alembic's own operations, each one the same statement
as our SQL, run by Alembic (twice: it is re-runnable), and every planted kind through the proof loop.

The "user's" database is a database of the test server with the differences of tests/planted.py; the
proof runs on the tool's scratch server. Alembic is a test dependency.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import psycopg
import pytest

from schema_architect.tools.drift.migration import MigrationStep, render_alembic
from schema_architect.tools.drift.revision import op_call

import planted

pytestmark = pytest.mark.anyio

#: The kinds issue 28's "Done means" lists, as the diff names them; each is planted once.
DONE_KINDS = {
    "missing-column", "extra-column", "column-type", "column-length", "nullability", "default", "fk-missing",
    "fk-on-delete", "index-missing", "index-order", "unique", "check", "missing-table", "extra-table",
    "timestamp-timezone",
}
#: Alembic operations the planted migration must use (not op.execute) where one says the statement.
EXPECTED_OPS = {"create_table", "drop_table", "add_column", "drop_column", "alter_column", "create_index",
                "drop_index", "drop_constraint"}


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    return planted.make_project(tmp_path_factory.mktemp("planted"))


@pytest.fixture(scope="module")
async def first(project: Path, make_database):
    return await planted.diff(project, make_database("planted_rev", planted.database_sql()))


def database_keys(result) -> set[tuple[str, str]]:
    return {(d.object, d.kind) for d in result.drifts if any(f.side == "database" for f in d.fixes)}


def statements(sql: str) -> list[str]:
    """The migration's statements, without its SET, BEGIN and COMMIT lines."""
    from pglast import parser

    return [s.strip() for s in parser.split(sql)
            if not re.match(r"\s*(SET|BEGIN|COMMIT)\b", s.split("\n")[-1]) and s.strip()]


def offline(call: str) -> str:
    """What Alembic emits for one op.* call in offline (--sql) mode."""
    import sqlalchemy as sa
    from alembic.migration import MigrationContext
    from alembic.operations import Operations
    from sqlalchemy.dialects import postgresql

    out = io.StringIO()
    context = MigrationContext.configure(dialect_name="postgresql", opts={"as_sql": True, "output_buffer": out})
    exec(call, {"op": Operations(context), "sa": sa, "postgresql": postgresql})  # noqa: S102 (our own render)
    return out.getvalue()


def tree(sql: str):
    """The parse tree, without source positions, pg_catalog.varchar read as varchar, and a column's
    constraints in one order (NOT NULL DEFAULT x and DEFAULT x NOT NULL are one statement)."""
    import json

    import pglast

    def clean(node):
        if isinstance(node, dict):
            out = {k: clean(v) for k, v in node.items() if "location" not in k and not k.startswith("rexpr_list")}
            if out.get("@") == "TypeName":
                out["names"] = [n for n in out["names"] if n != {"@": "String", "sval": "pg_catalog"}]
            if out.get("@") == "ColumnDef" and "constraints" in out:
                out["constraints"] = sorted(out["constraints"], key=json.dumps)
            return out
        if isinstance(node, (list, tuple)):
            return [clean(v) for v in node]
        return node

    return [clean(raw.stmt(skip_none=True)) for raw in pglast.parse_sql(sql)]


async def test_every_kind_of_the_issue_is_planted_found_and_proven(first) -> None:
    assert {kind for _, kind in planted.PLANTED_DRIFTS} >= DONE_KINDS
    found = {(d.object, d.kind): d for d in first.drifts}
    for key in planted.PLANTED_DRIFTS:
        assert key in found, (key, first.report)
        fixes = [f for f in found[key].fixes if f.side == "database"]
        assert fixes and all(f.proof == "proven" for f in fixes), (key, found[key].withheld)
    # the table only in the models (not in the spec either): a model or spec fix, nothing for the database
    notes = found[("notes", "extra-table")]
    assert {f.side for f in notes.fixes} == {"models", "spec"}, notes.withheld
    assert first.migration.proof == ("upgrade on the copy: the database needs no more fixes; downgrade on the "
                                     "copy: the diff equals the one we started from")
    sql = first.migration.sql
    assert "CREATE TABLE IF NOT EXISTS reminders" in sql and "DROP TABLE IF EXISTS audit_log" in sql


async def test_each_op_call_is_our_statement_as_alembic_emits_it(first) -> None:
    used = set()
    checked = 0
    for sql in statements(first.migration.sql) + statements(first.migration.downgrade_sql):
        call = op_call(sql)
        name = re.match(r"op\.(\w+)\(", call).group(1)
        used.add(name)
        if name == "execute":
            assert call == f"op.execute(sa.text({sql!r}))"
            continue
        emitted = offline(call)
        if name == "create_table":  # spelled differently (PRIMARY KEY (id), NOT NULL): the catalog is compared
            assert tree(emitted)[0]["if_not_exists"] and len(tree(emitted)) == 1, emitted  # in the test below
            continue
        assert tree(emitted) == tree(sql), (sql, call, emitted)
        checked += 1
    assert used >= EXPECTED_OPS, used
    assert checked >= 10


def test_op_calls_render_types_and_defaults_exactly() -> None:
    assert op_call("ALTER TABLE t ADD COLUMN IF NOT EXISTS at timestamptz NOT NULL DEFAULT now()") == (
        "op.add_column('t', sa.Column('at', sa.DateTime(timezone=True), server_default=sa.text('now()'), "
        "nullable=False), if_not_exists=True)")
    assert op_call("ALTER TABLE t ALTER COLUMN n TYPE numeric(10,2)") == (
        "op.alter_column('t', 'n', type_=sa.Numeric(10, 2))")
    assert op_call("ALTER TABLE t ALTER COLUMN d TYPE jsonb") == "op.alter_column('t', 'd', type_=postgresql.JSONB())"
    for sql in ["ALTER TABLE t ADD COLUMN IF NOT EXISTS at timestamptz NOT NULL DEFAULT now()",
                "ALTER TABLE t ALTER COLUMN n TYPE numeric(10,2)", "ALTER TABLE t ALTER COLUMN at TYPE timestamp",
                "ALTER TABLE t ALTER COLUMN d TYPE jsonb", "ALTER TABLE t ALTER COLUMN s SET DEFAULT 'x'",
                "CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS ix ON t USING hash (a) WHERE a > 0",
                "DROP INDEX CONCURRENTLY IF EXISTS ix", "ALTER TABLE t DROP CONSTRAINT IF EXISTS k"]:
        call = op_call(sql)
        assert not call.startswith("op.execute"), sql
        assert tree(offline(call)) == tree(sql), (sql, call, offline(call))
    # what no op.* argument says stays SQL: USING, DESC, an enum-typed column, a serial outside a key
    for sql in ["ALTER TABLE t ALTER COLUMN a TYPE text USING a::text",
                "CREATE INDEX CONCURRENTLY IF NOT EXISTS ix ON t (a DESC)",
                "ALTER TABLE t ADD COLUMN IF NOT EXISTS m mood", "ALTER TABLE t ADD COLUMN IF NOT EXISTS n serial",
                "ALTER TABLE t ADD CONSTRAINT k CHECK (a > 0) NOT VALID",
                "ALTER TYPE mood ADD VALUE IF NOT EXISTS 'ok'"]:
        assert op_call(sql) == f"op.execute(sa.text({sql!r}))", sql


def test_an_enum_label_runs_in_an_autocommit_block() -> None:
    steps = [MigrationStep(sql="ALTER TYPE mood ADD VALUE IF NOT EXISTS 'ok' AFTER 'sad'", transactional=False,
                           drift="mood enum-labels"),
             MigrationStep(sql="ALTER TABLE diary ADD COLUMN IF NOT EXISTS note text", transactional=True,
                           drift="diary.note missing-column")]
    text = render_alembic(steps, None)
    assert ("    with op.get_context().autocommit_block():\n        # mood enum-labels\n"
            "        op.execute(sa.text(\"ALTER TYPE mood ADD VALUE IF NOT EXISTS 'ok' AFTER 'sad'\"))\n") in text
    assert "    op.add_column('diary', sa.Column('note', sa.Text()), if_not_exists=True)\n" in text
    compile(text, "revision.py", "exec")


ENV_PY = '''
from alembic import context
from sqlalchemy import create_engine

url = context.config.get_main_option("sqlalchemy.url")
if context.is_offline_mode():
    context.configure(url=url, transactional_ddl=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    with create_engine(url).connect() as connection:
        context.configure(connection=connection, target_metadata=None, transactional_ddl=True)
        with context.begin_transaction():
            context.run_migrations()
'''


def alembic_config(tmp_path: Path, revision: str, url: str, output: io.StringIO | None = None):
    from alembic.config import Config

    scripts = tmp_path / "migrations"
    (scripts / "versions").mkdir(parents=True, exist_ok=True)
    (scripts / "env.py").write_text(ENV_PY)
    (scripts / "script.py.mako").write_text("")
    (scripts / "versions" / "0001_drift.py").write_text(revision)
    config = Config(output_buffer=output) if output is not None else Config()
    config.set_main_option("script_location", str(scripts))
    config.set_main_option("sqlalchemy.url", url.replace("postgresql://", "postgresql+psycopg://", 1))
    return config


def run_script(url: str, sql: str) -> None:
    from pglast import parser

    with psycopg.connect(url, autocommit=True) as conn:
        for statement in parser.split(sql):
            conn.execute(statement)


async def catalog(url: str):
    from schema_architect.tools.database.catalog import read_catalog

    schema = (await planted.database(url)(read_catalog)).schema
    return schema.model_dump(exclude={"source"}, mode="json")


TABLES = [
    "CREATE TABLE IF NOT EXISTS parents (id integer PRIMARY KEY, code char(3), body jsonb DEFAULT '{}'::jsonb)",
    ("CREATE TABLE IF NOT EXISTS children (id bigserial PRIMARY KEY, parent_id integer, token uuid NOT NULL, "
     "amount numeric(10,2) NOT NULL DEFAULT 0, at timestamp, CONSTRAINT uq_children_token UNIQUE (token), "
     "CONSTRAINT ck_children_amount CHECK (amount >= 0), "
     "FOREIGN KEY (parent_id) REFERENCES parents (id) ON DELETE SET NULL ON UPDATE CASCADE)"),
    ("CREATE TABLE IF NOT EXISTS links (parent_id integer NOT NULL, child_id bigint NOT NULL, "
     "PRIMARY KEY (parent_id, child_id), UNIQUE (child_id, parent_id))"),
]


async def test_create_table_builds_the_same_catalog_as_our_sql(make_database) -> None:
    """CREATE TABLE is spelled differently by Alembic (PRIMARY KEY (id), SERIAL): the catalogs are compared."""
    ours, theirs = make_database("tables_sql"), make_database("tables_alembic")
    for sql in TABLES:
        call = op_call(sql)
        assert call.startswith("op.create_table("), sql
        run_script(ours, sql)
        run_script(theirs, offline(call))
    built = await catalog(ours)
    assert [t["name"] for t in built["tables"]] and built == await catalog(theirs)


async def test_the_offline_revision_builds_the_same_database_as_the_sql(first, make_database, tmp_path: Path) -> None:
    """alembic upgrade --sql, run on one copy, and our SQL, run on another: the same catalog, up and down."""
    from alembic import command

    ours, theirs = (make_database(label, planted.database_sql()) for label in ("by_sql", "by_alembic_sql"))
    out = io.StringIO()
    config = alembic_config(tmp_path, first.migration.alembic, theirs, out)
    command.upgrade(config, "head", sql=True)
    up = out.getvalue()
    assert "CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_task_tags_tag_id ON task_tags (tag_id)" in up
    run_script(ours, first.migration.sql)
    run_script(theirs, up)
    with psycopg.connect(theirs, autocommit=True) as conn:
        conn.execute("DROP TABLE alembic_version")  # Alembic's bookkeeping, not the schema
    assert await catalog(ours) == await catalog(theirs)

    out.seek(0), out.truncate()
    command.downgrade(config, "head:base", sql=True)
    run_script(ours, first.migration.downgrade_sql)
    run_script(theirs, out.getvalue().replace("DELETE FROM alembic_version", "SELECT 1 -- ", 1))
    assert await catalog(ours) == await catalog(theirs)


async def test_alembic_runs_the_revision_up_twice_and_down_twice(first, project: Path, make_database,
                                                                 tmp_path: Path) -> None:
    """Online, as a user runs it: upgrade → clean; the same upgrade again (re-runnable) → still clean;
    downgrade → the diff we started from; the same downgrade again → unchanged."""
    from alembic import command

    url = make_database("alembic_twice", planted.database_sql())
    config = alembic_config(tmp_path, first.migration.alembic, url)
    start = database_keys(first)
    for _ in range(2):
        command.upgrade(config, "head")
        assert not database_keys(await planted.diff(project, url, prove=False))
        command.stamp(config, "base")  # Alembic's record says not run: the next upgrade runs it again
    command.stamp(config, "head")
    for _ in range(2):
        command.downgrade(config, "base")
        assert database_keys(await planted.diff(project, url, prove=False)) == start
        command.stamp(config, "head")


async def test_alembic_stopped_halfway_by_a_lock_then_run_again_completes(first, project: Path, make_database,
                                                                          tmp_path: Path) -> None:
    """Another session holds tags: the upgrade stops at the lock timeout after its first transaction has
    committed (the autocommit block before the CONCURRENTLY step commits it). Run again, it completes."""
    from alembic import command
    from sqlalchemy.exc import OperationalError

    url = make_database("alembic_halfway", planted.database_sql())
    config = alembic_config(tmp_path, first.migration.alembic, url)
    with psycopg.connect(url) as holder:
        holder.execute("LOCK TABLE tags IN ACCESS EXCLUSIVE MODE")
        with pytest.raises(OperationalError, match="lock timeout"):
            command.upgrade(config, "head")
        holder.rollback()
    halfway = database_keys(await planted.diff(project, url, prove=False))
    assert ("reminders", "missing-table") not in halfway and ("tags.(user_id, name)", "unique") in halfway
    command.upgrade(config, "head")
    assert not database_keys(await planted.diff(project, url, prove=False))

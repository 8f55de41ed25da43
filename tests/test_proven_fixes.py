"""Issue 28: every fix proven on a copy before it is offered, and one re-runnable migration for the whole
drift, as SQL and as an Alembic revision that Alembic runs.

The user's database is a database of the test server with one planted difference of each kind
(tests/planted.py); the proof runs on the tool's own scratch server (embedded PostgreSQL, started once
per process), never on the test server.
"""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
from mcp import Client

from schema_architect.server.app import create_server
from schema_architect.server.settings import Settings
from schema_architect.tools.drift import diff_schemas
from schema_architect.tools.drift.migration import robust
from schema_architect.tools.drift.proof import prove
from schema_architect.tools.models.reader import read_models
from schema_architect.tools.schema.model import Column, Enum, Schema, Table

import planted

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def user_db(make_database) -> str:
    return make_database("planted", planted.database_sql())


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    return planted.make_project(tmp_path_factory.mktemp("planted"))


async def diff(project: Path, url: str) -> dict:
    settings = Settings(project=project, database_url=url).model_copy(update={"page_bytes": 0})
    async with Client(create_server(settings)) as client:
        result = await client.call_tool("diff_models_vs_spec", {"include_database": True, "detail": "full"})
    assert not result.is_error, result.content
    return result.structured_content


def database_keys(data: dict) -> set[tuple[str, str]]:
    return {(d["object"], d["kind"]) for d in data["drifts"] if any(f["side"] == "database" for f in d["fixes"])}


@pytest.fixture(scope="module")
async def first(project: Path, user_db: str) -> dict:
    return await diff(project, user_db)


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


async def test_every_planted_kind_is_found_and_its_database_fix_proven(first: dict) -> None:
    found = {(d["object"], d["kind"]): d for d in first["drifts"]}
    assert set(found) >= planted.PLANTED_DRIFTS, first["report"]
    for key in planted.PLANTED_DRIFTS:
        fixes = [f for f in found[key]["fixes"] if f["side"] == "database"]
        assert fixes and all(f["proof"] == "proven" for f in fixes), (key, found[key]["withheld"])
        assert [f for f in found[key].get("withheld", []) if f["side"] == "database"] == []
    assert first["proof"].get("withheld", 0) == 0 and first["proof"].get("copy_differs", []) == []
    assert first["proof"]["proven"] >= len(planted.PLANTED_DRIFTS)
    assert ("notes", "extra-table") in found  # the table only in the models: nothing for the database
    assert first["verdict"] == "DRIFTED"


async def test_model_changes_and_spec_patches_are_proven_beside_the_database(first: dict) -> None:
    """The models' fix re-read from a copy; a spec patch that takes the database's version is proven and says
    that the models then need the same change (tests/test_proven_file_fixes.py has every model-fix kind)."""
    found = {(d["object"], d["kind"]): d for d in first["drifts"]}
    [notes] = [f for f in found[("notes", "extra-table")]["fixes"] if f["side"] == "models"]
    assert notes["proof"] == "proven", found[("notes", "extra-table")]
    [title] = [f for f in found[("tasks.title", "column-length")]["fixes"] if f["side"] == "spec"]
    assert title["proof"] == "proven" and "tasks.title column-length (models)" in title["proof_note"], title
    proof = first["proof"]
    assert proof["models_proven"] >= 1 and proof["spec_proven"] >= 1 and proof["models_runs"] >= 1
    assert "Proof on copies of the models and the spec:" in first["report"]
    for d in first["drifts"]:
        assert all(f["proof"] == "proven" for f in d["fixes"]), d
        assert all(f["proof"] == "withheld" and f["proof_note"] for f in d.get("withheld", [])), d


async def test_unique_keeps_its_declared_columns_order_and_name(first: dict) -> None:
    d = next(d for d in first["drifts"] if d["kind"] == "unique")
    assert d["object"] == "tags.(user_id, name)"
    sql = next(f for f in d["fixes"] if f["side"] == "database")["migration_sql"]
    assert "CREATE UNIQUE INDEX CONCURRENTLY uq_tags_user_name ON tags (user_id, name);" in sql
    assert "ADD CONSTRAINT uq_tags_user_name UNIQUE USING INDEX uq_tags_user_name" in sql


async def test_stamp_says_what_was_compared(first: dict) -> None:
    stamp = first["stamp"]
    assert stamp["spec_hash"].startswith("sha256:") and stamp["models_hash"].startswith("sha256:")
    assert stamp["sqlmodel"] and stamp["models_python"]
    assert stamp["database_version"] >= 150000 and stamp["catalog_hash"].startswith("sha256:")


async def test_the_migration_is_proven_rerunnable_and_linted(first: dict) -> None:
    m = first["migration"]
    assert m["proof"] == ("upgrade on the copy: the database needs no more fixes; downgrade on the copy: the diff "
                          "equals the one we started from"), m["proof"]
    sql = m["sql"]
    assert "SET lock_timeout" in sql and "SET statement_timeout" in sql
    assert "CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_task_tags_tag_id" in sql
    assert "DROP TABLE IF EXISTS audit_log" in sql and "ADD COLUMN IF NOT EXISTS due_date" in sql
    # CONCURRENTLY never inside BEGIN ... COMMIT
    inside = False
    for line in sql.splitlines():
        inside = True if line == "BEGIN;" else False if line == "COMMIT;" else inside
        assert not (inside and "CONCURRENTLY" in line and not line.startswith(("--", "DO "))), line
    assert any("[data-loss]" in c and "audit_log" in c for c in m["called_out"])
    assert any("[data-loss]" in c and "legacy_code" in c for c in m["called_out"])
    if m["lint"]:  # squawk installed (the test extra): what remains is explained
        assert "prefer-robust-stmts" not in m["lint"] and "require-lock-timeout" not in m["lint"]
        assert "require-statement-timeout" not in m["lint"]


def run_script(url: str, sql: str, stop_after: int | None = None) -> None:
    from pglast import parser

    statements = parser.split(sql)
    with psycopg.connect(url, autocommit=True) as conn:
        for n, statement in enumerate(statements):
            if stop_after is not None and n == stop_after:
                if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                    conn.execute("ROLLBACK")  # the connection dies mid-transaction
                return
            conn.execute(statement)


async def test_a_migration_stopped_halfway_then_run_again_completes(first: dict, project: Path, make_database) -> None:
    url = make_database("halfway", planted.database_sql())
    sql = first["migration"]["sql"]
    from pglast import parser

    statements = parser.split(sql)
    # stop just after the first CONCURRENTLY step: the transaction before it committed, the rest not run
    stop = next(n for n, s in enumerate(statements) if "CONCURRENTLY" in s and not s.startswith("DO")) + 1
    run_script(url, sql, stop_after=stop)
    run_script(url, sql)
    again = await diff(project, url)
    assert not database_keys(again) & planted.PLANTED_DRIFTS, again["report"]


ENV_PY = '''
from alembic import context
from sqlalchemy import create_engine

engine = create_engine(context.config.get_main_option("sqlalchemy.url"))
with engine.connect() as connection:
    context.configure(connection=connection, target_metadata=None, transactional_ddl=True)
    with context.begin_transaction():
        context.run_migrations()
'''


async def test_the_alembic_revision_runs_up_clean_and_down_to_the_start(first: dict, project: Path, make_database,
                                                                        tmp_path: Path) -> None:
    from alembic import command
    from alembic.config import Config

    url = make_database("alembic", planted.database_sql())
    scripts = tmp_path / "migrations"
    (scripts / "versions").mkdir(parents=True)
    (scripts / "env.py").write_text(ENV_PY)
    (scripts / "script.py.mako").write_text("")
    (scripts / "versions" / "0001_drift.py").write_text(first["migration"]["alembic"])
    config = Config()
    config.set_main_option("script_location", str(scripts))
    config.set_main_option("sqlalchemy.url", url.replace("postgresql://", "postgresql+psycopg://", 1))
    command.upgrade(config, "head")
    upgraded = await diff(project, url)
    assert not database_keys(upgraded), upgraded["report"]
    command.downgrade(config, "base")
    downgraded = await diff(project, url)
    assert database_keys(downgraded) == database_keys(first)


def test_robust_forms() -> None:
    assert robust("ALTER TABLE t DROP COLUMN c;") == [("ALTER TABLE t DROP COLUMN IF EXISTS c", True)]
    assert robust("DROP INDEX CONCURRENTLY ix;") == [("DROP INDEX CONCURRENTLY IF EXISTS ix", False)]
    [(guard, in_txn), (create, concurrent_in_txn)] = robust("CREATE INDEX CONCURRENTLY ix ON t (a, b);")
    assert in_txn and not concurrent_in_txn
    assert "NOT i.indisvalid" in guard and create == "CREATE INDEX CONCURRENTLY IF NOT EXISTS ix ON t (a, b)"
    [(add, in_txn)] = robust("ALTER TABLE t ADD CONSTRAINT k CHECK (a > 0) NOT VALID;")
    assert in_txn and add.startswith("DO $$") and "conname = 'k'" in add


async def test_enum_label_fix_is_proven_on_the_copy() -> None:
    def schema(labels: list[str]) -> Schema:
        return Schema(enums=[Enum(name="mood", values=labels)], tables=[Table(
            name="diary", primary_key=["id"], columns=[Column(name="id", type="integer", nullable=False),
                                                       Column(name="mood", type="mood")])])

    sides = {"spec": schema(["sad", "ok", "happy"]), "database": schema(["sad", "happy"])}
    result = diff_schemas(sides)
    report, migration = await prove(sides, result, lambda s: diff_schemas(s))
    d = next(d for d in result.drifts if d.kind == "enum-labels")
    fix = next(f for f in d.fixes if f.side == "database")
    assert fix.proof == "proven" and "ADD VALUE IF NOT EXISTS 'ok' AFTER 'sad'" in fix.migration_sql
    assert migration is not None and "needs no more fixes" in migration.proof
    # labels cannot be dropped in place: the way back is not complete, and says so
    assert "downgrade on the copy: differs from the start" in migration.proof


async def test_a_model_fix_keeps_nullability_and_is_one_line_per_column(tmp_path: Path) -> None:
    models = planted.MODELS.replace(
        'completed: bool = Field(default=False, sa_column_kwargs={"server_default": text("false")})',
        "completed: bool = Field(default=False)")
    project = planted.make_project(tmp_path)
    (project / "backend" / "models.py").write_text(models)
    from schema_architect.tools.spec.reader import parse_spec

    spec = parse_spec(planted.SPEC, "specs/database/schema.md").schema
    read = read_models(project)
    result = diff_schemas({"spec": spec, "models": read.schema})
    d = next(d for d in result.drifts if d.object == "tasks.completed" and d.kind == "default")
    change = next(f for f in d.fixes if f.side == "models").model_change
    assert change.startswith("completed: bool = Field(") and "| None" not in change, change
    # applied to a copy of the models and re-read with the project's interpreter: the drift is gone and
    # nothing else about the column changed
    copy = tmp_path / "copy"
    planted.make_project(copy)
    (copy / "backend" / "models.py").write_text(models.replace("completed: bool = Field(default=False)", change))
    again = read_models(copy)
    after = diff_schemas({"spec": spec, "models": again.schema})
    assert not [x for x in after.drifts if x.object == "tasks.completed"]
    before_col = read.schema.table("tasks").column("completed")
    after_col = again.schema.table("tasks").column("completed")
    assert after_col.nullable == before_col.nullable is False
    # the tool proves the same fix itself, on its own copy, before offering it
    from schema_architect.tools.diff_models_vs_spec import diff_project

    data = await diff_project(project=project, spec_path=None, models=None, include_database=False, tables=None)
    d = next(d for d in data.drifts if d.object == "tasks.completed" and d.kind == "default")
    [fix] = [f for f in d.fixes if f.side == "models"]
    assert fix.model_change == change and fix.proof == "proven", fix


async def test_two_drifts_on_one_column_give_one_model_change(tmp_path: Path) -> None:
    """completed loses both its NOT NULL and its default in the models: two drifts, one model line that
    restores both (and changes nothing else)."""
    models = planted.MODELS.replace(
        'completed: bool = Field(default=False, sa_column_kwargs={"server_default": text("false")})',
        "completed: bool | None = Field(default=None)", 1)
    assert models != planted.MODELS
    project = planted.make_project(tmp_path)
    (project / "backend" / "models.py").write_text(models)
    from schema_architect.tools.spec.reader import parse_spec

    spec = parse_spec(planted.SPEC, "specs/database/schema.md").schema
    result = diff_schemas({"spec": spec, "models": read_models(project).schema})
    changes = {f.model_change for d in result.drifts if d.object == "tasks.completed"
               for f in d.fixes if f.side == "models"}
    kinds = {d.kind for d in result.drifts if d.object == "tasks.completed"}
    assert {"default", "nullability"} <= kinds, kinds
    assert len(changes) == 1, changes
    [change] = changes
    assert change.startswith("completed: bool = Field(") and "server_default" in change and "None" not in change

"""The diff engine over hand-built Schemas: agreement is clean, each drift kind is found once, with
both sides' values and locations and a fix per side whose SQL PostgreSQL's parser accepts."""

from __future__ import annotations

import pglast
import pytest

from schema_architect.tools.database.expressions import norm_default, norm_expr
from schema_architect.tools.drift import DiffResult, Drift, diff_schemas, differences
from schema_architect.tools.schema.model import (
    Check,
    Column,
    Enum,
    ForeignKey,
    Index,
    IndexColumn,
    Location,
    Schema,
    Table,
    UniqueConstraint,
)
from schema_architect.tools.spec.reader import parse_spec

SPEC = "specs/database/schema.md"
MODELS = "backend/models.py"
DB = "database"


def loc(file: str, line: int | None = None) -> Location:
    return Location(file=file, line=line)


def col(name: str, type_: str, file: str, line: int | None = None, **kw) -> Column:
    return Column(name=name, type=type_, location=loc(file, line), **kw)


# ---------------------------------------------------------------------------------------------------
# One todo app, spelled the way each reader produces it


def spec_schema() -> Schema:
    f = SPEC
    tasks = Table(
        name="tasks",
        location=loc(f, 10),
        columns=[
            col("id", "integer", f, 14, identity="serial", nullable=False, primary_key=True),
            col("user_id", "varchar", f, 15, nullable=False),
            col("title", "varchar(200)", f, 16, nullable=False),
            col("description", "text", f, 17),
            col("priority", "varchar(20)", f, 18, nullable=False, default="'medium'",
                allowed_values=["low", "medium", "high"]),
            col("completed", "boolean", f, 19, nullable=False, default="false"),
            col("slug", "varchar(100)", f, 20, unique=True),
            col("created_at", "timestamptz", f, 21, nullable=False, default="now()"),
        ],
        primary_key=["id"],
        foreign_keys=[ForeignKey(columns=["user_id"], ref_table="users", on_delete="CASCADE",
                                 location=loc(f, 15))],
        checks=[Check(expression="length(title) > 0", columns=["title"], location=loc(f, 24))],
        indexes=[
            Index(name="idx_tasks_user_id", columns=[IndexColumn(name="user_id")], location=loc(f, 27),
                  reason="list a user's tasks"),
            Index(name="idx_tasks_user_created",
                  columns=[IndexColumn(name="user_id"), IndexColumn(name="created_at", descending=True)],
                  location=loc(f, 28)),
        ],
    )
    users = Table(name="users", managed_by="better-auth", location=loc(f, 3),
                  columns=[col("id", "text", f, 5, nullable=False, primary_key=True)], primary_key=["id"])
    return Schema(tables=[users, tasks], source=f)


def models_schema() -> Schema:
    """What the models reader gives for the same design: unique index, unnamed FK, server defaults."""
    f = MODELS
    tasks = Table(
        name="tasks",
        location=loc(f, 20),
        columns=[
            col("id", "integer", f, 22, identity="serial", nullable=True, primary_key=True),  # PK wins
            col("user_id", "varchar", f, 23, nullable=False),
            col("title", "VARCHAR(200)", f, 24, nullable=False),
            col("description", "text", f, 25),
            col("priority", "varchar(20)", f, 26, nullable=False, default="'medium'"),
            col("completed", "boolean", f, 27, nullable=False, default="false"),
            col("slug", "varchar(100)", f, 28),
            col("created_at", "timestamptz", f, 29, nullable=False, default="CURRENT_TIMESTAMP"),
        ],
        primary_key=["id"],
        foreign_keys=[ForeignKey(columns=["user_id"], ref_table="users", on_delete="CASCADE")],
        checks=[Check(expression="priority IN ('low', 'medium', 'high')"),
                Check(expression="LENGTH(title) > 0")],
        indexes=[
            Index(name="idx_tasks_user_id", columns=[IndexColumn(name="user_id")], location=loc(f, 23)),
            Index(name="idx_tasks_user_created",
                  columns=[IndexColumn(name="user_id"), IndexColumn(name="created_at", descending=True,
                                                                     nulls_first=True)]),
            Index(name="ix_tasks_slug", columns=[IndexColumn(name="slug")], unique=True),
        ],
    )
    user = Table(name="user", columns=[col("id", "varchar", f, 5, nullable=False)], primary_key=["id"])
    return Schema(tables=[user, tasks], source="models")


def database_schema() -> Schema:
    """The catalog's spelling: casts, CURRENT_TIMESTAMP, PG's constraint names, the PK's index."""
    d = DB
    tasks = Table(
        name="tasks",
        location=loc(d),
        columns=[
            col("id", "integer", d, nullable=False, default="nextval('tasks_id_seq'::regclass)"),
            col("user_id", "character varying", d, nullable=False),
            col("title", "character varying(200)", d, nullable=False),
            col("description", "text", d),
            col("priority", "character varying(20)", d, nullable=False,
                default="'medium'::character varying"),
            col("completed", "boolean", d, nullable=False, default="'false'::boolean"),
            col("slug", "character varying(100)", d),
            col("created_at", "timestamp with time zone", d, nullable=False, default="CURRENT_TIMESTAMP"),
        ],
        primary_key=["id"],
        foreign_keys=[ForeignKey(name="tasks_user_id_fkey", columns=["user_id"], ref_table="users",
                                 on_delete="CASCADE", on_update="NO ACTION", location=loc(d))],
        unique_constraints=[UniqueConstraint(name="tasks_slug_key", columns=["slug"])],
        checks=[
            Check(name="tasks_priority_check",
                  expression="((priority)::text = ANY ((ARRAY['low'::character varying, "
                             "'medium'::character varying, 'high'::character varying])::text[]))"),
            Check(name="tasks_title_check", expression="(length((title)::text) > 0)"),
        ],
        indexes=[
            Index(name="tasks_pkey", columns=[IndexColumn(name="id")], unique=True, primary=True),
            Index(name="tasks_slug_key", columns=[IndexColumn(name="slug")], unique=True,
                  constraint="tasks_slug_key"),
            Index(name="idx_tasks_user_id", columns=[IndexColumn(name="user_id")], location=loc(d)),
            Index(name="idx_tasks_user_created",
                  columns=[IndexColumn(name="user_id"), IndexColumn(name="created_at", descending=True)],
                  location=loc(d)),
        ],
    )
    user = Table(name="user", columns=[col("id", "text", d, nullable=False)], primary_key=["id"])
    return Schema(tables=[user, tasks], source="postgresql://localhost/app")


# ---------------------------------------------------------------------------------------------------
# Helpers


def edit_table(schema: Schema, table: str, /, **changes) -> Schema:
    tables = [t.model_copy(update=changes) if t.name == table else t for t in schema.tables]
    return schema.model_copy(update={"tables": tables})


def edit_column(schema: Schema, table: str, column: str, /, **changes) -> Schema:
    t = schema.table(table)
    cols = [c.model_copy(update=changes) if c.name == column else c for c in t.columns]
    return edit_table(schema, table, columns=cols)


def drop_column(schema: Schema, table: str, column: str) -> Schema:
    t = schema.table(table)
    return edit_table(schema, table, columns=[c for c in t.columns if c.name != column])


def check_fixes_parse(result: DiffResult) -> None:
    """Every migration_sql PostgreSQL's own parser accepts (comments included)."""
    for d in result.drifts:
        for fx in d.fixes:
            if fx.migration_sql:
                pglast.parse_sql(fx.migration_sql)


def only(result: DiffResult, kind: str | None = None) -> Drift:
    check_fixes_parse(result)
    found = [d for d in result.drifts if kind is None or d.kind == kind]
    assert len(found) == 1, [(d.object, d.kind, d.message) for d in result.drifts]
    return found[0]


def fix(d: Drift, side: str, n: int = 0):
    return [f for f in d.fixes if f.side == side][n]


def run(**sides) -> DiffResult:
    r = diff_schemas(sides)
    check_fixes_parse(r)
    return r


# ---------------------------------------------------------------------------------------------------
# Agreement is clean


@pytest.mark.parametrize("names", [("spec", "models"), ("spec", "database"), ("models", "database"),
                                   ("spec", "models", "database")])
def test_identical_schemas_are_clean(names):
    s = spec_schema()
    r = diff_schemas({n: s for n in names})
    assert r.drifts == [] and r.clean
    assert r.reference == names[0]
    assert r.summary == {"breaking": 0, "data-loss-risk": 0, "degraded": 0, "cosmetic": 0, "info": 0}


def test_equivalent_spellings_are_clean_across_three_sides():
    # PK index implied, unique flag vs unique index vs unique constraint, default and CHECK spellings,
    # serial as nextval(), catalog type names, user vs users (Better Auth, skipped).
    r = diff_schemas({"spec": spec_schema(), "models": models_schema(), "database": database_schema()})
    assert r.drifts == [], [(d.object, d.kind, d.message) for d in r.drifts]
    assert r.clean
    assert r.managed_elsewhere == ["user", "users"]


def test_a_spec_column_of_unknown_type_is_no_type_drift():
    """The spec names a column without a type (read as "unknown"): it says nothing to disagree with, so the
    models' type is no drift; a real type difference on another side is still found."""
    def retyped(schema: Schema, type_: str) -> Schema:
        tasks = next(t for t in schema.tables if t.name == "tasks")
        tasks.column("title").type = type_
        return schema

    spec = retyped(spec_schema(), "unknown")
    r = diff_schemas({"spec": spec, "models": models_schema()})
    assert not [d for d in r.drifts if d.object == "tasks.title" and d.kind.startswith("column")]
    r = diff_schemas({"spec": spec, "models": retyped(models_schema(), "integer"), "database": models_schema()})
    assert [d.kind for d in r.drifts if d.object == "tasks.title" and d.kind == "column-type"] == ["column-type"]


def test_models_vs_database_without_spec_are_clean():
    r = diff_schemas({"models": models_schema(), "database": database_schema()})
    # The models' user is a stub (its id only) that tasks.user_id references: Better Auth's table, not
    # ours (issue 26). varchar vs text on its key is no difference our FKs depend on: info, listed only
    # with include_managed.
    assert r.reference == "models" and r.clean and r.drifts == []
    assert r.better_auth["user"].startswith("our tables' owner column references user and the models have only "
                                            "a stub of it")
    r = diff_schemas({"models": models_schema(), "database": database_schema()}, include_managed=True)
    assert [(d.object, d.severity) for d in r.drifts] == [("user.id", "info")] and r.clean


def test_index_name_only_is_cosmetic_and_still_clean():
    db = database_schema()
    t = db.table("tasks")
    idx = [i.model_copy(update={"name": "ix_tasks_user_id"}) if i.name == "idx_tasks_user_id" else i
           for i in t.indexes]
    r = run(spec=spec_schema(), database=edit_table(db, "tasks", indexes=idx))
    d = only(r)
    assert (d.object, d.kind, d.severity) == ("tasks.idx_tasks_user_id", "index-name", "cosmetic")
    assert r.clean
    assert "ALTER INDEX ix_tasks_user_id RENAME TO idx_tasks_user_id" in fix(d, "database").migration_sql


def test_unique_constraint_matches_unique_index_by_column_set_not_name():
    spec = edit_table(spec_schema(), "tasks", unique_constraints=[UniqueConstraint(columns=["user_id", "title"])])
    db = database_schema()
    t = db.table("tasks")
    db = edit_table(db, "tasks", indexes=[*t.indexes, Index(name="whatever", unique=True, columns=[
        IndexColumn(name="title"), IndexColumn(name="user_id")])])
    assert run(spec=spec, database=db).drifts == []


# ---------------------------------------------------------------------------------------------------
# Table-level kinds


def test_missing_table_in_database_is_breaking_with_create_table():
    spec = spec_schema()
    db = database_schema().model_copy(update={"tables": [database_schema().table("user")]})
    d = only(run(spec=spec, database=db), "missing-table")
    assert (d.object, d.severity) == ("tasks", "breaking")
    assert d.sides["spec"].value == "tasks" and d.sides["spec"].location == loc(SPEC, 10)
    assert d.sides["database"].value is None
    sql = fix(d, "database").migration_sql
    assert sql.startswith("CREATE TABLE tasks (") and "REFERENCES users (id) ON DELETE CASCADE" in sql
    assert "CREATE INDEX idx_tasks_user_created ON tasks (user_id, created_at DESC)" in sql


def test_missing_table_in_models_gets_a_class():
    models = models_schema().model_copy(update={"tables": [models_schema().table("user")]})
    d = only(run(spec=spec_schema(), models=models), "missing-table")
    code = fix(d, "models").model_change
    assert 'class Tasks(SQLModel, table=True):\n    __tablename__ = "tasks"' in code
    # The spec names its index idx_tasks_user_id: index=True would come back as ix_tasks_user_id.
    assert 'user_id: str = Field(foreign_key="users.id", ondelete="CASCADE")' in code
    assert "Index('idx_tasks_user_id', 'user_id')" in code
    assert "title: str = Field(max_length=200)" in code


def test_extra_table_in_database_is_data_loss_risk_and_offers_spec_section():
    db = database_schema()
    extra = Table(name="audit_log", location=loc(DB), columns=[col("id", "bigint", DB, nullable=False)],
                  primary_key=["id"])
    d = only(run(spec=spec_schema(), database=db.model_copy(update={"tables": [*db.tables, extra]})))
    assert (d.object, d.kind, d.severity) == ("audit_log", "extra-table", "data-loss-risk")
    assert fix(d, "database").migration_sql == "DROP TABLE audit_log;"
    assert fix(d, "spec").spec_patch.startswith("## Table: audit_log\n\n| Column | Type | Constraints | Description |")
    patch = fix(d, "spec").spec_patch  # the canonical section, as propose_table writes one: it reads back
    assert "| id | bigint | PRIMARY KEY |  |" in patch
    assert [c.name for c in parse_spec(patch).schema.table("audit_log").columns] == ["id"]


def test_table_only_in_models_is_breaking_against_the_database():
    m = models_schema()
    extra = Table(name="tag", columns=[col("id", "integer", MODELS, 40, identity="serial")], primary_key=["id"])
    d = only(run(spec=spec_schema(), models=m.model_copy(update={"tables": [*m.tables, extra]}),
                 database=database_schema()))
    assert (d.kind, d.severity) == ("extra-table", "breaking")
    assert d.sides["models"].location == loc(MODELS) or d.sides["models"].value == "tag"


def test_implicit_singular_table_name_is_one_table_name_drift():
    models = edit_table(models_schema(), "tasks", name="task")
    r = run(spec=spec_schema(), models=models)
    d = only(r)
    assert (d.object, d.kind, d.severity) == ("tasks", "table-name", "degraded")
    assert d.sides["spec"].value == "tasks" and d.sides["models"].value == "task"
    assert "implicit table name task" in d.message
    assert fix(d, "models").model_change.startswith('__tablename__ = "tasks"')


def test_table_name_differing_between_models_and_database_is_breaking():
    models = edit_table(models_schema(), "tasks", name="task")
    d = only(run(spec=spec_schema(), models=models, database=database_schema()), "table-name")
    assert d.severity == "breaking"
    assert fix(d, "models").model_change.startswith('__tablename__ = "tasks"')
    assert not [f for f in d.fixes if f.side == "database"]


def test_primary_key_difference_is_breaking():
    db = edit_table(database_schema(), "tasks", primary_key=["id", "user_id"])
    d = only(run(spec=spec_schema(), database=db), "primary-key")
    assert (d.object, d.severity) == ("tasks", "breaking")
    assert d.sides["spec"].value == "(id)" and d.sides["database"].value == "(id, user_id)"
    assert "PRIMARY KEY USING INDEX" in fix(d, "database").migration_sql


# ---------------------------------------------------------------------------------------------------
# Columns: presence and renames


def test_missing_owner_column_in_database_is_breaking_and_backfilled():
    d = only(run(spec=spec_schema(), database=drop_column(database_schema(), "tasks", "user_id")),
             "missing-column")
    assert (d.object, d.severity) == ("tasks.user_id", "breaking")
    assert "owner column" in d.message
    sql = fix(d, "database").migration_sql
    assert "ADD COLUMN user_id varchar;" in sql and "SET NOT NULL" in sql
    assert "NOT VALID" in sql and "VALIDATE CONSTRAINT tasks_user_id_fkey" in sql


def test_extra_column_in_database_is_data_loss_risk():
    db = database_schema()
    db = edit_table(db, "tasks", columns=[*db.table("tasks").columns, col("archived_at", "timestamptz", DB)])
    d = only(run(spec=spec_schema(), database=db))
    assert (d.object, d.kind, d.severity) == ("tasks.archived_at", "extra-column", "data-loss-risk")
    assert fix(d, "database").migration_sql == "ALTER TABLE tasks DROP COLUMN archived_at;"
    assert fix(d, "spec").spec_patch == "| archived_at | TIMESTAMPTZ |  |  |"


@pytest.mark.parametrize("spec_name,model_name", [("user_id", "owner_id"), ("password_hash", "hashed_password")])
def test_possible_rename_is_suggested_with_both_fixes(spec_name, model_name):
    spec, models = spec_schema(), models_schema()
    if spec_name != "user_id":  # add the column to both sides under different names
        spec = edit_table(spec, "tasks", columns=[*spec.table("tasks").columns,
                                                  col(spec_name, "varchar(255)", SPEC, 30, nullable=False)])
        models = edit_table(models, "tasks", columns=[*models.table("tasks").columns,
                                                      col(model_name, "varchar", MODELS, 31, nullable=False)])
    else:
        models = edit_column(models, "tasks", "user_id", name="owner_id")
        models = edit_table(models, "tasks", foreign_keys=[], indexes=[
            i for i in models.table("tasks").indexes if "user_id" not in i.column_names])
    r = run(spec=spec, models=models)
    d = next(d for d in r.drifts if d.kind == "possible-rename")
    assert d.object == f"tasks.{spec_name}" and "Possibly renamed" in d.message
    assert not [x for x in r.drifts if x.kind in ("missing-column", "extra-column")]
    assert d.sides["spec"].location.line in (15, 30)
    rename, add_drop = fix(d, "models", 0), fix(d, "models", 1)
    assert rename.model_change.startswith(f"{spec_name}: str") and f"# was: {model_name}" in rename.model_change
    assert "delete the field " + model_name in add_drop.model_change


def test_possible_rename_in_database_renames_column():
    db = edit_column(database_schema(), "tasks", "user_id", name="owner_id")
    db = edit_table(db, "tasks", foreign_keys=[], indexes=[
        i for i in db.table("tasks").indexes if "user_id" not in i.column_names])
    r = run(spec=spec_schema(), database=db)
    d = next(d for d in r.drifts if d.kind == "possible-rename")
    assert fix(d, "database", 0).migration_sql == "ALTER TABLE tasks RENAME COLUMN owner_id TO user_id;"
    assert "DROP COLUMN owner_id" in fix(d, "database", 1).migration_sql
    assert fix(d, "database", 0).alembic_op == "op.alter_column('tasks', 'owner_id', new_column_name='user_id')"


def test_unrelated_columns_of_other_types_are_not_renames():
    # completed (boolean) in the spec, status (varchar) in the models: a missing + an extra column
    models = edit_column(models_schema(), "tasks", "completed", name="status", type="varchar(20)", default=None)
    r = run(spec=spec_schema(), models=models)
    assert sorted((d.object, d.kind) for d in r.drifts) == [
        ("tasks.completed", "missing-column"), ("tasks.status", "extra-column")]


# ---------------------------------------------------------------------------------------------------
# Columns: type, length, time zone


def test_varchar_length_vs_unbounded_str_is_column_length():
    models = edit_column(models_schema(), "tasks", "title", type="varchar")
    d = only(run(spec=spec_schema(), models=models))
    assert (d.object, d.kind, d.severity) == ("tasks.title", "column-length", "data-loss-risk")
    assert d.sides["spec"].value == "varchar(200)" and d.sides["spec"].location == loc(SPEC, 16)
    assert d.sides["models"].value == "varchar" and d.sides["models"].location == loc(MODELS, 24)
    assert fix(d, "models").model_change == "title: str = Field(max_length=200)"
    assert fix(d, "spec").spec_patch == "| title | VARCHAR | NOT NULL |  |"


def test_database_narrower_than_spec_is_breaking_and_widening_skips_rewrite():
    db = edit_column(database_schema(), "tasks", "title", type="varchar(100)")
    d = only(run(spec=spec_schema(), database=db))
    assert (d.kind, d.severity) == ("column-length", "breaking")
    f = fix(d, "database")
    assert f.migration_sql == "ALTER TABLE tasks ALTER COLUMN title TYPE varchar(200);"
    assert "no rewrite" in f.lock_notes
    assert f.alembic_op == "op.alter_column('tasks', 'title', type_=sa.String(200))"


def test_narrowing_database_column_checks_lengths_first():
    db = edit_column(database_schema(), "tasks", "title", type="text")
    d = only(run(spec=spec_schema(), database=db))
    assert (d.kind, d.severity) == ("column-length", "data-loss-risk")
    sql = fix(d, "database").migration_sql
    assert "WHERE length(title) > 200" in sql and "rewrites the table" in fix(d, "database").lock_notes


def test_text_vs_unbounded_varchar_is_cosmetic_column_type():
    models = edit_column(models_schema(), "tasks", "description", type="varchar")
    r = run(spec=spec_schema(), models=models)
    d = only(r)
    assert (d.object, d.kind, d.severity) == ("tasks.description", "column-type", "cosmetic")
    assert r.clean
    assert fix(d, "models").model_change == "description: str | None = Field(default=None, sa_type=Text)"


def test_id_type_change_is_breaking_column_type():
    db = edit_column(database_schema(), "tasks", "user_id", type="uuid")
    d = only(run(spec=spec_schema(), database=db))
    assert (d.kind, d.severity) == ("column-type", "breaking")
    assert fix(d, "database").migration_sql == \
        "ALTER TABLE tasks ALTER COLUMN user_id TYPE varchar USING user_id::varchar;"


def test_naive_timestamp_is_timestamp_timezone_drift():
    models = edit_column(models_schema(), "tasks", "created_at", type="timestamp")
    db = edit_column(database_schema(), "tasks", "created_at", type="timestamp without time zone")
    d = only(run(spec=spec_schema(), models=models, database=db))
    assert (d.object, d.kind, d.severity) == ("tasks.created_at", "timestamp-timezone", "data-loss-risk")
    assert set(d.sides) == {"spec", "models", "database"}
    assert d.sides["database"].value == "timestamp"
    assert "USING created_at AT TIME ZONE 'UTC'" in fix(d, "database").migration_sql
    assert fix(d, "models").model_change.startswith("created_at: datetime = Field(")


# ---------------------------------------------------------------------------------------------------
# Columns: nullability, default, identity, value sets


def test_nullable_in_database_uses_not_valid_check_then_set_not_null():
    db = edit_column(database_schema(), "tasks", "title", nullable=True)
    d = only(run(spec=spec_schema(), database=db))
    assert (d.kind, d.severity) == ("nullability", "degraded")
    assert d.sides["spec"].value == "NOT NULL" and d.sides["database"].value == "NULL"
    f = fix(d, "database")
    assert "CHECK (title IS NOT NULL) NOT VALID" in f.migration_sql and "SET NOT NULL" in f.migration_sql
    assert "scans" in f.lock_notes


def test_nullable_owner_column_is_breaking():
    models = edit_column(models_schema(), "tasks", "user_id", nullable=True)
    assert only(run(spec=spec_schema(), models=models)).severity == "breaking"


def test_primary_key_implies_not_null():
    models = edit_column(models_schema(), "tasks", "id", nullable=True)
    assert run(spec=spec_schema(), models=models).drifts == []


def test_python_only_default_is_cosmetic_and_reported_once():
    models = edit_column(models_schema(), "tasks", "completed", default=None)
    db = edit_column(database_schema(), "tasks", "completed", default=None)
    r = run(spec=spec_schema(), models=models, database=db)
    d = only(r)
    assert (d.object, d.kind) == ("tasks.completed", "default")
    assert d.severity == "degraded"  # the database has none either: raw inserts get NULL and fail
    assert "Python-side only" in d.message
    assert fix(d, "models").model_change == (
        "completed: bool = Field(sa_column_kwargs={\"server_default\": text('false')})")
    assert fix(d, "database").migration_sql == "ALTER TABLE tasks ALTER COLUMN completed SET DEFAULT false;"
    only_models = run(spec=spec_schema(), models=models)
    assert only(only_models).severity == "cosmetic" and only_models.clean


def test_different_default_values_are_degraded():
    db = edit_column(database_schema(), "tasks", "priority", default="'low'::character varying")
    d = only(run(spec=spec_schema(), database=db))
    assert (d.kind, d.severity) == ("default", "degraded")
    assert d.sides["database"].value == "'low'::character varying"


def test_identity_missing_is_breaking():
    db = edit_column(database_schema(), "tasks", "id", default=None)
    d = only(run(spec=spec_schema(), database=db))
    assert (d.kind, d.severity) == ("identity", "breaking")
    assert "CREATE SEQUENCE IF NOT EXISTS tasks_id_seq OWNED BY tasks.id;" in fix(d, "database").migration_sql


def test_serial_vs_identity_is_cosmetic():
    db = edit_column(database_schema(), "tasks", "id", default=None, identity="identity by default")
    d = only(run(spec=spec_schema(), database=db))
    assert (d.kind, d.severity) == ("identity", "cosmetic")


def test_check_value_set_differs():
    models = edit_table(models_schema(), "tasks", checks=[
        Check(expression="priority IN ('low', 'high')", location=loc(MODELS, 35)),
        Check(expression="length(title) > 0")])
    d = only(run(spec=spec_schema(), models=models))
    assert (d.object, d.kind, d.severity) == ("tasks.priority", "check", "breaking")
    assert d.sides["spec"].value == "high, low, medium" and d.sides["models"].value == "high, low"
    assert "CheckConstraint(\"priority IN ('high', 'low', 'medium')\"" in fix(d, "models").model_change


def test_missing_value_set_check_in_database():
    db = edit_table(database_schema(), "tasks", checks=[database_schema().table("tasks").checks[1]])
    d = only(run(spec=spec_schema(), database=db))
    assert (d.kind, d.severity) == ("check", "degraded")
    assert d.sides["database"].value is None
    assert "ADD CONSTRAINT tasks_priority_check CHECK (priority IN ('high', 'low', 'medium')) NOT VALID" in \
        fix(d, "database").migration_sql


def test_enum_member_names_vs_spec_values():
    # class Priority(str, Enum): LOW = "low" ... -> PostgreSQL labels are LOW, MEDIUM, HIGH
    models = edit_column(models_schema(), "tasks", "priority", type="priority", default=None)
    models = models.model_copy(update={"enums": [Enum(name="priority", values=["LOW", "MEDIUM", "HIGH"])]})
    models = edit_table(models, "tasks", checks=[Check(expression="length(title) > 0")])
    r = run(spec=spec_schema(), models=models)
    kinds = {d.kind: d for d in r.drifts}
    assert kinds["enum-labels"].object == "tasks.priority" and kinds["enum-labels"].severity == "breaking"
    assert "member names" in kinds["enum-labels"].message
    assert kinds["column-type"].severity == "degraded"  # varchar + CHECK vs a native enum


PRIORITY_CK = Check(name="ck_tasks_priority", expression="priority IN ('low', 'medium', 'high')",
                    columns=["priority"], location=loc(SPEC, 25))


def _priority_as_enum(schema: Schema, *, keep_checks: bool = False) -> Schema:
    """priority as a native enum with the spec's labels, its CHECK gone (the enum enforces the set)."""
    schema = edit_column(schema, "tasks", "priority", type="priority", default=None)
    schema = schema.model_copy(update={"enums": [Enum(name="priority", values=["low", "medium", "high"])]})
    if keep_checks:
        return schema
    checks = [ck for ck in schema.table("tasks").checks if "priority" not in ck.expression.lower()]
    return edit_table(schema, "tasks", checks=checks)


def test_enum_back_to_varchar_brings_the_check_the_enum_stood_for():
    spec = edit_table(spec_schema(), "tasks", checks=[*spec_schema().table("tasks").checks, PRIORITY_CK])
    r = run(spec=spec, models=_priority_as_enum(models_schema()), database=_priority_as_enum(database_schema()))
    assert not [d for d in r.drifts if d.kind in ("check", "enum-labels")]  # the same value set
    d = only(r, "column-type")
    assert (d.object, d.severity) == ("tasks.priority", "degraded")
    field, note, args = fix(d, "models").model_change.splitlines()
    assert field.startswith("priority: str = Field(max_length=20")
    assert note.startswith("# and add to the class's __table_args__")
    assert args == ("__table_args__ = (CheckConstraint(\"priority IN ('low', 'medium', 'high')\", "
                    "name='ck_tasks_priority'),)")
    assert "CHECK ck_tasks_priority" in fix(d, "models").action
    db = fix(d, "database")
    assert db.migration_sql.splitlines() == [
        "ALTER TABLE tasks ALTER COLUMN priority TYPE varchar(20) USING priority::varchar(20);",
        "ALTER TABLE tasks ADD CONSTRAINT ck_tasks_priority CHECK (priority IN ('low', 'medium', 'high')) NOT VALID;",
        "ALTER TABLE tasks VALIDATE CONSTRAINT ck_tasks_priority;",
        "-- then, once no column uses it: DROP TYPE priority;"]
    assert "op.create_check_constraint('ck_tasks_priority', 'tasks', " in db.alembic_op
    assert "NOT VALID" in db.lock_notes


def test_enum_back_to_varchar_check_from_allowed_values_or_not_at_all():
    # the spec lists the values without a named CHECK: the CHECK gets PostgreSQL's default name
    d = only(run(spec=spec_schema(), models=_priority_as_enum(models_schema())), "column-type")
    assert fix(d, "models").model_change.endswith(
        "__table_args__ = (CheckConstraint(\"priority IN ('low', 'medium', 'high')\", name='tasks_priority_check'),)")
    # the side checks the values already (enum and CHECK): nothing to add
    d = only(run(spec=spec_schema(), models=_priority_as_enum(models_schema(), keep_checks=True)), "column-type")
    assert "CheckConstraint" not in fix(d, "models").model_change
    # no value set in the reference: the enum goes, nothing takes over
    spec = edit_column(spec_schema(), "tasks", "priority", allowed_values=None)
    d = only(run(spec=spec, models=_priority_as_enum(models_schema())), "column-type")
    assert "CheckConstraint" not in fix(d, "models").model_change


def test_enum_labels_between_models_and_database():
    models = Schema(enums=[Enum(name="status", values=["active", "disabled", "banned"], location=loc(MODELS, 3))])
    db = Schema(enums=[Enum(name="status", values=["active", "disabled"], location=loc(DB))])
    d = only(run(models=models, database=db))
    assert (d.object, d.kind, d.severity) == ("status", "enum-labels", "breaking")
    assert fix(d, "database").migration_sql == "ALTER TYPE status ADD VALUE IF NOT EXISTS 'banned' AFTER 'disabled';"


def test_check_expression_differs():
    db = edit_table(database_schema(), "tasks", checks=[
        database_schema().table("tasks").checks[0],
        Check(name="tasks_title_check", expression="(length((title)::text) > 3)")])
    d = only(run(spec=spec_schema(), database=db))
    assert (d.object, d.kind, d.severity) == ("tasks.tasks_title_check", "check", "degraded")
    assert d.sides["spec"].value == "CHECK (length(title) > 0)"
    sql = fix(d, "database").migration_sql
    assert sql.startswith("ALTER TABLE tasks DROP CONSTRAINT tasks_title_check;")
    assert "VALIDATE CONSTRAINT tasks_title_check" in sql


# ---------------------------------------------------------------------------------------------------
# Foreign keys and unique


def test_fk_in_spec_but_plain_indexed_str_in_models():
    models = edit_table(models_schema(), "tasks", foreign_keys=[])
    d = only(run(spec=spec_schema(), models=models))
    assert (d.object, d.kind, d.severity) == ("tasks.user_id", "fk-missing", "degraded")
    assert d.sides["spec"].value == "FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE"
    assert d.sides["spec"].location == loc(SPEC, 15) and d.sides["models"].value is None
    assert d.sides["models"].location == loc(MODELS, 23)  # the column's own line, where the FK goes
    assert fix(d, "models").model_change == (
        'user_id: str = Field(foreign_key="users.id", ondelete="CASCADE", index=True)')


def test_fk_missing_location_falls_back_to_the_table():
    # no line for the column (the catalog), or a composite key: the table's location
    db = edit_table(database_schema(), "tasks", foreign_keys=[])
    d = only(run(spec=spec_schema(), database=db))
    assert d.sides["database"].location == loc(DB)
    key = ForeignKey(columns=["user_id", "title"], ref_table="users", ref_columns=["id", "name"])
    spec = edit_table(spec_schema(), "tasks", foreign_keys=[*spec_schema().table("tasks").foreign_keys, key])
    d = only(run(spec=spec, models=models_schema()), "fk-missing")
    assert d.object == "tasks.(user_id, title)" and d.sides["models"].location == loc(MODELS, 20)


def test_fk_missing_in_database_adds_not_valid_then_validates():
    db = edit_table(database_schema(), "tasks", foreign_keys=[])
    f = fix(only(run(spec=spec_schema(), database=db)), "database")
    assert f.migration_sql == (
        "ALTER TABLE tasks ADD CONSTRAINT tasks_user_id_fkey FOREIGN KEY (user_id) REFERENCES users (id) "
        "ON DELETE CASCADE NOT VALID;\nALTER TABLE tasks VALIDATE CONSTRAINT tasks_user_id_fkey;")
    assert "postgresql_not_valid=True" in f.alembic_op


def test_missing_on_delete_cascade():
    models = edit_table(models_schema(), "tasks", foreign_keys=[ForeignKey(columns=["user_id"], ref_table="users")])
    d = only(run(spec=spec_schema(), models=models))
    assert (d.kind, d.severity) == ("fk-on-delete", "breaking")
    assert d.sides["spec"].value.endswith("ON DELETE CASCADE")
    assert 'ondelete="CASCADE"' in fix(d, "models").model_change


def test_spec_without_on_delete_does_not_drift():
    spec = edit_table(spec_schema(), "tasks", foreign_keys=[ForeignKey(columns=["user_id"], ref_table="users")])
    assert run(spec=spec, database=database_schema()).drifts == []


def test_fk_target_differs():
    db = edit_table(database_schema(), "tasks", foreign_keys=[ForeignKey(
        name="tasks_user_id_fkey", columns=["user_id"], ref_table="accounts", on_delete="CASCADE")])
    d = only(run(spec=spec_schema(), database=db))
    assert (d.kind, d.severity) == ("fk-target", "breaking")
    assert d.sides["database"].value.startswith("FOREIGN KEY (user_id) REFERENCES accounts")
    assert fix(d, "database").migration_sql.startswith("ALTER TABLE tasks DROP CONSTRAINT tasks_user_id_fkey;")


def test_fk_to_singular_table_matched_by_name_is_not_a_target_drift():
    spec = spec_schema()
    spec = edit_table(spec, "users", managed_by=None)
    models = edit_table(models_schema(), "tasks", foreign_keys=[
        ForeignKey(columns=["user_id"], ref_table="user", on_delete="CASCADE")])
    r = diff_schemas({"spec": spec, "models": models}, include_managed=True)
    assert "fk-target" not in {d.kind for d in r.drifts}
    assert ("users", "table-name") in {(d.object, d.kind) for d in r.drifts}


def test_fk_extra_in_database():
    spec = edit_table(spec_schema(), "tasks", foreign_keys=[])
    d = only(run(spec=spec, database=database_schema()))
    assert (d.kind, d.severity) == ("fk-extra", "degraded")
    assert fix(d, "database").migration_sql == "ALTER TABLE tasks DROP CONSTRAINT tasks_user_id_fkey;"


def test_unique_missing_builds_index_concurrently():
    db = edit_table(database_schema(), "tasks", unique_constraints=[],
                    indexes=[i for i in database_schema().table("tasks").indexes if i.name != "tasks_slug_key"])
    d = only(run(spec=spec_schema(), database=db))
    assert (d.object, d.kind, d.severity) == ("tasks.slug", "unique", "degraded")
    assert d.sides["spec"].value == "UNIQUE (slug)" and d.sides["database"].value == "not unique"
    f = fix(d, "database")
    assert "CREATE UNIQUE INDEX CONCURRENTLY tasks_slug_key ON tasks (slug);" in f.migration_sql
    assert "autocommit_block()" in f.alembic_op and "postgresql_concurrently=True" in f.alembic_op
    assert "cannot run inside a transaction" in f.lock_notes


# ---------------------------------------------------------------------------------------------------
# Indexes


def _with_indexes(schema: Schema, *keep: str, extra: list[Index] = ()) -> Schema:
    t = schema.table("tasks")
    return edit_table(schema, "tasks", indexes=[i for i in t.indexes if i.name in keep or i.primary or i.unique]
                      + list(extra))


def test_composite_desc_index_from_spec_missing_in_models():
    models = _with_indexes(models_schema(), "idx_tasks_user_id")
    d = only(run(spec=spec_schema(), models=models))
    assert (d.object, d.kind, d.severity) == ("tasks.idx_tasks_user_created", "index-missing", "degraded")
    assert d.sides["spec"].location == loc(SPEC, 28)
    assert fix(d, "models").model_change == (
        "__table_args__ = (Index('idx_tasks_user_created', 'user_id', text('created_at DESC')),)")


def test_index_missing_in_database_is_created_concurrently():
    db = _with_indexes(database_schema(), "idx_tasks_user_created")
    d = only(run(spec=spec_schema(), database=db))
    assert d.object == "tasks.idx_tasks_user_id" and "list a user's tasks" in d.message
    f = fix(d, "database")
    assert f.migration_sql == "CREATE INDEX CONCURRENTLY idx_tasks_user_id ON tasks (user_id);"
    assert f.alembic_op == ("with op.get_context().autocommit_block():\n"
                            "    op.create_index('idx_tasks_user_id', 'tasks', ['user_id'], "
                            "postgresql_concurrently=True)")


def test_index_extra_in_database():
    extra = Index(name="ix_tasks_completed", columns=[IndexColumn(name="completed")], location=loc(DB))
    d = only(run(spec=spec_schema(), database=_with_indexes(database_schema(), "idx_tasks_user_id",
                                                             "idx_tasks_user_created", extra=[extra])))
    assert (d.object, d.kind) == ("tasks.ix_tasks_completed", "index-extra")
    assert fix(d, "database").migration_sql == "DROP INDEX CONCURRENTLY ix_tasks_completed;"
    assert fix(d, "spec").spec_patch == "- `ix_tasks_completed`: (completed)"


@pytest.mark.parametrize("change,kind", [
    ({"columns": [IndexColumn(name="created_at", descending=True), IndexColumn(name="user_id")]}, "index-order"),
    ({"columns": [IndexColumn(name="user_id"), IndexColumn(name="created_at")]}, "index-order"),
    ({"columns": [IndexColumn(name="user_id"), IndexColumn(name="title")]}, "index-columns"),
    ({"where": "completed = false"}, "index-predicate"),
    ({"method": "hash"}, "index-method"),
    ({"unique": True}, "index-unique"),
])
def test_index_structure_differs_under_the_same_name(change, kind):
    db = database_schema()
    idx = [i.model_copy(update=change) if i.name == "idx_tasks_user_created" else i for i in db.table("tasks").indexes]
    d = only(run(spec=spec_schema(), database=edit_table(db, "tasks", indexes=idx)))
    assert (d.object, d.kind, d.severity) == ("tasks.idx_tasks_user_created", kind, "degraded")
    assert d.sides["spec"].value == "CREATE INDEX idx_tasks_user_created ON tasks (user_id, created_at DESC)"
    sql = fix(d, "database").migration_sql
    assert sql.splitlines() == [
        "CREATE INDEX CONCURRENTLY idx_tasks_user_created_new ON tasks (user_id, created_at DESC);",
        "DROP INDEX CONCURRENTLY idx_tasks_user_created;",
        "ALTER INDEX idx_tasks_user_created_new RENAME TO idx_tasks_user_created;"]


def test_partial_index_predicates_are_compared_after_normalisation():
    spec = _with_indexes(spec_schema(), extra=[Index(name="ix_open", columns=[IndexColumn(name="user_id")],
                                                      where="completed = false")])
    db = _with_indexes(database_schema(), extra=[Index(name="ix_open", columns=[IndexColumn(name="user_id")],
                                                        where="(completed = false)")])
    assert run(spec=spec, database=db).drifts == []


# ---------------------------------------------------------------------------------------------------
# Scope, Better Auth, order, errors


def test_better_auth_tables_are_managed_elsewhere_unless_asked():
    r = run(spec=spec_schema(), database=database_schema())
    assert r.managed_elsewhere == ["user", "users"] and r.drifts == []
    r = diff_schemas({"spec": spec_schema(), "database": database_schema()}, include_managed=True)
    d = next(d for d in r.drifts if d.object == "users")
    assert d.kind == "table-name" and d.sides["database"].value == "user"


def test_tables_filter_limits_the_diff():
    models = edit_column(models_schema(), "tasks", "title", type="varchar")
    extra = Table(name="notes", columns=[col("id", "integer", MODELS, 50)])
    models = models.model_copy(update={"tables": [*models.tables, extra]})
    assert {d.object for d in diff_schemas({"spec": spec_schema(), "models": models}, tables=["notes"]).drifts} \
        == {"notes"}
    assert {d.object for d in diff_schemas({"spec": spec_schema(), "models": models}, tables=["task"]).drifts} \
        == {"tasks.title"}


def test_drifts_are_sorted_by_object_then_kind_and_summarised():
    models = edit_column(models_schema(), "tasks", "title", type="varchar", nullable=True)
    models = edit_table(models, "tasks", foreign_keys=[])
    r = run(spec=spec_schema(), models=models)
    keys = [(d.object, d.kind) for d in r.drifts]
    assert keys == sorted(keys) == [("tasks.title", "column-length"), ("tasks.title", "nullability"),
                                    ("tasks.user_id", "fk-missing")]
    assert r.summary["data-loss-risk"] == 1 and r.summary["degraded"] == 2 and not r.clean


def test_bad_sides_are_refused_with_what_to_pass():
    with pytest.raises(ValueError, match="two or three of spec, models, database"):
        diff_schemas({"spec": spec_schema()})
    with pytest.raises(ValueError, match="got code, spec"):
        diff_schemas({"spec": spec_schema(), "code": spec_schema()})


# ---------------------------------------------------------------------------------------------------
# The small pieces


def test_differences_splits_keyed_maps_sorted():
    d = differences({"a": 1, "b": 2, "c": 3}, {"b": 2, "c": 4, "d": 5})
    assert (d.added, d.removed, d.modified, d.unmodified) == ({"d": 5}, {"a": 1}, {"c": (3, 4)}, {"b": (2, 2)})


@pytest.mark.parametrize("a,b", [
    ("now()", "CURRENT_TIMESTAMP"), ("false", "'false'::boolean"), ("'medium'", "'medium'::character varying"),
    ("0", "'0'::integer"), ("gen_random_uuid()", "uuid_generate_v4()"), ("NOW()", "now()"),
])
def test_default_spellings_are_equal(a, b):
    assert norm_default(a) == norm_default(b)


@pytest.mark.parametrize("a,b", [("'medium'", "'low'"), ("now()", "localtimestamp"), ("true", "false")])
def test_different_defaults_stay_different(a, b):
    assert norm_default(a) != norm_default(b)


def test_check_spellings_are_equal():
    assert norm_expr("LENGTH(title) > 0") == norm_expr("(length((title)::text) > 0)")
    assert norm_expr("price >= 0") == norm_expr("(price >= (0)::numeric)")
    assert norm_expr("length(title) > 0") != norm_expr("length(title) >= 0")


def test_serial_id_replaced_by_uuid_is_one_type_drift_fixed_only_where_it_differs():
    models = edit_column(models_schema(), "tasks", "id", type="uuid", identity=None)
    d = only(run(spec=spec_schema(), models=models, database=database_schema()))
    assert (d.object, d.kind, d.severity) == ("tasks.id", "column-type", "breaking")
    assert d.message.startswith("tasks.id: the models differ from the spec on the type")
    assert (d.sides["spec"].value, d.sides["models"].value, d.sides["database"].value) == \
        ("integer", "uuid", "integer")
    assert {f.side for f in d.fixes} == {"models", "spec"}  # the database already agrees
    assert fix(d, "models").model_change == "id: int | None = Field(default=None, primary_key=True)"
    assert fix(d, "spec").spec_patch == "| id | UUID | PRIMARY KEY |  |"


def test_serial_id_that_is_uuid_in_database_is_renumbered_loudly():
    child = Table(name="task_tags", location=loc(DB), columns=[col("task_id", "uuid", DB, nullable=False)],
                  foreign_keys=[ForeignKey(name="task_tags_task_id_fkey", columns=["task_id"], ref_table="tasks",
                                           ref_columns=["id"])])
    db = edit_column(database_schema(), "tasks", "id", type="uuid", default="gen_random_uuid()")
    db = db.model_copy(update={"tables": [*db.tables, child]})
    spec = spec_schema().model_copy(update={"tables": [*spec_schema().tables, child.model_copy(
        update={"columns": [col("task_id", "integer", SPEC, 40, nullable=False)], "location": loc(SPEC, 38)})]})
    r = run(spec=spec, database=db)
    [d] = [d for d in r.drifts if d.kind == "column-type" and d.object == "tasks.id"]
    assert d.severity == "breaking"
    f = fix(d, "database")
    sql = f.migration_sql.splitlines()
    assert sql[0].startswith("-- BREAKING, DATA-LOSS RISK: uuid cannot be cast to integer.")
    assert "Foreign keys reference tasks.id: task_tags.task_id." in f.migration_sql
    assert [s for s in sql if not s.startswith("--")] == [
        "ALTER TABLE tasks ALTER COLUMN id DROP DEFAULT;",  # gen_random_uuid() has no integer cast
        "CREATE SEQUENCE IF NOT EXISTS tasks_id_seq AS integer;",
        "ALTER TABLE tasks ADD COLUMN id_new integer NOT NULL DEFAULT nextval('tasks_id_seq');",
        "ALTER TABLE tasks ALTER COLUMN id TYPE integer USING id_new;",
        "ALTER TABLE tasks DROP COLUMN id_new;",
        "ALTER SEQUENCE tasks_id_seq OWNED BY tasks.id;",
        "ALTER TABLE tasks ALTER COLUMN id SET DEFAULT nextval('tasks_id_seq');",
        "SELECT setval('tasks_id_seq', coalesce(max(id), 0) + 1, false) FROM tasks;"]
    assert "old ids are lost" in f.action
    assert f.lock_notes.startswith("Breaking and data-loss risk") and "ACCESS EXCLUSIVE" in f.lock_notes
    assert "Referencing FKs (task_tags.task_id)" in f.lock_notes
    assert f.alembic_op.count("op.execute(") == 8


def test_identity_id_that_is_varchar_in_database_is_cast_in_place():
    spec = edit_column(spec_schema(), "tasks", "id", identity="identity always")
    db = edit_column(database_schema(), "tasks", "id", type="character varying(36)", default=None)
    f = fix(only(run(spec=spec, database=db), "column-type"), "database")
    assert "-- check first (must be 0): SELECT count(*) FROM tasks WHERE id !~ '^[0-9]+$';" in f.migration_sql
    assert "No foreign key in this database references tasks.id" in f.migration_sql
    assert [s for s in f.migration_sql.splitlines() if not s.startswith("--")] == [
        "ALTER TABLE tasks ALTER COLUMN id TYPE integer USING id::integer;",
        "ALTER TABLE tasks ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY;",
        "SELECT setval(pg_get_serial_sequence('tasks', 'id'), coalesce(max(id), 0) + 1, false) FROM tasks;"]
    assert "ACCESS EXCLUSIVE" in f.lock_notes


def test_generated_id_fix_only_where_the_database_does_not_generate():
    # bigserial in the database, serial in the spec: the type narrows, the sequence stays (plain ALTER TYPE)
    db = edit_column(database_schema(), "tasks", "id", type="bigint")
    f = fix(only(run(spec=spec_schema(), database=db), "column-type"), "database")
    assert f.migration_sql == "ALTER TABLE tasks ALTER COLUMN id TYPE integer USING id::integer;"


@pytest.mark.anyio
@pytest.mark.parametrize("gen", ["serial", "identity by default"])
@pytest.mark.parametrize("have", ["uuid", "varchar"])
async def test_generated_id_migration_runs_and_converges(gen: str, have: str, make_database) -> None:
    """Against PostgreSQL: the migration runs in one transaction, keeps the rows, and the re-check is clean."""
    import psycopg

    from schema_architect.tools.database.catalog import read_catalog

    url = make_database(f"diff_id_{have}_{gen.split()[0]}")
    spec = Schema(tables=[Table(name="items", location=loc(SPEC, 1), primary_key=["id"], columns=[
        col("id", "integer", SPEC, 3, identity=gen, nullable=False, primary_key=True), col("note", "text", SPEC, 4)])])
    default = "gen_random_uuid()" if have == "uuid" else "'0'"
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        await conn.execute(f"CREATE TABLE items (id {have} PRIMARY KEY DEFAULT {default}, note text)")
        rows = ["gen_random_uuid()"] * 3 if have == "uuid" else ["'3'", "'10'", "'20'"]
        values = ", ".join(f"({r}, 'row {n}')" for n, r in enumerate(rows))
        await conn.execute(f"INSERT INTO items (id, note) VALUES {values}")
        d = only(run(spec=spec, database=(await read_catalog(conn)).schema), "column-type")
        sql = fix(d, "database").migration_sql
        async with conn.transaction():
            await conn.execute(sql)
        left = [x for x in run(spec=spec, database=(await read_catalog(conn)).schema).drifts]
        assert left == [], [x.message for x in left]
        ids = [r[0] for r in await (await conn.execute("SELECT id FROM items ORDER BY id")).fetchall()]
        assert ids == ([1, 2, 3] if have == "uuid" else [3, 10, 20])
        new = await (await conn.execute("INSERT INTO items (note) VALUES ('new') RETURNING id")).fetchone()
        assert new[0] == max(ids) + 1


@pytest.mark.anyio
async def test_generated_id_migration_fails_while_a_foreign_key_references_the_old_ids(make_database) -> None:
    import psycopg

    from schema_architect.tools.database.catalog import read_catalog

    url = make_database("diff_id_referenced")
    spec = Schema(tables=[Table(name="items", location=loc(SPEC, 1), primary_key=["id"], columns=[
        col("id", "integer", SPEC, 3, identity="serial", nullable=False, primary_key=True)])])
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        await conn.execute("CREATE TABLE items (id uuid PRIMARY KEY DEFAULT gen_random_uuid())")
        await conn.execute("CREATE TABLE parts (item_id uuid REFERENCES items (id))")
        d = only(run(spec=spec, database=(await read_catalog(conn)).schema), "column-type")
        sql = fix(d, "database").migration_sql
        assert "Foreign keys reference items.id: parts.item_id." in sql
        with pytest.raises(psycopg.errors.DatatypeMismatch):  # loudly, and nothing is left half done
            async with conn.transaction():
                await conn.execute(sql)
        assert (await (await conn.execute(
            "SELECT data_type FROM information_schema.columns WHERE table_name = 'items'")).fetchone())[0] == "uuid"


def test_column_absent_from_spec_is_still_compared_between_models_and_database():
    extra_m = col("archived", "boolean", MODELS, 40, nullable=False)
    extra_d = col("archived", "boolean", DB, nullable=True)
    m, db = models_schema(), database_schema()
    m = edit_table(m, "tasks", columns=[*m.table("tasks").columns, extra_m])
    db = edit_table(db, "tasks", columns=[*db.table("tasks").columns, extra_d])
    r = run(spec=spec_schema(), models=m, database=db)
    assert [(d.object, d.kind) for d in r.drifts] == [("tasks.archived", "extra-column"),
                                                      ("tasks.archived", "nullability")]
    n = r.drifts[1]
    assert "from the models (spec does not have it)" in n.message and n.severity == "degraded"

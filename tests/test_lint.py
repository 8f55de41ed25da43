"""Each lint rule: a schema that breaks it, one that keeps it, and the fix it proposes.

Every test starts from ``clean()``, a small schema that follows all the conventions (and lints
clean), and changes one thing.
"""

from __future__ import annotations

import inspect
from typing import get_args

import pytest

from schema_architect.tools.schema.findings import Finding
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
from schema_architect.tools.spec.lint import RULES, RuleId, lint_schema

SPEC = "specs/database/schema.md"
TRIGGER_NOTE = "updated_at is maintained by the set_updated_at trigger"


def ts_columns() -> list[Column]:
    return [
        Column(name="created_at", type="timestamptz", nullable=False, default="now()"),
        Column(name="updated_at", type="timestamptz", nullable=False, default="now()"),
    ]


def ix(name: str, *cols: str, reason: str | None = "a query", **kw: object) -> Index:
    return Index(name=name, columns=[IndexColumn(name=c) for c in cols], reason=reason, **kw)


def clean() -> Schema:
    users = Table(name="users", managed_by="better-auth", primary_key=["id"], columns=[
        Column(name="id", type="text", nullable=False), Column(name="email", type="text", nullable=False)])
    tasks = Table(
        name="tasks", primary_key=["id"], notes=[TRIGGER_NOTE],
        columns=[
            Column(name="id", type="integer", nullable=False, identity="serial"),
            Column(name="user_id", type="text", nullable=False),
            Column(name="title", type="varchar(200)", nullable=False, description="max 200 characters"),
            Column(name="completed", type="boolean", nullable=False, default="false"),
            Column(name="priority", type="varchar(10)", nullable=False, default="'medium'",
                   allowed_values=["low", "medium", "high"]),
            *ts_columns(),
        ],
        foreign_keys=[ForeignKey(columns=["user_id"], ref_table="users", on_delete="CASCADE")],
        checks=[Check(expression="priority IN ('low', 'medium', 'high')", columns=["priority"])],
        indexes=[
            Index(name="ix_tasks_user_id_created_at", reason="list a user's tasks newest first",
                  columns=[IndexColumn(name="user_id"), IndexColumn(name="created_at", descending=True)]),
            ix("ix_tasks_user_id_completed", "user_id", "completed", reason="a user's open tasks"),
        ],
    )
    comments = Table(
        name="comments", primary_key=["id"], notes=[TRIGGER_NOTE],
        columns=[
            Column(name="id", type="integer", nullable=False, identity="serial"),
            Column(name="user_id", type="text", nullable=False),
            Column(name="task_id", type="integer", nullable=False),
            Column(name="body", type="text", nullable=False),
            *ts_columns(),
        ],
        foreign_keys=[
            ForeignKey(columns=["user_id"], ref_table="users", on_delete="CASCADE"),
            ForeignKey(columns=["task_id"], ref_table="tasks", on_delete="CASCADE"),
        ],
        indexes=[ix("ix_comments_user_id", "user_id"), ix("ix_comments_task_id", "task_id")],
    )
    categories = Table(
        name="categories", primary_key=["id"], description="Shared lookup table of task categories",
        notes=[TRIGGER_NOTE],
        columns=[Column(name="id", type="integer", nullable=False, identity="serial"),
                 Column(name="name", type="varchar(50)", nullable=False, unique=True), *ts_columns()],
    )
    return Schema(tables=[users, tasks, comments, categories], source=SPEC)


def hits(schema: Schema, rule: str, **kw: object) -> list[Finding]:
    return [f for f in lint_schema(schema, **kw) if f.rule == rule]


def col(schema: Schema, table: str, name: str) -> Column:
    c = schema.table(table).column(name)
    assert c is not None
    return c


def drop_column(schema: Schema, table: str, name: str) -> None:
    t = schema.table(table)
    t.columns = [c for c in t.columns if c.name != name]


# --- the baseline and the machinery ----------------------------------------------------------------


def test_clean_schema_has_no_findings() -> None:
    assert lint_schema(clean()) == []


def test_rules_and_rule_ids_agree_in_order() -> None:
    assert [r.id for r in RULES] == list(get_args(RuleId))


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.id)
def test_every_rule_documents_rationale_bad_good_and_fix(rule) -> None:
    doc = inspect.cleandoc(rule.__doc__)
    assert doc.split("\n")[0].strip(), "first line is the rationale"
    for section in ("\nBad:\n", "\nGood:\n", "\nFix:"):
        assert section in doc, f"{rule.id} docstring lacks {section.strip()}"


def test_findings_are_sorted_and_independent_of_table_order() -> None:
    s = clean()
    for t in s.tables:
        t.primary_key = []
        t.columns = [c for c in t.columns if c.name != "created_at"]
    forward = lint_schema(s)
    s.tables.reverse()
    assert lint_schema(s) == forward
    ranks = [("error", "warning", "info").index(f.severity) for f in forward]
    assert ranks == sorted(ranks)
    assert {f.rule for f in forward} == {"missing-primary-key", "timestamps-missing"}


def test_better_auth_tables_are_exempt() -> None:
    s = clean()
    # A Better Auth table breaking many conventions at once: no PK, no timestamps, reserved name.
    s.tables.append(Table(name="session", managed_by="better-auth",
                          columns=[Column(name="user", type="text"), Column(name="token", type="varchar")]))
    assert lint_schema(s) == []


# --- ownership ------------------------------------------------------------------------------------


def test_owner_column_missing_on_fk_chain_child() -> None:
    s = clean()
    drop_column(s, "comments", "user_id")
    t = s.table("comments")
    t.foreign_keys = [fk for fk in t.foreign_keys if fk.columns != ["user_id"]]
    t.indexes = [i for i in t.indexes if i.name != "ix_comments_user_id"]
    [f] = hits(s, "owner-column-missing")
    assert f.object == "comments" and "through tasks" in f.message
    assert "ALTER TABLE comments ADD COLUMN user_id text REFERENCES users (id) ON DELETE CASCADE" in f.fix
    assert "SET NOT NULL" in f.fix
    assert hits(clean(), "owner-column-missing") == []


def test_owner_column_missing_when_user_is_referenced_under_another_name() -> None:
    s = clean()
    t = s.table("comments")
    t.columns = [c.model_copy(update={"name": "author_id"}) if c.name == "user_id" else c for c in t.columns]
    t.foreign_keys[0] = ForeignKey(columns=["author_id"], ref_table="users", on_delete="CASCADE")
    [f] = hits(s, "owner-column-missing")
    assert "author_id references users" in f.message


def test_table_ownership_unclear_unless_described_as_shared() -> None:
    s = clean()
    s.table("categories").description = "Task categories"
    [f] = hits(s, "table-ownership-unclear")
    assert f.object == "categories" and f.severity == "info"
    assert "ADD COLUMN user_id text NOT NULL REFERENCES users (id) ON DELETE CASCADE" in f.fix
    assert "shared lookup table" in f.fix
    s.table("categories").notes.append("Global: the same list for every user")
    assert hits(s, "table-ownership-unclear") == []


def test_owner_column_nullable() -> None:
    s = clean()
    col(s, "tasks", "user_id").nullable = True
    [f] = hits(s, "owner-column-nullable")
    assert f.object == "tasks.user_id" and f.severity == "error"
    assert "ALTER TABLE tasks ALTER COLUMN user_id SET NOT NULL;" in f.fix


def test_owner_fk_missing_and_wrong_target() -> None:
    s = clean()
    s.table("tasks").foreign_keys = []
    [f] = hits(s, "owner-fk-missing")
    assert f.object == "tasks.user_id"
    assert ("ALTER TABLE tasks ADD CONSTRAINT tasks_user_id_fkey FOREIGN KEY (user_id) "
            "REFERENCES users (id) ON DELETE CASCADE;") in f.fix
    s.table("tasks").foreign_keys = [ForeignKey(columns=["user_id"], ref_table="profiles", on_delete="CASCADE")]
    [f] = hits(s, "owner-fk-missing")
    assert "references profiles, not users" in f.message


@pytest.mark.parametrize("on_delete", [None, "NO ACTION", "RESTRICT"])
def test_owner_fk_on_delete_must_cascade(on_delete: str | None) -> None:
    s = clean()
    s.table("tasks").foreign_keys[0].on_delete = on_delete
    [f] = hits(s, "owner-fk-on-delete")
    assert ("does not state ON DELETE" if on_delete is None else f"says ON DELETE {on_delete}") in f.message
    assert f.fix.startswith("ALTER TABLE tasks DROP CONSTRAINT tasks_user_id_fkey, ADD CONSTRAINT tasks_user_id_fkey "
                            "FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE;")
    # Covered here, so the general FK rule stays quiet about the owner FK.
    assert hits(s, "fk-on-delete-missing") == []


def test_owner_type_mismatch_against_users_table_in_schema() -> None:
    s = clean()
    col(s, "tasks", "user_id").type = "uuid"
    [f] = hits(s, "owner-type-mismatch")
    assert f.message == "tasks.user_id is uuid but users.id is text."
    assert "ALTER TABLE tasks ALTER COLUMN user_id TYPE text USING user_id::text;" in f.fix
    # varchar(36) against text is the same family: no finding.
    col(s, "tasks", "user_id").type = "varchar(36)"
    assert hits(s, "owner-type-mismatch") == []


def test_owner_type_mismatch_uses_the_users_id_type_found_in_the_schema() -> None:
    s = clean()
    col(s, "users", "id").type = "uuid"
    found = hits(s, "owner-type-mismatch")
    assert [f.object for f in found] == ["comments.user_id", "tasks.user_id"]
    assert "TYPE uuid USING user_id::uuid" in found[0].fix


def test_users_table_defaults_to_users_text_when_absent() -> None:
    s = clean()
    s.tables = [t for t in s.tables if t.name != "users"]
    assert lint_schema(s) == []
    col(s, "tasks", "user_id").type = "integer"
    [f] = hits(s, "owner-type-mismatch")
    assert "users.id is text" in f.message


def test_users_table_named_user_is_found_and_used_in_fixes() -> None:
    s = clean()
    s.table("users").name = "user"
    for t in s.tables:
        for fk in t.foreign_keys:
            if fk.ref_table == "users":
                fk.ref_table = "user"
    assert lint_schema(s) == []
    s.table("tasks").foreign_keys = []
    [f] = hits(s, "owner-fk-missing")
    assert 'REFERENCES "user" (id)' in f.fix  # user is a reserved word: quoted


def test_owner_not_indexed_and_partial_index_does_not_count() -> None:
    s = clean()
    s.table("comments").indexes[0] = ix("ix_comments_user_id", "user_id", where="deleted_at IS NULL")
    [f] = hits(s, "owner-not-indexed")
    assert f.object == "comments.user_id"
    assert "CREATE INDEX CONCURRENTLY ix_comments_user_id ON comments (user_id);" in f.fix
    # A composite led by user_id covers it (tasks has only composites).
    assert all(f.object != "tasks.user_id" for f in hits(s, "owner-not-indexed"))


def test_owner_not_indexed_when_user_id_is_second() -> None:
    s = clean()
    s.table("comments").indexes[0] = ix("ix_comments_created_user", "created_at", "user_id")
    assert [f.object for f in hits(s, "owner-not-indexed")] == ["comments.user_id"]


# --- tables and columns ---------------------------------------------------------------------------


def test_missing_primary_key_suggests_identity_or_natural_key() -> None:
    s = clean()
    s.table("categories").primary_key = []
    [f] = hits(s, "missing-primary-key")
    assert f.object == "categories" and f.severity == "error"
    assert "ADD COLUMN id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY" in f.fix
    s.tables.append(Table(
        name="task_tags", notes=[TRIGGER_NOTE],
        columns=[Column(name="task_id", type="integer", nullable=False),
                 Column(name="tag", type="varchar(20)", nullable=False), *ts_columns()],
        unique_constraints=[UniqueConstraint(columns=["task_id", "tag"])],
        description="shared tags"))
    found = {f.object: f for f in hits(s, "missing-primary-key")}
    assert found["task_tags"].fix == "ALTER TABLE task_tags ADD PRIMARY KEY (task_id, tag);"


def test_primary_key_from_column_flag_or_live_index_counts() -> None:
    s = clean()
    t = s.table("categories")
    t.primary_key = []
    t.columns[0].primary_key = True
    assert hits(s, "missing-primary-key") == []
    t.columns[0].primary_key = False
    t.indexes.append(ix("categories_pkey", "id", unique=True, primary=True, constraint="categories_pkey"))
    assert hits(s, "missing-primary-key") == []


def test_timestamps_missing() -> None:
    s = clean()
    drop_column(s, "tasks", "updated_at")
    [f] = hits(s, "timestamps-missing")
    assert f.object == "tasks.updated_at"
    assert "ALTER TABLE tasks ADD COLUMN updated_at timestamptz NOT NULL DEFAULT now();" in f.fix


def test_timestamp_without_time_zone_on_any_timestamp_column() -> None:
    s = clean()
    col(s, "tasks", "created_at").type = "timestamp"
    s.table("tasks").columns.append(Column(name="due_at", type="timestamp"))
    found = hits(s, "timestamp-without-time-zone")
    assert [f.object for f in found] == ["tasks.created_at", "tasks.due_at"]
    assert "ALTER TABLE tasks ALTER COLUMN due_at TYPE timestamptz USING due_at AT TIME ZONE 'UTC';" in found[1].fix


def test_timestamp_default_missing() -> None:
    s = clean()
    col(s, "comments", "created_at").default = None
    [f] = hits(s, "timestamp-default-missing")
    assert f.object == "comments.created_at"
    assert "ALTER TABLE comments ALTER COLUMN created_at SET DEFAULT now();" in f.fix


def test_updated_at_trigger_is_one_finding_for_tables_without_a_trigger() -> None:
    s = clean()
    s.table("tasks").notes = []
    s.table("comments").notes = []
    [f] = hits(s, "updated-at-trigger")
    assert f.severity == "info" and "comments, tasks" in f.message and "onupdate" in f.message
    assert f.fix.startswith("CREATE OR REPLACE FUNCTION set_updated_at() RETURNS trigger")
    assert "CREATE TRIGGER tasks_set_updated_at BEFORE UPDATE ON tasks FOR EACH ROW" in f.fix
    assert "ON categories" not in f.fix  # its notes mention the trigger


def test_updated_at_trigger_on_many_tables_stays_short_and_its_fix_runs(make_database) -> None:
    import psycopg

    from schema_architect.tools.database.ddl import schema_ddl

    tables = [Table(name=f"items_{i:02}", columns=[
        Column(name="id", type="integer", nullable=False, identity="serial", primary_key=True),
        Column(name="updated_at", type="timestamptz", nullable=False, default="now()")], primary_key=["id"])
        for i in range(30)]
    tables.append(Table(name="Order's Items", columns=tables[0].columns, primary_key=["id"]))  # quoted
    [f] = hits(Schema(tables=tables), "updated-at-trigger")
    assert "Order's Items, items_00" in f.message and "items_06 and 23 more" in f.message
    assert "items_07" not in f.message
    assert len(f.fix) < 1500 and f.fix.count("CREATE TRIGGER") == 1  # one loop, not 31 statements
    with psycopg.connect(make_database("lint_trigger"), autocommit=True) as conn:
        for statement in schema_ddl(Schema(tables=tables)):
            conn.execute(statement)
        conn.execute(f.fix)
        names = {r[0] for r in conn.execute("SELECT tgname FROM pg_trigger WHERE NOT tgisinternal")}
        assert names == {f"items_{i:02}_set_updated_at" for i in range(30)} | {"Order's Items_set_updated_at"}
        conn.execute("INSERT INTO items_03 (updated_at) VALUES ('2000-01-01')")
        conn.execute("UPDATE items_03 SET id = id")
        assert conn.execute("SELECT updated_at > '2001-01-01' FROM items_03").fetchone()[0]


def test_updated_at_trigger_silent_without_updated_at() -> None:
    s = clean()
    for t in s.tables:
        t.notes = []
        t.columns = [c for c in t.columns if c.name != "updated_at"]
    assert hits(s, "updated-at-trigger") == []


def test_varchar_without_length() -> None:
    s = clean()
    s.table("comments").columns.append(Column(name="mood", type="varchar"))
    [f] = hits(s, "varchar-without-length")
    assert f.object == "comments.mood"
    assert "Field(max_length=N)" in f.fix and "TYPE varchar(N)" in f.fix
    # A fixed value set bounds the column already.
    col(s, "comments", "mood").allowed_values = ["happy", "sad"]
    assert hits(s, "varchar-without-length") == []


@pytest.mark.parametrize("description, n", [
    ("Task description (max 1000 characters)", 1000),
    ("Optional, maximum 500 characters", 500),
    ("max length: 255 characters", 255),
    ("required, 1–200 chars", 200),
    ("must be between 1 and 255 characters", 255),
    ("up to 80 characters", 80),
])
def test_prose_length_not_enforced(description: str, n: int) -> None:
    s = clean()
    col(s, "comments", "body").description = description
    [f] = hits(s, "prose-length-not-enforced")
    assert f.object == "comments.body"
    assert f"ALTER TABLE comments ALTER COLUMN body TYPE varchar({n});" in f.fix
    assert f"Field(max_length={n})" in f.fix
    # The prose length is the more specific finding for a length-less varchar.
    col(s, "comments", "body").type = "varchar"
    assert hits(s, "varchar-without-length") == []
    assert len(hits(s, "prose-length-not-enforced")) == 1


@pytest.mark.parametrize("description", ["max 10 tags", "The comment text", "Minimum 8 characters"])
def test_prose_without_a_length_is_not_a_length(description: str) -> None:
    s = clean()
    col(s, "comments", "body").description = description
    assert hits(s, "prose-length-not-enforced") == []


def test_prose_length_enforced_by_check_or_type() -> None:
    s = clean()
    col(s, "comments", "body").description = "max 1000 characters"
    s.table("comments").checks.append(Check(expression="char_length(body) <= 1000"))
    assert hits(s, "prose-length-not-enforced") == []
    s.table("comments").checks = []
    col(s, "comments", "body").type = "varchar(1000)"
    assert hits(s, "prose-length-not-enforced") == []


def test_allowed_values_not_enforced() -> None:
    s = clean()
    s.table("tasks").checks = []
    [f] = hits(s, "allowed-values-not-enforced")
    assert f.object == "tasks.priority"
    assert f.fix == ("ALTER TABLE tasks ADD CONSTRAINT tasks_priority_check "
                     "CHECK (priority IN ('low', 'medium', 'high'));")


def test_allowed_values_enforced_by_enum_or_unknown_type() -> None:
    s = clean()
    s.table("tasks").checks = []
    col(s, "tasks", "priority").type = "priority"
    # A type we cannot see into: the rule cannot tell, so it says nothing.
    assert hits(s, "allowed-values-not-enforced") == []
    s.enums.append(Enum(name="priority", values=["low", "medium", "high"]))
    assert hits(s, "allowed-values-not-enforced") == []


def test_allowed_values_quotes_are_escaped() -> None:
    s = clean()
    s.table("comments").columns.append(Column(name="tone", type="text", allowed_values=["it's", "ok"]))
    [f] = hits(s, "allowed-values-not-enforced")
    assert "CHECK (tone IN ('it''s', 'ok'))" in f.fix


def test_reserved_word_names() -> None:
    s = clean()
    s.table("tasks").columns.append(Column(name="order", type="integer", nullable=False))
    s.table("comments").columns.append(Column(name="left", type="boolean"))
    s.table("categories").name = "group"
    found = {f.object: f for f in hits(s, "reserved-word-name")}
    assert set(found) == {"tasks.order", "comments.left", "group"}
    assert found["tasks.order"].fix == 'ALTER TABLE tasks RENAME COLUMN "order" TO sort_order;'
    assert found["group"].fix == 'ALTER TABLE "group" RENAME TO group_name;'
    assert found["comments.left"].fix == 'ALTER TABLE comments RENAME COLUMN "left" TO left_value;'


def test_non_reserved_keywords_are_fine() -> None:
    s = clean()
    # Unreserved or column-name keywords work unquoted as column names.
    for name in ("name", "position", "time", "values", "status"):
        s.table("comments").columns.append(Column(name=name, type="text"))
    assert hits(s, "reserved-word-name") == []


# --- foreign keys and indexes ---------------------------------------------------------------------


def test_fk_on_delete_missing() -> None:
    s = clean()
    s.table("comments").foreign_keys[1].on_delete = None
    [f] = hits(s, "fk-on-delete-missing")
    assert f.object == "comments.task_id"
    assert ("ALTER TABLE comments DROP CONSTRAINT comments_task_id_fkey, ADD CONSTRAINT comments_task_id_fkey "
            "FOREIGN KEY (task_id) REFERENCES tasks (id) ON DELETE CASCADE;") in f.fix
    col(s, "comments", "task_id").nullable = True
    [f] = hits(s, "fk-on-delete-missing")
    assert "ON DELETE SET NULL" in f.fix


def test_fk_not_indexed() -> None:
    s = clean()
    s.table("comments").indexes = [ix("ix_comments_user_id", "user_id")]
    [f] = hits(s, "fk-not-indexed")
    assert f.object == "comments.task_id"
    assert f.fix == "CREATE INDEX CONCURRENTLY ix_comments_task_id ON comments (task_id);"


@pytest.mark.parametrize("index, covered", [
    (ix("a", "task_id", "created_at"), True),
    (ix("a", "created_at", "task_id"), False),
    (ix("a", "task_id", where="body <> ''"), False),
    (ix("a", "task_id", method="hash"), False),
    (ix("a", "task_id", valid=False), False),
])
def test_fk_index_coverage(index: Index, covered: bool) -> None:
    s = clean()
    s.table("comments").indexes = [ix("ix_comments_user_id", "user_id"), index]
    assert (hits(s, "fk-not-indexed") == []) is covered


def test_composite_fk_is_covered_by_columns_in_any_order_or_by_the_primary_key() -> None:
    s = clean()
    t = s.table("comments")
    t.columns += [Column(name="a", type="integer", nullable=False), Column(name="b", type="integer", nullable=False)]
    t.foreign_keys.append(ForeignKey(columns=["a", "b"], ref_table="pairs", ref_columns=["a", "b"],
                                     on_delete="CASCADE"))
    assert [f.object for f in hits(s, "fk-not-indexed")] == ["comments.a,b"]
    t.indexes.append(ix("ix_comments_b_a", "b", "a"))
    assert hits(s, "fk-not-indexed") == []
    t.indexes.pop()
    t.primary_key = ["a", "b", "id"]
    assert hits(s, "fk-not-indexed") == []


def test_boolean_index() -> None:
    s = clean()
    s.table("tasks").indexes.append(ix("ix_tasks_completed", "completed"))
    [f] = hits(s, "boolean-index")
    assert f.object == "tasks.ix_tasks_completed"
    assert f.fix.startswith("DROP INDEX CONCURRENTLY ix_tasks_completed;")
    assert "ON tasks (user_id, completed)" in f.fix
    # The composite (user_id, completed) of the clean schema is not a lone boolean index.
    assert hits(clean(), "boolean-index") == []


def test_redundant_index() -> None:
    s = clean()
    s.table("tasks").indexes.append(ix("ix_tasks_user_id", "user_id"))
    [f] = hits(s, "redundant-index")
    assert f.object == "tasks.ix_tasks_user_id"
    assert "ix_tasks_user_id_created_at" in f.message
    assert f.fix == "DROP INDEX CONCURRENTLY ix_tasks_user_id;"


@pytest.mark.parametrize("extra", [
    ix("u", "user_id", unique=True),  # uniqueness is a constraint
    ix("p", "user_id", where="NOT completed"),  # a predicate changes what it serves
    ix("h", "user_id", method="hash"),  # another method
    ix("c", "completed"),  # not a prefix (it is the second column)
])
def test_not_redundant(extra: Index) -> None:
    s = clean()
    s.table("tasks").indexes.append(extra)
    assert hits(s, "redundant-index") == []


def test_index_made_redundant_by_composite_primary_key() -> None:
    s = clean()
    t = s.table("comments")
    t.primary_key = ["task_id", "id"]
    [f] = hits(s, "redundant-index")
    assert f.object == "comments.ix_comments_task_id" and "comments_pkey" in f.message


def test_duplicate_index() -> None:
    s = clean()
    s.table("comments").indexes.append(ix("ix_comments_task_id_2", "task_id"))
    [f] = hits(s, "duplicate-index")
    assert f.object == "comments.ix_comments_task_id_2" and "duplicates ix_comments_task_id" in f.message
    assert f.fix == "DROP INDEX CONCURRENTLY ix_comments_task_id_2;"


def test_duplicate_of_unique_column_keeps_the_unique_one() -> None:
    s = clean()
    s.table("categories").indexes.append(ix("ix_categories_name", "name"))
    [f] = hits(s, "duplicate-index")
    assert f.object == "categories.ix_categories_name" and "categories_name_key" in f.message


def test_live_pk_index_is_not_a_duplicate_of_the_primary_key() -> None:
    s = clean()
    s.table("categories").indexes.append(
        ix("categories_pkey", "id", unique=True, primary=True, constraint="categories_pkey"))
    assert hits(s, "duplicate-index") == []


def test_index_without_reason_spec_side_only() -> None:
    s = clean()
    s.table("comments").indexes[1].reason = None
    [f] = hits(s, "index-without-reason")
    assert f.object == "comments.ix_comments_task_id" and f.severity == "info"
    assert "ix_comments_task_id (task_id): <the query it serves" in f.fix
    s.source = "database"
    assert hits(s, "index-without-reason") == []
    s.table("comments").indexes[1].location = Location(file="specs/database/schema.md", line=40)
    [f] = hits(s, "index-without-reason")
    assert str(f.location) == "specs/database/schema.md:40"


def test_locations_are_carried_to_findings() -> None:
    s = clean()
    c = col(s, "tasks", "user_id")
    c.nullable = True
    c.location = Location(file="models/task.py", line=12)
    [f] = hits(s, "owner-column-nullable")
    assert str(f.location) == "models/task.py:12"


def test_custom_owner_column() -> None:
    s = clean()
    for t in s.tables[1:]:
        for c in t.columns:
            if c.name == "user_id":
                c.name = "owner_id"
        for fk in t.foreign_keys:
            fk.columns = ["owner_id" if n == "user_id" else n for n in fk.columns]
        for i in t.indexes:
            for ic in i.columns:
                if ic.name == "user_id":
                    ic.name = "owner_id"
    assert lint_schema(s, owner_column="owner_id") == []
    assert {f.rule for f in lint_schema(s)} == {"owner-column-missing"}

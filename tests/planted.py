"""A project with one planted difference of each kind the proof loop is tested on (tests and bench).

The spec and the models are the reference ones (the models with one more table); the database is the
spec's DDL with the edits below, each one difference:

    missing column       tasks.due_date dropped            extra column      tasks.legacy_code added
    type                 messages.content jsonb            length            tasks.title varchar(100)
    nullability          conversations.title NOT NULL      default           tasks.completed without one
    FK                   messages.user_id's FK dropped     ON DELETE         tags.user_id's FK without CASCADE
    missing index        idx_task_tags_tag_id dropped      index order       idx_tasks_user_completed reversed
    UNIQUE               uq_tags_user_name (user_id, name) dropped
    CHECK                ck_messages_role dropped          timestamptz       messages.created_at timestamp
    table only in the database: audit_log      table only in the models: notes
"""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SPEC = (REPO / "specs" / "database" / "schema.md").read_text()
MODELS = (REPO / "specs" / "database" / "models.py").read_text() + '''

class Note(SQLModel, table=True):
    __tablename__ = "notes"

    id: int | None = Field(default=None, primary_key=True)
    body: str = Field(sa_type=Text)
'''

PLANTED = [
    "ALTER TABLE tasks DROP COLUMN due_date",
    "ALTER TABLE tasks ADD COLUMN legacy_code text",
    "ALTER TABLE messages ALTER COLUMN content TYPE jsonb USING to_jsonb(content)",
    "ALTER TABLE tasks ALTER COLUMN title TYPE varchar(100)",
    "ALTER TABLE conversations ALTER COLUMN title SET NOT NULL",
    "ALTER TABLE tasks ALTER COLUMN completed DROP DEFAULT",
    "ALTER TABLE messages DROP CONSTRAINT messages_user_id_fkey",
    "ALTER TABLE tags DROP CONSTRAINT tags_user_id_fkey",
    "ALTER TABLE tags ADD CONSTRAINT tags_user_id_fkey FOREIGN KEY (user_id) REFERENCES users (id)",
    "DROP INDEX idx_task_tags_tag_id",
    "DROP INDEX idx_tasks_user_completed",
    "CREATE INDEX idx_tasks_user_completed ON tasks (completed, user_id)",
    "DROP INDEX uq_tags_user_name",
    "ALTER TABLE messages DROP CONSTRAINT ck_messages_role",
    "ALTER TABLE messages ALTER COLUMN created_at TYPE timestamp",
    "CREATE TABLE audit_log (id bigserial PRIMARY KEY, happened_at timestamptz NOT NULL DEFAULT now(), what text)",
]

#: (object, kind) of each planted difference on the database side.
PLANTED_DRIFTS = {
    ("tasks.due_date", "missing-column"), ("tasks.legacy_code", "extra-column"),
    ("messages.content", "column-type"), ("tasks.title", "column-length"), ("conversations.title", "nullability"),
    ("tasks.completed", "default"), ("messages.user_id", "fk-missing"), ("tags.user_id", "fk-on-delete"),
    ("task_tags.idx_task_tags_tag_id", "index-missing"), ("tasks.idx_tasks_user_completed", "index-order"),
    ("tags.(user_id, name)", "unique"), ("messages.role", "check"),
    ("messages.created_at", "timestamp-timezone"), ("audit_log", "extra-table"),
}


def spec_ddl() -> list[str]:
    from schema_architect.tools.database.ddl import schema_ddl
    from schema_architect.tools.spec.reader import parse_spec

    return schema_ddl(parse_spec(SPEC, "specs/database/schema.md").schema)


def database_sql() -> str:
    """The drifted database, as one script (for make_database)."""
    return ";\n".join([s.rstrip(";") for s in spec_ddl()] + PLANTED) + ";"


def make_project(root: Path) -> Path:
    (root / "specs" / "database").mkdir(parents=True, exist_ok=True)
    (root / "specs" / "database" / "schema.md").write_text(SPEC)
    (root / "backend").mkdir(exist_ok=True)
    (root / "backend" / "models.py").write_text(MODELS)
    return root

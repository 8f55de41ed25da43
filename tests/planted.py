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
    table missing from the database: reminders (in the spec and the models, dropped from the database)
"""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SPEC = (REPO / "specs" / "database" / "schema.md").read_text() + """
## Table: reminders

When to remind a user of a task.

| Column | Type | Constraints | Description |
|---|---|---|---|
| id | serial | PRIMARY KEY | Reminder id |
| user_id | text | NOT NULL | Owner: the Better Auth user id |
| task_id | integer | NOT NULL | The task to remind of |
| remind_at | timestamptz | NOT NULL | When |
| note | varchar(200) |  | What to say |
| sent | boolean | NOT NULL, DEFAULT false | Sent or not |
| created_at | timestamptz | NOT NULL, DEFAULT now() | When the row was created |
| updated_at | timestamptz | NOT NULL, DEFAULT now() | When the row last changed |

### Indexes

| Name | Columns | Unique | Method | Where | Reason |
|---|---|---|---|---|---|
| idx_reminders_user_remind | user_id, remind_at | no | btree |  | A user's next reminders, and the FK to users |
| idx_reminders_task_id | task_id | no | btree |  | The FK to tasks |

### Relationships

- user_id → users.id ON DELETE CASCADE
- task_id → tasks.id ON DELETE CASCADE
"""
MODELS = (REPO / "specs" / "database" / "models.py").read_text() + '''

class Note(SQLModel, table=True):
    __tablename__ = "notes"

    id: int | None = Field(default=None, primary_key=True)
    body: str = Field(sa_type=Text)


class Reminder(SQLModel, table=True):
    __tablename__ = "reminders"
    __table_args__ = (Index("idx_reminders_user_remind", "user_id", "remind_at"),
                      Index("idx_reminders_task_id", "task_id"))

    id: int | None = Field(default=None, primary_key=True)
    user_id: str = Field(sa_type=Text, foreign_key="users.id", ondelete="CASCADE")
    task_id: int = Field(foreign_key="tasks.id", ondelete="CASCADE")
    remind_at: datetime
    note: str | None = Field(default=None, max_length=200)
    sent: bool = Field(default=False, sa_column_kwargs={"server_default": text("false")})
    created_at: datetime = Field(default_factory=utcnow, sa_column_kwargs={"server_default": func.now()})
    updated_at: datetime = Field(default_factory=utcnow,
                                 sa_column_kwargs={"server_default": func.now(), "onupdate": func.now()})
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
    "DROP TABLE reminders",
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
    ("reminders", "missing-table"),
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


def database(url: str):
    """``database(work)`` as the server passes it to diff_project: ``await work(conn)`` on a connection."""
    import psycopg

    async def run(work):
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
            return await work(conn)

    return run


async def diff(project: Path, url: str, prove: bool = True):
    """The three-way diff of the project against the database at ``url``, with or without the proof."""
    from schema_architect.tools.diff_models_vs_spec import diff_project

    return await diff_project(project=project, spec_path=None, models=None, include_database=True, tables=None,
                              database=database(url), prove=prove)

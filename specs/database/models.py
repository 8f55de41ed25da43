"""SQLModel models of the reference todo app, written by hand to match specs/database/schema.md.

`schema-architect check --models specs/database/models.py` in this repository must report no drift
(tests/test_diff_tool.py checks it, against the embedded database too).
"""

from datetime import datetime, timezone

from sqlalchemy import CheckConstraint, Index, Text, func, text
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class User(SQLModel, table=True):
    """Better Auth's table: referenced, never migrated by us."""

    __tablename__ = "users"

    id: str = Field(sa_type=Text, primary_key=True)
    email: str = Field(sa_type=Text, unique=True)
    name: str = Field(sa_type=Text)


class Task(SQLModel, table=True):
    __tablename__ = "tasks"
    __table_args__ = (
        CheckConstraint("priority IN ('low', 'medium', 'high')", name="ck_tasks_priority"),
        Index("idx_tasks_user_created", "user_id", "created_at", postgresql_ops={"created_at": "DESC"}),
        Index("idx_tasks_user_completed", "user_id", "completed"),
    )

    id: int | None = Field(default=None, primary_key=True)
    user_id: str = Field(sa_type=Text, foreign_key="users.id", ondelete="CASCADE")
    title: str = Field(max_length=200)
    description: str | None = Field(default=None, sa_type=Text)
    completed: bool = Field(default=False, sa_column_kwargs={"server_default": text("false")})
    priority: str = Field(default="medium", max_length=10, sa_column_kwargs={"server_default": text("'medium'")})
    due_date: datetime | None = None
    created_at: datetime = Field(default_factory=utcnow, sa_column_kwargs={"server_default": func.now()})
    updated_at: datetime = Field(default_factory=utcnow,
                                 sa_column_kwargs={"server_default": func.now(), "onupdate": func.now()})


class Tag(SQLModel, table=True):
    __tablename__ = "tags"
    __table_args__ = (Index("uq_tags_user_name", "user_id", "name", unique=True),)

    id: int | None = Field(default=None, primary_key=True)
    user_id: str = Field(sa_type=Text, foreign_key="users.id", ondelete="CASCADE")
    name: str = Field(max_length=50)
    created_at: datetime = Field(default_factory=utcnow, sa_column_kwargs={"server_default": func.now()})
    updated_at: datetime = Field(default_factory=utcnow,
                                 sa_column_kwargs={"server_default": func.now(), "onupdate": func.now()})


class TaskTag(SQLModel, table=True):
    __tablename__ = "task_tags"
    __table_args__ = (Index("idx_task_tags_tag_id", "tag_id"), Index("idx_task_tags_user_id", "user_id"))

    task_id: int = Field(foreign_key="tasks.id", ondelete="CASCADE", primary_key=True)
    tag_id: int = Field(foreign_key="tags.id", ondelete="CASCADE", primary_key=True)
    user_id: str = Field(sa_type=Text, foreign_key="users.id", ondelete="CASCADE")
    created_at: datetime = Field(default_factory=utcnow, sa_column_kwargs={"server_default": func.now()})
    updated_at: datetime = Field(default_factory=utcnow,
                                 sa_column_kwargs={"server_default": func.now(), "onupdate": func.now()})


class Conversation(SQLModel, table=True):
    __tablename__ = "conversations"
    __table_args__ = (
        Index("idx_conversations_user_updated", "user_id", "updated_at", postgresql_ops={"updated_at": "DESC"}),
    )

    id: int | None = Field(default=None, primary_key=True)
    user_id: str = Field(sa_type=Text, foreign_key="users.id", ondelete="CASCADE")
    title: str | None = Field(default=None, max_length=200)
    created_at: datetime = Field(default_factory=utcnow, sa_column_kwargs={"server_default": func.now()})
    updated_at: datetime = Field(default_factory=utcnow,
                                 sa_column_kwargs={"server_default": func.now(), "onupdate": func.now()})


class Message(SQLModel, table=True):
    __tablename__ = "messages"
    __table_args__ = (
        CheckConstraint("role IN ('user', 'assistant', 'tool')", name="ck_messages_role"),
        Index("idx_messages_conversation_created", "conversation_id", "created_at"),
        Index("idx_messages_user_id", "user_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    conversation_id: int = Field(foreign_key="conversations.id", ondelete="CASCADE")
    user_id: str = Field(sa_type=Text, foreign_key="users.id", ondelete="CASCADE")
    role: str = Field(max_length=20)
    content: str = Field(sa_type=Text)
    created_at: datetime = Field(default_factory=utcnow, sa_column_kwargs={"server_default": func.now()})
    updated_at: datetime = Field(default_factory=utcnow,
                                 sa_column_kwargs={"server_default": func.now(), "onupdate": func.now()})

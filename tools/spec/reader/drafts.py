"""What one representation (a markdown table, an SQL block, a bullet list, a Python class, a section of
index or relationship bullets) says about one table, before the representations are merged."""

from __future__ import annotations

from dataclasses import dataclass, field

from ...schema.findings import Finding
from ...schema.model import Check, Column, Enum, ForeignKey, Index, Location, QueryPattern, UniqueConstraint

MARKDOWN_TABLE = "markdown table"
SQL_DDL = "SQL DDL"
BULLETS = "bullet list"
PYTHON = "Python model"
SECTION = "section"  # index / relationship / constraint / note bullets: add, never define columns

#: Which representation wins when two disagree about a column (lower wins).
PRECEDENCE = {MARKDOWN_TABLE: 0, SQL_DDL: 1, BULLETS: 2, PYTHON: 3, SECTION: 4}
PRECEDENCE_TEXT = "markdown table > SQL DDL > bullet list > Python model"


@dataclass
class ColumnDraft:
    column: Column
    #: Aspects the source actually said (type, nullable, default, unique, identity, allowed_values,
    #: primary_key); the rest are Column defaults and must not count as a disagreement.
    stated: set[str] = field(default_factory=set)
    unreadable_type: str | None = None

    def state(self, aspect: str, value: object) -> None:
        """The source says the column's ``aspect`` is ``value``: set it, and count it as said."""
        setattr(self.column, aspect, value)
        self.stated.add(aspect)


@dataclass
class TableDraft:
    name: str
    source: str
    location: Location
    #: True when the name is a guess (an implicit SQLModel class name, a "User Model" heading), so it
    #: may be matched to the plural table another representation names.
    weak_name: bool = False
    schema_name: str = "public"
    columns: dict[str, ColumnDraft] = field(default_factory=dict)
    primary_key: list[str] | None = None  # a table-level PRIMARY KEY (a, b)
    foreign_keys: list[ForeignKey] = field(default_factory=list)
    unique_constraints: list[UniqueConstraint] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    indexes: list[Index] = field(default_factory=list)
    description: str | None = None
    notes: list[str] = field(default_factory=list)
    query_patterns: list[QueryPattern] = field(default_factory=list)
    managed_by: str | None = None
    #: Columns said to be a foreign key without saying to what (resolved later or warned about).
    fk_without_target: dict[str, int] = field(default_factory=dict)

    def add_column(self, draft: ColumnDraft) -> None:
        existing = self.columns.get(draft.column.name)
        if existing is None:
            self.columns[draft.column.name] = draft
            return
        # Stated twice in one representation: keep the first, let later facts fill gaps.
        for aspect in draft.stated - existing.stated:
            setattr(existing.column, aspect, getattr(draft.column, aspect))
            existing.stated.add(aspect)

    @property
    def defines_columns(self) -> bool:
        return self.source != SECTION and any("type" in c.stated or c.unreadable_type is not None
                                              for c in self.columns.values())

    def pk_list(self) -> list[str]:
        if self.primary_key:
            return list(self.primary_key)
        return [name for name, c in self.columns.items() if c.column.primary_key]


@dataclass
class ReadResult:
    """What a reader of one representation (an SQL block, the whole document) found: table drafts, enum
    types and warnings."""

    drafts: list[TableDraft] = field(default_factory=list)
    enums: list[Enum] = field(default_factory=list)
    warnings: list[Finding] = field(default_factory=list)

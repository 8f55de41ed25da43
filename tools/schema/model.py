"""The one schema model every source is read into and every result is computed from.

    spec markdown ─┐
    SQLModel code ─┼─> Schema ─> lint / diff / explain / propose
    live catalog ──┘

Conventions that keep the three sources comparable:

* Names are as PostgreSQL stores them (unquoted identifiers folded to lower case by the readers).
* Column types are canonical PostgreSQL spellings from :mod:`tools.database.types` (``varchar(200)``,
  ``timestamptz``, ``integer``...). ``serial``/identity is not a type: it is ``Column.identity``.
* Defaults are database defaults only (``now()``, ``false``, ``'medium'``). Python-side defaults never
  reach the database and are not recorded here.
* ``on_delete`` is ``None`` when the source did not say; ``"NO ACTION"`` when it said so (the catalog
  always says).
* A spec may be silent about a column's nullability, default or type: the field then holds SQL's
  reading of silence (nullable, no default) and ``Column.unstated`` names the aspect, so that drift
  can say "not stated" instead of reporting the silence as a difference. Models and catalog state all.
* Every element may carry the ``Location`` it was read from (a spec line, a model file, ``database``).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

FkAction = Literal["CASCADE", "SET NULL", "SET DEFAULT", "RESTRICT", "NO ACTION"]
Identity = Literal["serial", "bigserial", "smallserial", "identity always", "identity by default"]

#: Tables that Better Auth creates and owns; we reference them, never define or alter them.
BETTER_AUTH_TABLES = frozenset(
    {"user", "users", "session", "sessions", "account", "accounts", "verification",
     "verifications", "verification_tokens", "jwks"}
)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Location(_Model):
    """Where an element came from: a file and line, or a live database (``file="database"``)."""

    file: str
    line: int | None = None

    def __str__(self) -> str:
        return f"{self.file}:{self.line}" if self.line else self.file


def location_of(*candidates: object) -> Location | None:
    """The first location any of the candidates (tables, columns, indexes...) carries."""
    for candidate in candidates:
        if (location := getattr(candidate, "location", None)) is not None:
            return location
    return None


class Column(_Model):
    name: str
    type: str = Field(description="Canonical PostgreSQL type, e.g. varchar(200), text, timestamptz")
    nullable: bool = True
    default: str | None = Field(None, description="Database default expression, e.g. now(), false")
    identity: Identity | None = Field(None, description="serial / identity: how the value is generated")
    primary_key: bool = False
    unique: bool = False
    allowed_values: list[str] | None = Field(
        None, description="A fixed value set (from CHECK ... IN, an enum or the spec's words)"
    )
    description: str | None = None
    on_update: str | None = Field(None, description="What keeps the value current on UPDATE: 'onupdate' (the "
                                  "models' SQLAlchemy onupdate) or 'trigger <name>' (a database trigger)")
    unstated: list[Literal["type", "nullable", "default"]] = Field(
        default_factory=list,
        description="Aspects the source said nothing about (or wrote unreadably): their values above are "
                    "SQL's reading of silence (NULL allowed, no default), and drift treats them as unknown",
    )
    location: Location | None = None


class ForeignKey(_Model):
    name: str | None = None
    columns: list[str]
    ref_table: str
    ref_columns: list[str] = Field(default_factory=lambda: ["id"])
    ref_schema: str | None = None
    on_delete: FkAction | None = None
    on_update: FkAction | None = None
    location: Location | None = None


class UniqueConstraint(_Model):
    name: str | None = None
    columns: list[str]
    location: Location | None = None


class Check(_Model):
    name: str | None = None
    expression: str = Field(description="The boolean expression, without the CHECK keyword")
    columns: list[str] = Field(default_factory=list)
    location: Location | None = None


class IndexColumn(_Model):
    name: str = Field(description="A column name, or an expression such as lower(email)")
    descending: bool = False
    nulls_first: bool | None = None
    is_expression: bool = False


class Index(_Model):
    name: str | None = None
    columns: list[IndexColumn]
    unique: bool = False
    method: str = "btree"
    where: str | None = Field(None, description="Partial index predicate")
    include: list[str] = Field(default_factory=list)
    reason: str | None = Field(None, description="Why the index exists (the query it serves)")
    primary: bool = Field(False, description="The index behind the primary key (live database)")
    constraint: str | None = Field(None, description="Name of the constraint it backs, if any")
    valid: bool = True
    location: Location | None = None

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]


class QueryPattern(_Model):
    description: str
    sql: str | None = None
    location: Location | None = None


class Policy(_Model):
    name: str
    command: str = "ALL"
    using: str | None = None
    with_check: str | None = None
    roles: list[str] = Field(default_factory=list)


class Table(_Model):
    name: str
    schema_name: str = "public"
    columns: list[Column] = Field(default_factory=list)
    primary_key: list[str] = Field(default_factory=list)
    foreign_keys: list[ForeignKey] = Field(default_factory=list)
    unique_constraints: list[UniqueConstraint] = Field(default_factory=list)
    checks: list[Check] = Field(default_factory=list)
    indexes: list[Index] = Field(default_factory=list)
    description: str | None = None
    query_patterns: list[QueryPattern] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)
    managed_by: str | None = Field(None, description='"better-auth" for tables we reference only')
    rls_enabled: bool | None = None
    rls_forced: bool | None = None
    policies: list[Policy] = Field(default_factory=list)
    location: Location | None = None

    def column(self, name: str) -> Column | None:
        return next((c for c in self.columns if c.name == name), None)

    @property
    def qualified_name(self) -> str:
        return f"{self.schema_name}.{self.name}"


class Enum(_Model):
    name: str
    values: list[str]
    schema_name: str = "public"
    location: Location | None = None


class Schema(_Model):
    tables: list[Table] = Field(default_factory=list)
    enums: list[Enum] = Field(default_factory=list)
    query_patterns: list[QueryPattern] = Field(
        default_factory=list, description="Query patterns not tied to one table"
    )
    source: str | None = Field(None, description="spec path, 'models' or a database description")

    def table(self, name: str) -> Table | None:
        """Find a table by name, or by ``schema.name``."""
        schema_name, _, bare = name.rpartition(".")
        return next(
            (t for t in self.tables if t.name == bare and (not schema_name or t.schema_name == schema_name)),
            None,
        )

    def only(self, names: list[str] | None) -> Schema:
        """A copy holding just the named tables (all when ``names`` is empty)."""
        if not names:
            return self
        wanted = {n.lower() for n in names}
        return self.model_copy(
            update={"tables": [t for t in self.tables if t.name in wanted or t.qualified_name in wanted]}
        )

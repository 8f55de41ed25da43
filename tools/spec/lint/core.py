"""What every rule shares: the rule ids, the context a rule reads, the ``@rule`` decorator, and small
helpers over tables, columns and index shapes (index shapes are shared with explain_indexes).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from pglast.keywords import RESERVED_KEYWORDS, TYPE_FUNC_NAME_KEYWORDS

from ...database.ddl import pk_columns, qualified
from ...database.quoting import ident, ident_list, qualified_name
from ...database.types import varchar_length
from ...schema.findings import RuleId, Severity
from ...schema.model import ForeignKey, Index, Location, Schema, Table

DOCS_PATH = Path(__file__).resolve().parents[3] / "docs" / "rules.md"

# Words PostgreSQL will not take as a bare table or column name (ColId excludes both categories).
RESERVED_NAMES = frozenset(RESERVED_KEYWORDS) | frozenset(TYPE_FUNC_NAME_KEYWORDS)

# Words in a table's description or notes that declare it shared on purpose (not user-owned).
SHARED_WORDS = re.compile(r"\b(shared|global|lookup|system-wide|not user-owned)\b", re.IGNORECASE)


class Hit(NamedTuple):
    """What a rule found; :func:`lint_schema` adds the rule id and severity."""

    message: str
    object: str | None
    location: Location | None
    fix: str


@dataclass
class LintContext:
    """Everything a rule needs, worked out once per :func:`lint_schema` call."""

    schema: Schema
    owner_column: str
    users_table: str
    users_id_type: str
    #: Our own tables: not Better Auth's, not the users table.
    tables: list[Table] = field(default_factory=list)
    #: Qualified name of each user-owned table -> how it is owned (for messages).
    owned: dict[str, str] = field(default_factory=dict)

    def is_users_ref(self, fk: ForeignKey) -> bool:
        return fk.ref_table == self.users_table

    def owner_fk(self, table: Table) -> ForeignKey | None:
        return next((fk for fk in table.foreign_keys if fk.columns == [self.owner_column]), None)


Rule = Callable[[LintContext], Iterable[Hit]]


def rule(rule_id: RuleId, severity: Severity) -> Callable[[Callable[[LintContext], Iterable[Hit]]], Rule]:
    """Attach a rule id and severity to a rule function."""

    def wrap(fn: Callable[[LintContext], Iterable[Hit]]) -> Rule:
        fn.id = rule_id  # type: ignore[attr-defined]
        fn.severity = severity  # type: ignore[attr-defined]
        return fn

    return wrap


# ---------------------------------------------------------------------------------------------------
# Small helpers


def py_type(pg_type: str) -> str:
    """The SQLModel annotation for a key column type (used in model-side fix examples)."""
    if pg_type == "uuid":
        return "uuid.UUID"
    if pg_type in ("integer", "bigint", "smallint"):
        return "int"
    return "str"


def type_family(pg_type: str) -> str:
    """Types an FK can join without surprises compare equal: all string types are one family."""
    if pg_type in ("text", "varchar", "citext") or varchar_length(pg_type) is not None:
        return "text"
    return pg_type


def mentions(text: str | None, word: str) -> bool:
    return text is not None and re.search(rf"\b{re.escape(word)}\b", text, re.IGNORECASE) is not None


class IndexShape(NamedTuple):
    """An index as the planner sees it: real ones plus those implied by PK/UNIQUE in a spec."""

    name: str | None
    keys: tuple[tuple[str, bool, bool, bool | None], ...]  # (name, expression, desc, nulls_first)
    unique: bool
    method: str
    where: str | None
    include: tuple[str, ...]
    primary: bool
    constraint: str | None
    source: Index | None  # None: implied by a PK or UNIQUE constraint

    @property
    def names(self) -> list[str]:
        return [k[0] for k in self.keys]

    @property
    def has_expression(self) -> bool:
        return any(k[1] for k in self.keys)

    def label(self, table: Table) -> str:
        return self.name or f"the index on {qualified(table)} ({ident_list(self.names)})"


def norm_where(where: str | None) -> str | None:
    if where is None:
        return None
    text = " ".join(where.lower().split())
    while text.startswith("(") and text.endswith(")"):
        text = text[1:-1].strip()
    return text


def index_shapes(table: Table) -> list[IndexShape]:
    """Valid indexes of a table, plus the unique indexes its PK and UNIQUE constraints imply.

    A live database lists the PK/UNIQUE indexes itself; a spec or a model usually does not, so an
    implied index is added only when no real unique index has the same columns.
    """
    out = [
        IndexShape(ix.name, tuple((c.name, c.is_expression, c.descending, c.nulls_first) for c in ix.columns),
            ix.unique or ix.primary, ix.method, norm_where(ix.where), tuple(ix.include), ix.primary,
            ix.constraint, ix)
        for ix in table.indexes if ix.valid
    ]
    real_unique = {tuple(ix.names) for ix in out if ix.unique and ix.where is None}
    implied: list[tuple[list[str], bool, str | None]] = []
    if pk := pk_columns(table):
        implied.append((pk, True, f"{table.name}_pkey"))
    implied += [(uc.columns, False, uc.name or f"{table.name}_{'_'.join(uc.columns)}_key")
                for uc in table.unique_constraints]
    implied += [([c.name], False, f"{table.name}_{c.name}_key")
                for c in table.columns if c.unique and not c.primary_key]
    for cols, primary, constraint in implied:
        if tuple(cols) not in real_unique:
            real_unique.add(tuple(cols))
            out.append(IndexShape(constraint, tuple((c, False, False, None) for c in cols), True, "btree", None,
                           (), primary, constraint, None))
    return out


def covers_columns(ix: IndexShape, columns: list[str]) -> bool:
    """A plain btree index whose leading columns are exactly `columns` (in any order)."""
    n = len(columns)
    return (ix.method == "btree" and ix.where is None and len(ix.keys) >= n
            and not any(k[1] for k in ix.keys[:n]) and set(ix.names[:n]) == set(columns))


#: The rules that are about indexes (explain_indexes reports these as its static problems).
INDEX_RULE_IDS: tuple[str, ...] = ("fk-not-indexed", "owner-not-indexed", "boolean-index", "redundant-index",
                                   "duplicate-index")


def add_fk_sql(table: Table, fk: ForeignKey, on_delete: str) -> str:
    name = fk.name or f"{table.name}_{'_'.join(fk.columns)}_fkey"
    ref = qualified_name(fk.ref_schema, fk.ref_table)
    return (f"ALTER TABLE {qualified(table)} DROP CONSTRAINT {ident(name)}, ADD CONSTRAINT {ident(name)} "
            f"FOREIGN KEY ({ident_list(fk.columns)}) REFERENCES {ref} ({ident_list(fk.ref_columns)}) "
            f"ON DELETE {on_delete};")



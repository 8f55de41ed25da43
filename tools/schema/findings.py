"""One result type for everything a tool has to say about a schema or a query.

Lint rules, spec parse warnings, spec conflicts, index problems, model import failures and SQL
refusals are all a :class:`Finding`: a stable kebab-case ``rule`` id, a ``severity``, a message that
makes sense on its own, where it was found, and how to fix it.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from .model import Location

Severity = Literal["error", "warning", "info"]


class Finding(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rule: str = Field(description="Stable kebab-case id, documented in docs/rules.md (lint) or docs/findings.md")
    severity: Severity
    message: str
    object: str | None = Field(None, description="What it is about: table, table.column or table.index")
    location: Location | None = None
    fix: str | None = Field(None, description="What to change, in words or as code/SQL")


class SpecConflict(BaseModel):
    """One spec says two things about one column (its table says TEXT, its SQL block VARCHAR(200))."""

    model_config = ConfigDict(extra="forbid")

    object: str = Field(description="table.column (or table) the two statements disagree on")
    aspect: str = Field(description="type, nullable, default, primary_key, unique, foreign_key...")
    winner: str = Field(description="The value kept")
    winner_location: Location | None = None
    loser: str = Field(description="The value overruled")
    loser_location: Location | None = None
    why: str = Field(description="Why the winner wins (the precedence rule applied)")

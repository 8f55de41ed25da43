"""The drift result model: sides, severities, drift kinds, fixes."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from ..schema.model import Location

SideName = Literal["spec", "models", "database"]
SIDE_ORDER: tuple[str, ...] = ("spec", "models", "database")
Severity = Literal["breaking", "data-loss-risk", "degraded", "cosmetic", "info"]
SEVERITIES: tuple[Severity, ...] = ("breaking", "data-loss-risk", "degraded", "cosmetic", "info")

DriftKind = Literal[
    "missing-table", "extra-table", "table-name",
    "missing-column", "extra-column", "possible-rename",
    "column-type", "column-length", "timestamp-timezone", "nullability", "default", "identity",
    "primary-key", "fk-missing", "fk-extra", "fk-target", "fk-on-delete", "fk-on-update",
    "unique", "check", "enum-labels",
    "index-missing", "index-extra", "index-columns", "index-order", "index-predicate",
    "index-method", "index-unique", "index-include", "index-name", "updated-at-not-maintained",
]  # fmt: skip


# ---------------------------------------------------------------------------------------------------
# Result model


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SideValue(_Model):
    """What one side says about the object; ``value`` is None when the side does not have it."""

    value: str | None
    location: Location | None = None


class Fix(_Model):
    """One way to make ``side`` agree. Only the fields that apply to that side are set."""

    side: SideName
    action: str = Field(description="What this fix does, in one sentence")
    spec_patch: str | None = Field(None, description="The corrected spec line(s), canonical markdown")
    model_change: str | None = Field(None, description="SQLModel code to put in the model")
    migration_sql: str | None = Field(None, description="PostgreSQL to run, lock notes as comments")
    alembic_op: str | None = Field(None, description="The same change as Alembic operations")
    lock_notes: str | None = Field(None, description="Locks, rewrites and scans the SQL causes")
    proof: Literal["proven", "withheld"] | None = Field(None, description="proven: applied to a copy, its "
                                                        "drift is gone and nothing else changed; None: not tried")
    proof_note: str | None = Field(None, description="What the proof showed, or why the fix is withheld")


class Drift(_Model):
    object: str = Field(description='table, "table.column", "table.index_name" or an enum name')
    kind: DriftKind
    severity: Severity
    message: str
    sides: dict[str, SideValue] = Field(description="What each compared side says, with its location")
    fixes: list[Fix] = Field(default_factory=list)
    withheld: list[Fix] = Field(default_factory=list, description="Fixes that failed their proof on a copy: "
                                "not offered, each with the reason in proof_note")
    caveat: str | None = Field(None, description="Why this drift may not hold for the project, e.g. the "
                               "models were read with another SQLModel version than the project pins")


class Unstated(_Model):
    """An aspect a side says nothing about while another side states something else than silence means."""

    object: str = Field(description='"table.column"')
    aspect: Literal["type", "nullability", "default"]
    silent: list[SideName] = Field(description="The sides that do not state it")
    said: dict[str, str | None] = Field(description="What each side that states it says")
    message: str


class DiffResult(_Model):
    clean: bool = Field(description="True when nothing worse than cosmetic differs")
    summary: dict[str, int] = Field(description="Drift count per severity")
    # Plain strings (spec, models, database): an enum here would add ~80 bytes to every tools/list (issue 13)
    reference: str = Field(description="The side treated as the source of truth")
    compared: list[str] = Field(description="The sides compared with the reference")
    drifts: list[Drift] = Field(description="Each difference with its kind, severity, sides and fixes")
    managed_elsewhere: list[str] = Field(description="Better Auth's tables: compared only for what ours "
                                         "depend on, never altered")
    better_auth: dict[str, str] = Field(default_factory=dict, description="For each table Better Auth could "
                                        "own: the evidence that decided whether it is Better Auth's or ours")
    unstated: list[Unstated] = Field(default_factory=list, description="Aspects the spec does not state "
                                     "(nullability, default, type) where another side says something: not drift")


def worst(severities: Iterable[str]) -> Severity:
    return SEVERITIES[min(SEVERITIES.index(s) for s in severities)]



"""diff_models_vs_spec: read the spec, the models and (optionally) the live database, then diff them.

Each side that cannot be read becomes a finding, not a failure, as long as two sides remain to compare.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path

import anyio
from pydantic import BaseModel, Field

from ..drift import SEVERITIES, DiffResult, Drift, diff_schemas
from ..schema.findings import Finding
from ..models.reader import read_models
from ..schema.model import Schema
from ..spec.file import SpecFileError, display_path, read_spec_bytes
from ..spec.reader import parse_spec

Progress = Callable[[float, str], Awaitable[None]]


class SideRead(BaseModel):
    side: str = Field(description="spec, models or database")
    source: str = Field(description="The spec file, the model files, or which database")
    tables: int


class DiffModelsVsSpecResult(BaseModel):
    """Drift between the spec (source of truth), the SQLModel models and the live database."""

    clean: bool = Field(description="True when nothing worse than cosmetic differs")
    summary: dict[str, int] = Field(description="Drift count per severity")
    reference: str = Field(description="The side treated as the source of truth")
    compared: list[str] = Field(description="The sides compared with the reference")
    drifts: list[Drift] = Field(description="Each difference with its kind, severity, sides and fixes")
    managed_elsewhere: list[str] = Field(description="Better Auth tables seen and skipped")
    sides: list[SideRead] = Field(description="What was read for each side")
    findings: list[Finding] = Field(description="Sides that could not be read fully: import errors, "
                                    "spec parse warnings")
    spec_hash: str | None = Field(None, description="Content hash of the spec as read")
    report: str = Field(description="The drift as a short readable report")


async def diff_project(
    *, project: Path, spec_path: str | None, models: str | None, include_database: bool,
    tables: list[str] | None, include_managed: bool = False, owner_column: str = "user_id",
    models_timeout: float = 30.0,
    database: Callable[[], AbstractAsyncContextManager] | None = None, database_name: Callable[[], str] | None = None,
    progress: Progress | None = None,
) -> DiffModelsVsSpecResult:
    async def step(fraction: float, message: str) -> None:
        if progress is not None:
            await progress(fraction, message)

    sides: dict[str, Schema] = {}
    read: list[SideRead] = []
    findings: list[Finding] = []
    spec_hash = None

    await step(0.0, "reading the spec")
    try:
        spec_file, text, spec_hash = await anyio.to_thread.run_sync(read_spec_bytes, project, spec_path)
        shown = display_path(project, spec_file)
        parsed = parse_spec(text, file=shown)
        sides["spec"] = parsed.schema
        findings += parsed.warnings
        read.append(SideRead(side="spec", source=shown, tables=len(parsed.schema.tables)))
    except SpecFileError as exc:
        findings.append(Finding(rule="spec-unreadable", severity="error", message=str(exc),
                                fix="Pass `spec` with the path of the schema spec."))

    await step(0.25, "importing the models in a child process")
    models_read = await anyio.to_thread.run_sync(
        lambda: read_models(project, models, timeout=models_timeout))
    findings += models_read.findings
    if models_read.files and models_read.schema.tables:
        sides["models"] = models_read.schema
        read.append(SideRead(side="models", source=", ".join(models_read.files), tables=len(models_read.schema.tables)))

    if include_database:
        if database is None:
            findings.append(Finding(rule="database-unavailable", severity="error",
                                    message="No database is configured.", fix="Set DATABASE_URL."))
        else:
            await step(0.5, "reading the live catalog (one statement)")
            from ..database.catalog import read_catalog

            async with database() as conn:
                catalog = await read_catalog(conn)
            sides["database"] = catalog.schema
            read.append(SideRead(side="database", source=database_name() if database_name else "database",
                                 tables=len(catalog.schema.tables)))

    if len(sides) < 2:
        have = ", ".join(sides) or "nothing"
        problems = "; ".join(f.message for f in findings if f.severity == "error") or "no models were found"
        raise SpecFileError(
            f"Need two sides to compare, but could read only {have} ({problems}). Pass `models` with the "
            "path of your SQLModel models, or include_database=true, or fix the spec path."
        )
    await step(0.75, f"comparing {', '.join(sides)}")
    result: DiffResult = diff_schemas(sides, tables=tables, include_managed=include_managed,
                                      owner_column=owner_column)
    await step(1.0, "done")
    return DiffModelsVsSpecResult(
        clean=result.clean, summary=result.summary, reference=result.reference, compared=result.compared,
        drifts=result.drifts, managed_elsewhere=result.managed_elsewhere, sides=read, findings=findings,
        spec_hash=spec_hash, report=render_report(result, read),
    )


def render_report(result: DiffResult, sides: list[SideRead]) -> str:
    lines = ["Compared " + ", ".join(f"{s.side} ({s.source}, {s.tables} tables)" for s in sides) + "."]
    if not result.drifts:
        lines.append("No drift.")
    for drift in sorted(result.drifts, key=lambda d: (SEVERITIES.index(d.severity), d.object)):
        lines.append(f"[{drift.severity}] {drift.object}: {drift.message}")
    if result.managed_elsewhere:
        lines.append("Managed elsewhere (Better Auth, not compared): " + ", ".join(result.managed_elsewhere))
    return "\n".join(lines)


__all__ = ["DiffModelsVsSpecResult", "diff_project", "render_report"]

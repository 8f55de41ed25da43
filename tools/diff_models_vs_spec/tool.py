"""The diff_models_vs_spec tool as an agent calls it: its arguments, what it says about itself, its result's shape."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from ..schema.call import READ_ONLY, ToolCall, ToolSpec
from ..schema.shape import Shape, table_of_object
from . import DiffModelsVsSpecResult, diff_project


async def diff_models_vs_spec(
    call: ToolCall,
    spec: Annotated[str | None, Field(
        description="Spec file relative to the project root (default specs/database/schema.md)")] = None,
    models: Annotated[str | None, Field(
        description="Models file, folder or dotted module in the project (default: found under backend/ "
        "or models.py); imported, so its code runs, in a child process")] = None,
    include_database: Annotated[bool, Field(
        description="Also compare the live database (DATABASE_URL, or the embedded one)")] = False,
    tables: Annotated[list[str] | None, Field(description="Only these tables (default: all)")] = None,
    include_managed: Annotated[bool, Field(
        description="Also list Better Auth tables' differences ours do not depend on (info)")] = False,
) -> DiffModelsVsSpecResult:
    """Find drift between the spec (the truth), the SQLModel models and optionally the live database.

    Each drift: object, kind, severity (breaking, data-loss-risk, degraded, cosmetic, info), each side's
    value at file:line, and fixes (spec patch, model code, migration SQL, Alembic op), each proven on a
    copy first. What the spec leaves unstated is unknown, not drift. The models are imported (their code
    runs) in a child process without the server's secrets; paths outside the project are refused.
    """
    settings, db = call.settings, call.db

    async def progress(fraction: float, message: str) -> None:
        await call.progress(fraction, 1.0, message)

    skipped = await call.database_skipped(db) if include_database else None
    return await diff_project(
        project=settings.project, spec_path=spec or settings.spec_path, models=models or settings.models,
        include_database=include_database, tables=tables, include_managed=include_managed,
        owner_column=settings.owner_column, models_timeout=settings.models_timeout_s,
        database=db.run_read_only if skipped is None else None, database_name=db.describe,
        progress=progress, no_database=skipped.for_agent() if skipped is not None else None,
    )


TOOL = ToolSpec(
    diff_models_vs_spec, title="Diff models vs spec (and database)", hints=READ_ONLY, result=DiffModelsVsSpecResult,
    paged=True, touches_database=True,
    shape=Shape(
        summary_omits={"report": None},
        per_table={"drifts": table_of_object, "unstated": table_of_object, "findings": table_of_object},
        first_page_only=frozenset({"better_auth", "managed_elsewhere", "sides"}), whole_only=frozenset({"report"})),
)

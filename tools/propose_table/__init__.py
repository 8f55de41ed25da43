"""propose_table end to end: read the spec (and the database), design, prove, and optionally write.

The spec is written only when the caller passes the content hash it read, and only through an atomic
replace; replacing an existing table's section needs an explicit confirmation.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path

import anyio
from pydantic import BaseModel, Field

from .design import ProposalError, ProposedColumn, TableDesign, design_table
from .proof import DryRun, dry_run
from ..schema.model import Schema
from ..spec.file import SpecFileError, display_path, read_spec_bytes, resolve_spec_path, \
    write_spec_atomically
from ..spec.reader import parse_spec
from ..spec.writer import upsert_table_section


class ConfirmBreaking(BaseModel):
    confirm: bool = Field(description="Yes, replace the existing section")
    asked: bool = Field(True, description="Whether the user was asked (set by the server)")


class ProposeTableResult(TableDesign):
    dry_run: DryRun | None = Field(None, description="The DDL run on a real database, then rolled back")
    applied: bool = Field(False, description="Whether the section was written into the spec")
    spec_path: str = Field(description="The spec file, relative to the project root")
    spec_hash: str | None = Field(None, description="The spec's content hash after this call")
    message: str = Field(description="What happened, in one paragraph")


def spec_has_table(project: Path, spec_path: str | None, name: str) -> bool:
    try:
        _, text, _ = read_spec_bytes(project, spec_path)
    except SpecFileError:
        return False
    return parse_spec(text).schema.table(name.strip().lower()) is not None


async def propose_table(
    *, project: Path, spec_path: str | None, name: str, purpose: str, columns: list[ProposedColumn],
    user_owned: bool = True, references: list[str] | None = None, query_patterns: list[str] | None = None,
    apply: bool = False, expected_spec_hash: str | None = None, replace: bool = False, confirmed: bool = False,
    owner_column: str = "user_id", models_timeout: float = 30.0,
    database: Callable[[], AbstractAsyncContextManager] | None = None, database_name: Callable[[], str] | None = None,
) -> ProposeTableResult:
    spec_file = resolve_spec_path(project, spec_path)
    shown = display_path(project, spec_file)
    try:
        _, text, digest = await anyio.to_thread.run_sync(read_spec_bytes, project, spec_path)
        spec = parse_spec(text, file=shown).schema
    except SpecFileError:
        if spec_file.exists():
            raise
        text, digest, spec = None, None, Schema()

    notes: list[str] = []
    existing = spec
    if database is not None:
        try:
            async with database() as conn:
                from ..database.catalog import read_catalog

                live = (await read_catalog(conn)).schema
            known = {t.name for t in spec.tables}
            existing = spec.model_copy(update={"tables": spec.tables + [t for t in live.tables if t.name not in known]})
        except Exception as exc:  # an unreachable database only costs the dry run
            notes.append(f"No dry run: the database could not be read ({type(exc).__name__}).")
            database = None

    design = design_table(name=name, purpose=purpose, columns=columns, user_owned=user_owned,
                          references=references, query_patterns=query_patterns, existing=existing,
                          owner_column=owner_column, replace=replace)
    result = ProposeTableResult(**design.model_dump(), spec_path=shown, spec_hash=digest, message="")

    if database is not None:
        async with database() as conn:
            result.dry_run = await dry_run(conn, design.table, existing, database=database_name() if database_name
                                           else "database", models_timeout=models_timeout)
    else:
        notes.append("The DDL was not run: no database is configured (set DATABASE_URL or enable the "
                     "embedded PostgreSQL).")

    if apply:
        _refuse_unsafe_apply(result, spec_file, text, expected_spec_hash, replace, confirmed, design)
        new_text = upsert_table_section(text if text is not None else f"# Database schema\n", design.table)
        result.spec_hash = await anyio.to_thread.run_sync(write_spec_atomically, spec_file, new_text,
                                                          expected_spec_hash if text is not None else None)
        result.applied = True
        notes.append(f"Wrote the {design.table.name} section into {shown}.")
    result.message = " ".join(notes + [_summary(result)])
    return result


def _refuse_unsafe_apply(result: ProposeTableResult, spec_file: Path, text: str | None, expected_hash: str | None,
                         replace: bool, confirmed: bool, design: TableDesign) -> None:
    if result.dry_run is not None and not result.dry_run.ok:
        raise ProposalError(
            "Not written: the dry run failed "
            f"({result.dry_run.error or 'the generated code does not match the DDL'}). Fix the proposal first."
        )
    if text is not None and expected_hash is None:
        raise ProposalError(
            "apply=true needs expected_spec_hash: call read_schema_spec, review the spec, and pass its "
            "content_hash, so a spec changed in the meantime is never overwritten."
        )
    if replace and text is not None and parse_spec(text).schema.table(design.table.name) is not None and not confirmed:
        raise ProposalError(
            f"Replacing the section of {design.table.name} is a breaking change and was not confirmed. Ask the "
            "user, then call again with confirm_breaking=true (clients that support elicitation are asked "
            "directly)."
        )


def _summary(result: ProposeTableResult) -> str:
    if result.dry_run is None:
        proof = "not run"
    elif result.dry_run.ok:
        proof = "the DDL ran on the database (rolled back) and the SQLModel code matches it"
    else:
        proof = f"FAILED: {result.dry_run.error or 'the code differs from the DDL'}"
    return (f"Proposed {result.table.name}: {len(result.table.columns)} columns, {len(result.table.indexes)} "
            f"indexes, {len(result.lint)} lint finding(s). Dry run: {proof}.")


__all__ = ["ConfirmBreaking", "ProposeTableResult", "propose_table", "spec_has_table"]

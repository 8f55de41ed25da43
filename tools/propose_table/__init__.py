"""propose_table end to end: read the spec (and the database), design, prove, and optionally write.

The spec is written only when the caller passes the content hash it read, and only through an atomic
replace; replacing an existing table's section needs an explicit confirmation.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import anyio
from pydantic import BaseModel, Field

from ..schema.errors import DatabaseUnavailable
from ..schema.model import Schema
from ..spec.file import SpecFileChanged, SpecFileError, display_path, read_spec_bytes, resolve_spec_path, update_spec
from ..spec.reader import parse_spec
from ..spec.sections import SectionPlan, SpecWriteError, plan_table_write, table_exists
from ..spec.writer import write_table_section
from .design import ProposalError, ProposedColumn, TableDesign, design_table
from .proof import DryRun, dry_run


class ConfirmBreaking(BaseModel):
    """What the person is asked before a proposal replaces a table's section (the elicitation form)."""

    confirm: bool = Field(description="Yes, replace the section as described")


class ProposeTableResult(TableDesign):
    dry_run: DryRun | None = Field(None, description="The DDL run on a real database, then rolled back")
    applied: bool = Field(False, description="Whether the section was written into the spec")
    spec_path: str = Field(description="The spec file, relative to the project root")
    spec_hash: str | None = Field(None, description="The spec's content hash after this call")
    message: str = Field(description="What happened, in one paragraph")


def replace_plan(project: Path, spec_path: str | None, name: str) -> tuple[SectionPlan, str] | None:
    """What replacing ``name``'s section would do to the spec as it is now, and the spec's hash; None when
    there is nothing to replace (no spec, no such table) or the write would be refused anyway."""
    try:
        _, text, digest = read_spec_bytes(project, spec_path)
        plan = plan_table_write(text, name, replace=True)
    except (SpecFileError, SpecWriteError):
        return None
    return (plan, digest) if plan.exists else None


def spec_has_table(project: Path, spec_path: str | None, name: str) -> bool:
    try:
        _, text, _ = read_spec_bytes(project, spec_path)
    except SpecFileError:
        return False
    return table_exists(text, name)


class DeclinedChanges:
    """Changes a person said no to, remembered for ``ttl_s`` (in this server's memory) so that a retry of
    the same change is refused without asking again, whatever the agent passes."""

    def __init__(self, ttl_s: float = 15 * 60) -> None:
        self.ttl_s = ttl_s
        self._until: dict[str, tuple[float, str]] = {}

    @staticmethod
    def key(name: str, content: dict) -> str:
        """The change's identity: the table and what the agent proposed for it (canonical JSON)."""
        blob = json.dumps({"name": name.strip().lower(), **content}, sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()

    def remember(self, key: str, answer: str) -> None:
        self._until[key] = (time.monotonic() + self.ttl_s, answer)

    def answer(self, key: str) -> str | None:
        """The person's answer ("declined", "cancelled"...) while it is remembered, else None."""
        now = time.monotonic()
        for stale in [k for k, (until, _) in self._until.items() if until <= now]:
            del self._until[stale]
        found = self._until.get(key)
        return found[1] if found else None


async def propose_table(
    *, project: Path, spec_path: str | None, name: str, purpose: str, columns: list[ProposedColumn],
    user_owned: bool = True, references: list[str] | None = None, query_patterns: list[str] | None = None,
    apply: bool = False, expected_spec_hash: str | None = None, replace: bool = False, confirmed: bool = False,
    can_ask: bool = False,
    owner_column: str = "user_id", models_timeout: float = 30.0,
    database: Callable[[Callable[..., Awaitable]], Awaitable] | None = None,
    database_name: Callable[[], str] | None = None, no_database: str | None = None,
) -> ProposeTableResult:
    """``database(work)`` runs ``await work(conn)`` on a connection (server/db.py's ``run_read_only``: no
    check before it, and rerun on a new connection if the pooled one was dead; the work commits nothing)."""
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
    if text is None:
        notes.append(f"[spec-unreadable] No spec file at {shown} in the project root {project.resolve()}: the "
                     "table was designed against an empty spec (apply=true creates the file).")
    existing, skipped = spec, False
    if database is not None:
        try:
            from ..database.catalog import read_catalog

            live = (await database(read_catalog)).schema
            known = {t.name for t in spec.tables}
            existing = spec.model_copy(update={"tables": spec.tables + [t for t in live.tables if t.name not in known]})
        except DatabaseUnavailable as exc:  # an unreachable database only costs the dry run
            notes.append(f"[database-unavailable] No dry run: {exc.problem}")
            database, skipped = None, True
        except Exception as exc:  # noqa: BLE001 - nor does a catalog it cannot read
            notes.append(f"[database-unavailable] No dry run: the database's catalog could not be read "
                         f"({type(exc).__name__}).")
            database, skipped = None, True

    design = design_table(name=name, purpose=purpose, columns=columns, user_owned=user_owned,
                          references=references, query_patterns=query_patterns, existing=existing,
                          owner_column=owner_column, replace=replace)
    result = ProposeTableResult(**design.model_dump(), spec_path=shown, spec_hash=digest, message="")

    if database is not None:
        shown_database = database_name() if database_name else "database"
        result.dry_run = await database(lambda conn: dry_run(conn, design.table, existing, database=shown_database,
                                                             models_timeout=models_timeout))
    elif not skipped:
        notes.append(f"No dry run: {no_database}" if no_database else "[database-unavailable] No dry run: no "
                     "database is configured (set DATABASE_URL or enable the embedded PostgreSQL).")

    if apply:
        _refuse_unsafe_apply(result, text, digest, expected_spec_hash)
        plan = _plan(text, design.table.name, replace)
        if plan is not None and plan.exists and not confirmed:
            raise ProposalError(_unconfirmed(design.table.name, plan, can_ask))

        def change(current: str) -> str:
            try:
                new_text, written = write_table_section(current or "# Database schema\n", design.table,
                                                        replace=replace)
            except SpecWriteError as exc:
                raise ProposalError(str(exc)) from None
            plans.append(written)
            return new_text

        plans: list[SectionPlan] = []
        result.spec_hash = await anyio.to_thread.run_sync(
            update_spec, spec_file, expected_spec_hash if text is not None else None, change)
        result.applied = True
        written = plans[-1]
        if written.start is None:
            notes.append(f"Added the {design.table.name} section to {shown}.")
        else:
            notes.append(f"Replaced the {design.table.name} section of {shown} (was lines {written.first_line}-"
                         f"{written.last_line}).")
            notes += [f"Kept the nested section of {kept[0]} as it was." for kept in written.kept]
            if written.elsewhere:
                notes.append(f"The spec also states {design.table.name} outside its section "
                             f"({'; '.join(written.elsewhere)}): update that to match.")
    result.message = " ".join(notes + [_summary(result)])
    return result


def _plan(text: str | None, name: str, replace: bool) -> SectionPlan | None:
    if text is None:
        return None
    try:
        return plan_table_write(text, name, replace=replace)
    except SpecWriteError as exc:
        raise ProposalError(str(exc)) from None


def _unconfirmed(name: str, plan: SectionPlan, can_ask: bool) -> str:
    what = f"Replacing the section of {name} is a breaking change. {plan.describe()}"
    if can_ask:
        return f"Not written: the user did not confirm it. {what}"
    return (f"Not written: {what} This client cannot ask the user directly: tell them exactly that, and only if "
            "they say yes in the conversation, call again with confirm_breaking=true.")


def _refuse_unsafe_apply(result: ProposeTableResult, text: str | None, digest: str | None,
                         expected_hash: str | None) -> None:
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
    if text is not None and digest != expected_hash:
        raise SpecFileChanged(
            "The spec changed since you read it (its content hash differs from expected_spec_hash). "
            "Call read_schema_spec again, review the change, and pass the new hash."
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


#: Round trips to the database for one call, and for the example call of docs/tools/propose_table.md (shown
#: there; tests/test_round_trip_counts.py counts them at a proxy and holds both).
ROUND_TRIPS: tuple[int, str] = (8, (
    "3 plus one per DDL statement (8 for the example, 5 statements): the catalog; BEGIN, the settings and "
    "which referenced tables exist, in one write; each DDL statement alone, the transaction checked still "
    "open before the next; the catalog read back, ROLLBACK and the check that nothing stayed, in one "
    "write. None without a database; no check of the pooled connection first, whatever the pause."))

__all__ = ["ConfirmBreaking", "DeclinedChanges", "ProposeTableResult", "propose_table", "replace_plan",
           "spec_has_table"]

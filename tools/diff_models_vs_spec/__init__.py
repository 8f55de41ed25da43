"""diff_models_vs_spec: read the spec, the models and (optionally) the live database, then diff them.

Each side that cannot be read becomes a finding, not a failure, as long as two sides remain to compare.
"""

from __future__ import annotations

import hashlib
import re
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Literal

import anyio
from pydantic import BaseModel, Field

from ..drift import SEVERITIES, DiffResult, Drift, diff_schemas, spec_claims
from ..drift.migration import Migration
from ..drift.proof import ProofReport, keys, prove as prove_fixes
from ..drift.proof_files import FILES_FIELDS, ModelsCopies, count, prove_model_fixes, prove_spec_patches
from ..drift.updated_at import updated_at_advice
from ..models.pins import Pin, datetime_meaning, mapping_caveats, version_mismatches
from ..models.reader import read_models
from ..schema.errors import AgentError, DatabaseUnavailable, PathOutsideProject, unknown_tables
from ..schema.findings import Finding
from ..schema.model import Schema
from ..spec.file import SpecFileError, display_path, read_spec_bytes
from ..spec.reader import parse_spec

Progress = Callable[[float, str], Awaitable[None]]


class SideRead(BaseModel):
    side: str = Field(description="spec, models or database")
    source: str = Field(description="The spec file, the model files, or which database")
    tables: int
    python: str | None = Field(None, description="models: the interpreter that imported them")
    versions: dict[str, str | None] = Field(default_factory=dict, description="models: the Python, SQLAlchemy "
                                            "and SQLModel versions they were read with")


class Stamp(BaseModel):
    """What was compared: enough to tell whether a later run compared the same things."""

    spec_hash: str | None = Field(None, description="Content hash of the spec as read")
    models_hash: str | None = Field(None, description="sha256 of the model files read (paths and contents)")
    models_python: str | None = Field(None, description="The interpreter that imported the models")
    sqlmodel: str | None = Field(None, description="The SQLModel version the models were read with")
    database_version: int | None = Field(None, description="server_version_num of the database compared")
    catalog_hash: str | None = Field(None, description="sha256 of the catalog as read (the Schema model)")


class DiffModelsVsSpecResult(DiffResult):
    """Drift between the spec (source of truth), the SQLModel models and the live database: the drift
    engine's result (tools/drift/model.py), and what the tool adds to it."""

    sides: list[SideRead] = Field(description="What was read for each side")
    findings: list[Finding] = Field(default_factory=list, description="Sides that could not be read fully: "
                                    "import errors, spec parse warnings")
    spec_hash: str | None = Field(None, description="Content hash of the spec as read")
    verdict: Literal["IN_SYNC", "DRIFTED", "UNKNOWN"] = Field(
        "UNKNOWN", description="IN_SYNC: nothing worse than cosmetic; DRIFTED; UNKNOWN: a side could not be read")
    stamp: Stamp = Field(default_factory=Stamp, description="What was compared (hashes, versions)")
    migration: Migration | None = Field(None, description="The database fixes as one re-runnable migration "
                                        "(SQL and an Alembic revision), proven on a copy of the database")
    proof: ProofReport | None = Field(None, description="How the fixes were proven on copies (of the database, "
                                      "the models and the spec), before they were offered")
    report: str = Field(description="The drift as a short readable report")


async def diff_project(
    *, project: Path, spec_path: str | None, models: str | None, include_database: bool,
    tables: list[str] | None, include_managed: bool = False, owner_column: str = "user_id",
    models_timeout: float = 30.0, prove: bool = True,
    database: Callable[[Callable[..., Awaitable]], Awaitable] | None = None,
    database_name: Callable[[], str] | None = None, progress: Progress | None = None, no_database: str | None = None,
) -> DiffModelsVsSpecResult:
    """``database(work)`` runs ``await work(conn)`` on a connection (server/db.py's ``run_read_only``:
    no check before it, so reading the database is one round trip after any pause)."""
    async def step(fraction: float, message: str) -> None:
        if progress is not None:
            await progress(fraction, message)

    sides: dict[str, Schema] = {}
    stamp = Stamp()
    mismatches: list = []
    read: list[SideRead] = []
    findings: list[Finding] = []
    spec_hash = None
    mention = None
    claims: dict[str, str] = {}
    meaning = None  # what the spec's datetime means with the project's SQLModel, when not timestamptz

    await step(0.0, "reading the spec")
    try:
        spec_file, text, spec_hash = await anyio.to_thread.run_sync(read_spec_bytes, project, spec_path, "spec")
        shown = display_path(project, spec_file)
        parsed = parse_spec(text, file=shown)
        sides["spec"] = parsed.schema
        mention = better_auth_mention(text, shown)
        claims = spec_claims(text, shown, {t.name for t in parsed.schema.tables})
        findings += parsed.warnings
        read.append(SideRead(side="spec", source=shown, tables=len(parsed.schema.tables)))
    except SpecFileError as exc:
        if isinstance(exc, PathOutsideProject):
            raise
        findings.append(Finding(rule="spec-unreadable", severity="error",
                                message=f"{exc.problem} Given: {exc.given}." if exc.given else exc.problem,
                                fix=exc.fix or "Pass `spec` with the path of the schema spec."))

    await step(0.25, "importing the models in a child process")
    models_read = await anyio.to_thread.run_sync(
        lambda: read_models(project, models, timeout=models_timeout))
    findings += models_read.findings
    if models_read.files and models_read.schema.tables:
        sides["models"] = models_read.schema
        read.append(SideRead(side="models", source=", ".join(models_read.files), tables=len(models_read.schema.tables),
                             python=display_python(project, models_read.python), versions=models_read.versions))
        if "spec" in sides and (meaning := datetime_meaning(models_read.versions)) != "timestamptz":
            # the spec's SQLModel classes mean what the project's SQLModel makes of them, as the models do
            sides["spec"] = parse_spec(text, file=shown, datetime_type=meaning).schema
        else:
            meaning = None
        mismatches = version_mismatches(project, models_read.versions, near=models_read.files)
        stamp.models_hash = models_hash(project, models_read.files)
        stamp.models_python = display_python(project, models_read.python)
        stamp.sqlmodel = models_read.versions.get("sqlmodel")
        findings += [versions_finding(project, models_read.python, pin, used, bool(mapping_caveats([(pin, used)])))
                     for pin, used in mismatches]

    if include_database:
        if database is None:
            findings.append(Finding(rule="database-unavailable", severity="error",
                                    message=f"The database was not compared: {no_database or 'none is configured.'}",
                                    fix="Set DATABASE_URL, or leave include_database out."))
        else:
            await step(0.5, "reading the live catalog (one statement)")
            from ..database.catalog import read_catalog

            try:
                catalog = await database(read_catalog)
            except DatabaseUnavailable as exc:  # the other sides are still compared
                findings.append(Finding(rule="database-unavailable", severity="error",
                                        message=f"The database was not compared: {exc.problem}", fix=exc.fix))
            else:
                sides["database"] = catalog.schema
                stamp.database_version = catalog.server_version
                stamp.catalog_hash = "sha256:" + hashlib.sha256(
                    catalog.schema.model_dump_json(exclude={"source"}).encode()).hexdigest()
                read.append(SideRead(side="database", source=database_name() if database_name else "database",
                                     tables=len(catalog.schema.tables)))

    if len(sides) < 2:
        have = ", ".join(sides) or "nothing"
        errors = [f for f in findings if f.severity == "error"]
        problems = "; ".join(f.message for f in errors) or "no models were found"
        raise AgentError(
            f"Need two sides to compare, but could read only {have} ({problems})",
            fix="Pass `models` with the path of your SQLModel models, or include_database=true, or fix the "
            "spec path.", rule_id=errors[0].rule if errors else "models-not-found")
    if tables and (missing := [t for t in tables
                               if not any(side.table(t.lower()) for side in sides.values())]):
        raise unknown_tables(missing, {t.name for side in sides.values() for t in side.tables},
                             " or ".join(r.source for r in read), "tables", tables)
    await step(0.75, f"comparing {', '.join(sides)}")
    def diff(s: dict[str, Schema]) -> DiffResult:
        return diff_schemas(s, tables=tables, include_managed=include_managed, owner_column=owner_column,
                            spec_mentions_better_auth=mention, spec_claims=claims)

    result = diff(sides)
    if "models" in sides and mismatches:
        mark_version_dependent(result.drifts, mismatches)
    findings += updated_at_advice({s: sides[s].only(tables) for s in result.compared}, project,
                                  skip=set(result.managed_elsewhere), owner_column=owner_column)
    migration = proof = None
    if prove and any(f.side in ("models", "spec") for d in result.drifts for f in d.fixes):
        await step(0.8, "proving the model changes and spec patches on copies")
        started, baseline = time.monotonic(), keys(result)
        copies = None
        if any(f.side == "models" for d in result.drifts for f in d.fixes):
            copies = ModelsCopies(project, models, models_read.python, models_timeout, models_read.findings)
            await prove_model_fixes(copies, sides, result, diff, baseline)
        if "spec" in sides:
            def reparse(patched: str) -> tuple[Schema, list[str]]:
                again = parse_spec(patched, file=shown, datetime_type=meaning)
                return again.schema, [w.message for w in again.warnings]

            known = [w.message for w in parsed.warnings]  # a parse and a diff per patch: off the event loop
            await anyio.to_thread.run_sync(
                lambda: prove_spec_patches(text, reparse, sides, result, diff, baseline, known))
        proof = count(result, ProofReport(), copies.runs if copies else 0, started)
    if prove and "database" in sides and any(f.side == "database" for d in result.drifts for f in d.fixes):
        await step(0.85, "proving the database fixes on a copy of the database")
        on_copy, migration = await prove_fixes(sides, result, diff)
        proof = on_copy if proof is None else on_copy.model_copy(update=proof.model_dump(include=FILES_FIELDS))
    await step(1.0, "done")
    stamp.spec_hash = spec_hash
    unread = [f for f in findings if f.severity == "error"]
    verdict: Literal["IN_SYNC", "DRIFTED", "UNKNOWN"] = (
        "UNKNOWN" if unread else "IN_SYNC" if result.clean else "DRIFTED")
    return DiffModelsVsSpecResult(
        **dict(result), sides=read, findings=findings, spec_hash=spec_hash, verdict=verdict, stamp=stamp,
        migration=migration, proof=proof,
        report=render_report(result, read) + f"\nVerdict: {verdict}." + proof_lines(proof, migration),
    )


def proof_lines(proof: ProofReport | None, migration: Migration | None) -> str:
    if proof is None:
        return ""
    out = ""
    if proof.models_proven + proof.models_withheld + proof.spec_proven + proof.spec_withheld:
        out += (f"\nProof on copies of the models and the spec: {proof.models_proven} model change(s) proven, "
                f"{proof.models_withheld} withheld; {proof.spec_proven} spec patch(es) proven, "
                f"{proof.spec_withheld} withheld.")
    if proof.server:
        out += f"\nProof on a copy of the database: {proof.proven} fix(es) proven, {proof.withheld} withheld."
    if proof.copy_differs:
        out += " The copy differs on: " + "; ".join(proof.copy_differs) + "."
    if migration is not None:
        out += f"\nMigration ({len(migration.steps)} steps): {migration.proof}."
        out += "".join(f"\n  {line}" for line in migration.called_out)
    return out


def models_hash(project: Path, files: list[str]) -> str:
    """sha256 over the model files read, each as its path and its bytes."""
    h = hashlib.sha256()
    for name in sorted(files):
        h.update(name.encode() + b"\0")
        try:
            h.update((project / name).read_bytes())
        except OSError:
            h.update(b"unreadable")
        h.update(b"\0")
    return "sha256:" + h.hexdigest()


def render_report(result: DiffResult, sides: list[SideRead]) -> str:
    lines = ["Compared " + ", ".join(f"{s.side} ({s.source}, {s.tables} tables)" for s in sides) + "."]
    if not result.drifts:
        lines.append("No drift.")
    for drift in sorted(result.drifts, key=lambda d: (SEVERITIES.index(d.severity), d.object)):
        message = drift.message.removeprefix(f"{drift.object}: ")  # the object is said once, first
        lines.append(f"[{drift.severity}] {drift.object}: {message}"
                     + (f" Caveat: {drift.caveat}" if drift.caveat else ""))
    if result.managed_elsewhere:
        lines.append("Better Auth's (compared only for what our tables depend on, never altered): "
                     + ", ".join(result.managed_elsewhere))
    for names, why in result.better_auth.items():
        lines.append(f"Better Auth? {names}: {why}.")
    # An aspect one side leaves unstated is still compared between the sides that state it: such a drift
    # is listed above (it says who does not state it), so it is not also called "not compared" here.
    kinds = {"type": ("column-type", "column-length", "timestamp-timezone")}
    drifted = {(d.object, d.kind) for d in result.drifts}
    unstated = [u for u in result.unstated
                if not any((u.object, k) in drifted for k in kinds.get(u.aspect, (u.aspect,)))]
    if unstated:
        lines.append("Not stated, so not compared: " + "; ".join(
            f"{u.object} {u.aspect} ({', '.join(f'{s}: {v}' for s, v in u.said.items())})" for u in unstated))
    return "\n".join(lines)


#: Drift kinds whose models side comes from SQLModel's type mapping (datetime -> timestamptz since 0.0.45).
VERSION_DEPENDENT = ("column-type", "column-length", "timestamp-timezone")


def display_python(project: Path, python: str | None) -> str | None:
    """The interpreter that read the models: relative to the project, or "the server's" (never the
    server's own path, which says nothing about the project and differs between machines)."""
    if python is None:
        return None
    if python == sys.executable:
        return "the server's interpreter"
    try:
        return str(Path(python).relative_to(project.resolve()))
    except ValueError:
        return python


def versions_finding(project: Path, python: str | None, pin: Pin, used: str, matters: bool = True) -> Finding:
    where = ("the server's interpreter: no project virtualenv was found" if python == sys.executable
             else "the project's interpreter")
    consequence = ("Type drift on the models side depends on it (SQLModel maps datetime to timestamptz only since "
                   "0.0.45); the drifts it changes are marked with a caveat." if matters else
                   "No type mapping we know of differs between these versions, so no drift depends on it.")
    return Finding(
        rule="models-versions-differ", severity="warning" if matters else "info", object=pin.package,
        message=f"The models were read with {pin.package} {used} ({where}, {python}), but the project pins "
                f"{pin}. {consequence}",
        fix="Create the project's virtualenv with its pinned versions (.venv, e.g. `uv sync` or "
            "`python -m venv .venv && .venv/bin/pip install -r requirements.txt`), or run the server with "
            "VIRTUAL_ENV set to it.",
    )


def mark_version_dependent(drifts: list[Drift], mismatches: list[tuple[Pin, str]]) -> None:
    """A caveat on the type drifts whose models-side type the pinned version maps differently (pins.py)."""
    caveats = mapping_caveats(mismatches)
    for drift in drifts:
        if drift.kind in VERSION_DEPENDENT and (side := drift.sides.get("models")) and side.value in caveats:
            drift.caveat = caveats[side.value]


def better_auth_mention(text: str, file: str) -> str | None:
    """Where the spec first names Better Auth (``file:line``), or None."""
    for number, line in enumerate(text.splitlines(), 1):
        if re.search(r"better[\s-]?auth", line, re.I):
            return f"{file}:{number}"
    return None


#: Round trips to the database for one call, and for the example call of docs/tools/diff_models_vs_spec.md (shown
#: there; tests/test_round_trip_counts.py counts them at a proxy and holds both).
ROUND_TRIPS: tuple[int, str] = (1, (
    "1 with include_database=true (the whole catalog in one statement), none without. The pooled connection is "
    "not checked first, whatever the pause: a dead one is replaced and the read run again."))

__all__ = ["DiffModelsVsSpecResult", "diff_project", "render_report"]

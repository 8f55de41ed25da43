"""Every database fix proven before it is offered, and one migration for the whole drift, proven too.

    the catalog we read ─ copy_ddl ─> a copy on our scratch server (never the user's server or database)
        │ the copy re-read and diffed: drifts the copy does not reproduce cannot be proven there
        ├ per fix: CREATE DATABASE ... TEMPLATE copy, the fix's SQL, the catalog re-read, the same diff:
        │          proven when its drift no longer needs the database and nothing else changed;
        │          withheld (moved to Drift.withheld) with the reason otherwise
        └ the migration of the proven fixes: run, run again (re-runnable), diffed (the database needs no
          more fixes); the way back found by diffing the copy as it was against the upgraded one, run,
          and the three-way diff compared with the one we started from

Nothing here touches the user's database or files: only the catalog already read is used. The model
changes and spec patches are proven the same way on copies of the model files and the spec
(proof_files.py).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from pydantic import BaseModel, ConfigDict, Field

from ..database.catalog import read_catalog
from ..schema.model import Schema
from .migration import (
    Migration,
    build_migration,
    called_out,
    database_fixes,
    lint,
    render_alembic,
    render_sql,
    split_fix_sql,
)
from .model import DiffResult, Drift, Fix
from .scratch import copy_ddl, database_url, scratch_admin_url, scratch_name

Key = tuple[str, str, str]  # (object, kind, a side that needs a fix)


class ProofReport(BaseModel):
    """proven and withheld count the database fixes; models_* and spec_* the model changes and spec
    patches, each tried on a copy of its own side."""

    model_config = ConfigDict(extra="forbid")

    proven: int = Field(0, description="Database fixes proven on a copy of the database")
    withheld: int = Field(0, description="Database fixes withheld (in their drift's withheld, with the reason)")
    models_proven: int = Field(0, description="Model changes proven: applied to a copy of the models, re-read "
                               "with the project's interpreter, the same diff run again")
    models_withheld: int = 0
    spec_proven: int = Field(0, description="Spec patches proven: applied to a copy of the spec, re-read, diffed")
    spec_withheld: int = 0
    models_runs: int = Field(0, description="Times a copy of the models was re-read (one child process each): "
                             "one for all the model changes, one more per change the combined copy could not vouch for")
    files_ms: float = Field(0.0, description="What proving the model changes and spec patches took")
    copy_differs: list[str] = Field(default_factory=list, description="Drifts the copy of the database does "
                                    "not reproduce (or adds): nothing about them could be proven")
    server: str = Field("", description="The scratch server the proof ran on")
    elapsed_ms: float = 0.0


def keys(result: DiffResult) -> set[Key]:
    return {(d.object, d.kind, f.side) for d in result.drifts for f in d.fixes}


def shown_keys(ks: set[Key]) -> str:
    return "; ".join(f"{o} {k} ({s})" for o, k, s in sorted(ks))


async def _run(conn, sql: str) -> None:
    from pglast import parser

    for statement in parser.split(sql):
        await conn.execute(statement, prepare=False)


class Scratch:
    """Clones of one copy of the compared database on the scratch server."""

    def __init__(self, admin: str) -> None:
        self.admin = admin
        self.made: list[str] = []

    async def create(self, label: str, template: str | None = None) -> str:
        import psycopg

        name = scratch_name(label)
        async with await psycopg.AsyncConnection.connect(self.admin, autocommit=True) as conn:
            await conn.execute(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
        self.made.append(name)
        return name

    async def apply(self, name: str, sql: str) -> Schema:
        """Run ``sql`` (statements, BEGIN/COMMIT included) in autocommit, then read the catalog back."""
        import psycopg

        async with await psycopg.AsyncConnection.connect(database_url(self.admin, name), autocommit=True) as conn:
            if sql:
                await _run(conn, sql)
            return (await read_catalog(conn)).schema

    async def drop_all(self) -> None:
        import psycopg

        async with await psycopg.AsyncConnection.connect(self.admin, autocommit=True) as conn:
            for name in self.made:
                await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self.made.clear()


async def prove(sides: dict[str, Schema], result: DiffResult, diff: Callable[[dict[str, Schema]], DiffResult],
                *, admin_url: str | None = None) -> tuple[ProofReport, Migration | None]:
    """Prove each database fix of ``result`` on a copy of ``sides["database"]`` (see the module doc); mark
    each fix ``proven`` or move it to its drift's ``withheld``. Returns the report and the migration."""
    import anyio

    started = time.monotonic()
    admin: str = admin_url if admin_url is not None else await anyio.to_thread.run_sync(scratch_admin_url)
    scratch = Scratch(admin)
    report = ProofReport(server="scratch PostgreSQL (embedded, ours)")
    try:
        base = await scratch.create("copy")
        copy = await scratch.apply(base, ";\n".join(s.rstrip(";") for s in copy_ddl(sides["database"])))
        copied = {**sides, "database": copy}
        baseline = keys(diff(copied))
        original = keys(result)
        report.copy_differs = sorted(f"{o} {k} ({s})" for o, k, s in (original ^ baseline) if s == "database")
        for drift, fix in [(d, f) for d in result.drifts for f in d.fixes if f.side == "database"]:
            target = (drift.object, drift.kind, "database")
            if not fix.migration_sql:
                withhold(drift, fix, "it has no SQL to run")
            elif target not in baseline:
                withhold(drift, fix, "the copy of the database built from the catalog does not show this drift")
            else:
                await _prove_one(scratch, base, copied, diff, baseline, drift, fix, target)
        for d in result.drifts:
            report.proven += sum(f.proof == "proven" for f in d.fixes)
            report.withheld += sum(f.side == "database" for f in d.withheld)
        migration = await _prove_migration(scratch, base, copied, diff, baseline, result)
    finally:
        await scratch.drop_all()
    report.elapsed_ms = round((time.monotonic() - started) * 1000, 1)
    return report, migration


def withhold(drift: Drift, fix: Fix, reason: str) -> None:
    fix.proof, fix.proof_note = "withheld", reason
    drift.fixes.remove(fix)
    drift.withheld.append(fix)


async def _prove_one(scratch: Scratch, base: str, copied: dict[str, Schema], diff, baseline: set[Key],
                     drift: Drift, fix: Fix, target: Key) -> None:
    import psycopg

    statements, _ = split_fix_sql(fix.migration_sql)
    name = await scratch.create("fix", template=base)
    try:
        fixed = await scratch.apply(name, ";\n".join(statements))
    except psycopg.Error as exc:
        withhold(drift, fix, f"it failed on the copy: {str(exc).strip().splitlines()[0]}")
        return
    after = keys(diff({**copied, "database": fixed}))
    if target in after:
        withhold(drift, fix, "the drift still needs the database after it ran on the copy")
        return
    new = after - baseline
    if new:
        withhold(drift, fix, f"it changes something else on the copy: {shown_keys(new)}")
        return
    also = {k for k in baseline - after if k[2] == "database" and k != target}
    fix.proof = "proven"
    fix.proof_note = "ran on a copy of the database: the drift is gone and nothing else changed" + (
        f"; it also fixes {shown_keys(also)}" if also else "")


async def _prove_migration(scratch: Scratch, base: str, copied: dict[str, Schema], diff, baseline: set[Key],
                           result: DiffResult) -> Migration | None:
    import psycopg

    fixes = [(d, f) for d, f in database_fixes(result.drifts) if f.proof == "proven"]
    if not fixes:
        return None
    steps = build_migration(fixes, [s for s in copied.values()])
    sql = render_sql(steps)
    name = await scratch.create("migration", template=base)
    notes = []
    down_steps = None
    down_sql = None
    try:
        upgraded = await scratch.apply(name, sql)
        again = await scratch.apply(name, sql)  # re-runnable: a second run completes and changes nothing
        after = keys(diff({**copied, "database": upgraded}))
        left = {k for k in after if k[2] == "database"} & {(d.object, d.kind, "database") for d, _ in fixes}
        new = after - baseline
        notes.append("upgrade on the copy: " + ("the database needs no more fixes" if not left
                                                 else f"still needed: {shown_keys(left)}")
                     + ("" if not new else f"; new: {shown_keys(new)}"))
        if again != upgraded:
            notes.append("a second run changed the schema again")
        back = diff({"spec": copied["database"], "database": upgraded})
        back_drifts = [d for d in back.drifts if d.kind != "updated-at-not-maintained"]  # no trigger to restore
        down_steps = build_migration(database_fixes(back_drifts), [upgraded, copied["database"]])
        down_sql = render_sql(down_steps, "the way back")
        downgraded = await scratch.apply(name, down_sql)
        remaining = keys(diff({**copied, "database": downgraded})) ^ baseline
        notes.append("downgrade on the copy: " + ("the diff equals the one we started from" if not remaining
                                                   else f"differs from the start: {shown_keys(remaining)}"))
    except psycopg.Error as exc:
        notes.append(f"it failed on the copy: {str(exc).strip().splitlines()[0]}")
    linted = lint(sql)
    return Migration(steps=steps, sql=sql, alembic=render_alembic(steps, down_steps), downgrade_sql=down_sql,
                     called_out=called_out(steps), proof="; ".join(notes),
                     lint=linted[0] if linted else {}, lint_remaining=linted[1] if linted else {})

"""The explain_indexes tool as an agent calls it: its arguments, its policy under identity binding, what it
says about itself, its result's shape."""

from __future__ import annotations

from typing import Annotated, Literal

import anyio
from pydantic import Field

from ..schema.call import READ_ONLY, Hints, ToolCall, ToolSettings, ToolSpec
from ..schema.errors import AgentError, DatabaseUnavailable
from ..schema.shape import Shape, itself, note_prefix, table_field, table_of_object
from ..spec.current import read_spec_schema
from . import ExplainIndexesResult, explain_indexes as explain


async def explain_indexes(
    call: ToolCall,
    table: Annotated[str | None, Field(description="Only this table (default: every table)")] = None,
    queries: Annotated[list[str] | None, Field(
        description="SQL the app runs ($1.. allowed); default: the spec's query patterns and the "
        "conventions' usual ones")] = None,
    source: Annotated[Literal["spec", "database", "both"] | None, Field(
        description="Where indexes come from (default: both if a database is reachable)")] = None,
    hypothetical: Annotated[bool, Field(description="Check recommendations (hypopg)")] = True,
    build: Annotated[bool, Field(description="No hypopg: build on the database, rolled back (blocks writes), "
                                 "not on a copy")] = False,
) -> ExplainIndexesResult:
    """Explain every index (what it serves, where declared, size, scans) with EXPLAIN evidence per query
    pattern. Finds unindexed FKs, duplicate, redundant, unused and invalid indexes and spec/database
    disagreement; recommends CREATE INDEX CONCURRENTLY with the planner's cost before and after.
    """
    settings = call.settings
    bound = bool(settings.jwt_jwks_url)  # identity binding: callers see their own rows only
    if bound and source in ("database", "both"):
        raise AgentError("explain_indexes reads the spec only here: with identity binding on, callers are "
                         "bound to their own rows, and the database's index evidence (row counts, scans, "
                         "estimates) is made of every user's rows.", given=f"source={source!r}",
                         fix="Pass source='spec' or leave it out.", rule_id="identity-spec-only")

    async def progress(message: str) -> None:
        await call.progress(0, None, message)

    spec, problem = await anyio.to_thread.run_sync(read_spec_schema, settings.project, settings.spec_path)
    db = call.direct_db  # a hypothetical index build holds locks: keep it off the pooler if we can
    skipped = None
    if source != "spec" and not bound:
        skipped = await call.database_skipped(db, problem)
        if skipped is None:
            try:
                # Everything it runs is rolled back: no check before it, rerun on a new connection
                # if the pooled one turns out dead (server/db.py), so a pause costs no round trip.
                result = await db.run_read_only(lambda conn: explain(
                    spec=spec, conn=conn, table=table, queries=queries, source=source,
                    hypothetical=hypothetical, owner_column=settings.owner_column, progress=progress,
                    build=build or db.is_embedded))
                result.database = db.describe()
                if problem is not None:  # said once, as every skipped side is
                    result.notes.insert(0, f"[{problem.rule}] The database's indexes alone were "
                                           f"explained, without the spec: {problem.problem}")
                return result
            except DatabaseUnavailable as exc:
                if source is not None:
                    raise  # the call asked for the database: say why there is none
                skipped = exc
        elif source is not None:
            raise skipped
    if spec is None and problem is not None:
        raise problem
    result = await explain(spec=spec, conn=None, table=table, queries=queries, source=source,
                           hypothetical=hypothetical, owner_column=settings.owner_column, progress=progress)
    if skipped is not None:
        result.notes.insert(0, f"[{skipped.rule}] The spec alone was explained, without the database: "
                               f"{skipped.problem}")
    return result


def hints(settings: ToolSettings) -> Hints:
    """Without hypopg, build=true checks a candidate by building it in a rolled-back transaction (a SHARE
    lock): not read-only on a database of the user's. On the embedded scratch copy it is the default."""
    can_build = settings.database_url is not None or settings.direct_database_url is not None
    return Hints(read_only=False, destructive=False, idempotent=True) if can_build else READ_ONLY


TOOL = ToolSpec(
    explain_indexes, title="Explain indexes", hints=hints, result=ExplainIndexesResult, paged=True,
    touches_database=True,
    shape=Shape(
        # the plans themselves: each evidence's verdict says what the planner chose and at what cost
        summary_omits={"evidence": frozenset({"location", "chosen", "forced", "planned_how"})},
        per_table={"tables": itself, "indexes": table_field, "problems": table_of_object,
                   "recommendations": table_field, "evidence": table_field, "notes": note_prefix}),
)

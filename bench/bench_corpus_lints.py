"""Lint findings, reader warnings and spec conflicts over every spec in the shared corpus, by rule id.

Fewer is not always better (a real fault must still be reported), but most of what the corpus yields
comes from misreading the spec; this counts it so a reader change can be compared before and after.
Prints figures; no pass/fail.

Usage: python bench/bench_corpus_lints.py [--corpus /work/shared/corpus] [--json]
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

from schema_architect.tools.spec.lint import lint_schema
from schema_architect.tools.spec.reader import parse_spec


def count(corpus: Path) -> dict[str, Counter]:
    totals = {"lint": Counter(), "warnings": Counter(), "conflicts": Counter(), "shape": Counter()}
    for spec in sorted(corpus.rglob("*.md")):
        parsed = parse_spec(spec.read_text(encoding="utf-8"), file=str(spec.relative_to(corpus)))
        totals["shape"]["specs"] += 1
        totals["shape"]["tables"] += len(parsed.schema.tables)
        totals["shape"]["columns"] += sum(len(t.columns) for t in parsed.schema.tables)
        totals["shape"]["foreign_keys"] += sum(len(t.foreign_keys) for t in parsed.schema.tables)
        totals["shape"]["indexes"] += sum(len(t.indexes) for t in parsed.schema.tables)
        totals["lint"].update(f.rule for f in lint_schema(parsed.schema))
        totals["warnings"].update(w.rule for w in parsed.warnings)
        totals["conflicts"].update(c.aspect for c in parsed.conflicts)
    return totals


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--corpus", type=Path, default=Path("/work/shared/corpus"))
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    args = parser.parse_args()
    totals = count(args.corpus)
    if args.json:
        print(json.dumps({k: dict(sorted(v.items())) for k, v in totals.items()}, indent=1))
        return
    for kind, counter in totals.items():
        total = "" if kind == "shape" else f" (total {sum(counter.values())})"
        print(f"{kind}{total}:")
        for rule, n in sorted(counter.items(), key=lambda kv: (-kv[1], kv[0])):
            print(f"  {n:5d}  {rule}")


if __name__ == "__main__":
    main()

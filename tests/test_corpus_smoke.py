"""Every real spec in the shared corpus parses without raising, and nearly all yield tables."""

from __future__ import annotations

from schema_architect.tools.spec.reader import parse_spec

from conftest import SHARED, require, shared_missing

CORPUS = SHARED / "corpus"


def test_every_corpus_spec_parses_and_most_yield_tables():
    require(shared_missing("corpus"))
    folders = sorted(p for p in CORPUS.iterdir() if p.is_dir())
    assert len(folders) == 40
    with_tables = 0
    for folder in folders:
        found_tables = False
        for spec in sorted(folder.rglob("*.md")):
            parsed = parse_spec(spec.read_text(encoding="utf-8"), file=str(spec.relative_to(CORPUS)))
            assert all(w.rule != "spec-reader-error" for w in parsed.warnings), (spec, parsed.warnings)
            for table in parsed.schema.tables:
                assert table.location and table.location.line, (spec, table.name)
                assert all(c.location and c.location.line for c in table.columns), (spec, table.name)
            found_tables = found_tables or bool(parsed.schema.tables)
        with_tables += found_tables
    assert with_tables >= 35, with_tables

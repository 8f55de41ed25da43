"""The spec reader against hand-read expectations for real specs from the corpus.

``tests/corpus_expectations.json`` was written by reading each spec file by hand (never from the
reader's output); this test only compares. For every spec it checks that each expected table is found,
each expected column is present with an acceptable canonical type and, where the expectation gives
them, the expected primary-key and NOT NULL flags, and that tables/columns listed as absent are not
found. Tables and columns the reader finds beyond the expectations are allowed.

A failure lists every difference as ``table.column: what: expected ..., got ...`` so the reader's
author can fix the reader (or argue with the expectation).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from conftest import require

EXPECTATIONS_FILE = Path(__file__).resolve().parent / "corpus_expectations.json"
CORPUS = Path(
    os.environ.get(
        "SCHEMA_ARCHITECT_CORPUS", Path(__file__).resolve().parents[1].parent / "shared" / "corpus"
    )
)

EXPECTATIONS: dict[str, Any] = json.loads(EXPECTATIONS_FILE.read_text(encoding="utf-8"))
SPECS: list[dict[str, Any]] = EXPECTATIONS["specs"]


def _parse_spec():
    """The reader under test; a missing or broken reader is a failure, not a skip."""
    try:
        from schema_architect.tools.spec.reader import parse_spec
    except Exception as exc:  # ImportError, or a SyntaxError inside the reader
        error = f"{type(exc).__name__}: {exc}"
    else:
        return parse_spec
    pytest.fail(
        "cannot import parse_spec from schema_architect.tools.spec.reader "
        f"(tools/spec/reader/): {error}",
        pytrace=False,
    )


def _acceptable(expected: str | list[str]) -> list[str]:
    return [expected] if isinstance(expected, str) else list(expected)


def _show(values: list[str]) -> str:
    return repr(values[0]) if len(values) == 1 else f"one of {values!r}"


def _case_hint(names: list[str], wanted: str) -> str:
    """A note for the message when a name matches ``wanted`` but for case, else an empty string."""
    hint = next((n for n in names if n.lower() == wanted.lower()), None)
    return f" (found {hint!r}: case differs)" if hint else ""


def compare(schema: Any, spec: dict[str, Any]) -> list[str]:
    """Every difference between the parsed schema and the expectation, one line each."""
    problems: list[str] = []
    found_tables = [t.name for t in schema.tables]

    for table_name, table_exp in spec["tables"].items():
        table = schema.table(table_name)
        if table is None:
            problems.append(
                f"table {table_name!r}: expected to be found, got no such table{_case_hint(found_tables, table_name)}; "
                f"tables found: {found_tables}"
            )
            continue
        found_columns = [c.name for c in table.columns]
        pk_names = set(table.primary_key)

        for col_name, col_exp in table_exp["columns"].items():
            where = f"{table_name}.{col_name}"
            column = table.column(col_name)
            if column is None:
                problems.append(
                    f"{where}: expected column, got no such column{_case_hint(found_columns, col_name)}; "
                    f"columns found in {table_name}: {found_columns}"
                )
                continue
            if "type" in col_exp:
                ok = _acceptable(col_exp["type"])
                if column.type not in ok:
                    problems.append(f"{where}: type: expected {_show(ok)}, got {column.type!r}")
            if "pk" in col_exp:
                is_pk = bool(column.primary_key or col_name in pk_names)
                if is_pk != col_exp["pk"]:
                    problems.append(
                        f"{where}: primary key: expected {col_exp['pk']}, got {is_pk} "
                        f"(column.primary_key={column.primary_key}, table.primary_key={table.primary_key})"
                    )
            if "not_null" in col_exp:
                not_null = not column.nullable
                if not_null != col_exp["not_null"]:
                    problems.append(
                        f"{where}: NOT NULL: expected {col_exp['not_null']}, got {not_null} "
                        f"(nullable={column.nullable})"
                    )

        for col_name in table_exp.get("absent_columns", []):
            if table.column(col_name) is not None:
                problems.append(
                    f"{table_name}.{col_name}: expected NOT to be a column (not defined by the spec), "
                    f"got a column of type {table.column(col_name).type!r}"
                )

    for table_name in spec.get("absent_tables", []):
        if schema.table(table_name) is not None:
            problems.append(
                f"table {table_name!r}: expected NOT to be found (not part of the spec's schema), "
                f"got a table with columns {[c.name for c in schema.table(table_name).columns]}"
            )
    return problems


def test_expectations_file_is_well_formed() -> None:
    """The expectations themselves: enough specs, unique ids, real files, known keys."""
    assert len(SPECS) >= 14
    folders = [s["folder"] for s in SPECS]
    assert len(folders) == len(set(folders)), "duplicate spec folders"
    column_keys = {"type", "pk", "not_null", "note"}
    for spec in SPECS:
        assert spec["path"].startswith(spec["folder"] + "/"), spec["path"]
        assert spec["family"] and spec["tables"], spec["folder"]
        for table_name, table_exp in spec["tables"].items():
            assert table_name == table_name.lower(), f"{spec['folder']}: table {table_name} not lower case"
            assert set(table_exp) <= {"columns", "note", "absent_columns"}, (spec["folder"], table_name)
            for col_name, col_exp in table_exp["columns"].items():
                assert set(col_exp) <= column_keys, (spec["folder"], table_name, col_name)
                if "type" in col_exp:
                    assert isinstance(col_exp["type"], (str, list)) and col_exp["type"]
                if col_exp.get("pk"):
                    assert col_exp.get("not_null") is True, "a primary key column is NOT NULL"
        assert not set(spec.get("absent_tables", [])) & set(spec["tables"]), spec["folder"]


@pytest.mark.parametrize("spec", SPECS, ids=[s["folder"] for s in SPECS])
def test_reader_matches_hand_read_spec(spec: dict[str, Any]) -> None:
    path = CORPUS / spec["path"]
    # CI always has ../shared beside the clone: a missing corpus is a broken setup there, a skip elsewhere.
    if not CORPUS.is_dir():
        require(f"needs the spec corpus at {CORPUS}: it lives beside the project in ../shared "
                "(or set SCHEMA_ARCHITECT_CORPUS)")
    assert path.is_file(), f"spec file missing from the corpus: {path}"
    parse_spec = _parse_spec()
    text = path.read_text(encoding="utf-8")
    parsed = parse_spec(text, file=spec["path"])
    problems = compare(parsed.schema, spec)
    if problems:
        pytest.fail(
            f"{spec['path']} ({spec['family']}): {len(problems)} difference(s) from the hand-read "
            "expectation:\n  " + "\n  ".join(problems),
            pytrace=False,
        )

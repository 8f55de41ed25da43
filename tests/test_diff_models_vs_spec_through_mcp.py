"""diff_models_vs_spec as an agent calls it, over an MCP client session.

What the drift engine's direct tests (tests/test_diff.py) and the tool contract
(docs/tools/diff_models_vs_spec.md) promise beyond the drift kinds tests/test_drift_kinds.py covers: the
spec and models arguments in each documented form, the tables filter, the verdict and summary, the
hashes of what was compared, spec warnings as findings, a table on one side only, and the annotations.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from pathlib import Path

import pytest
from mcp import Client
from through_mcp import assert_annotations_as_its_page_states, listed_tool

from schema_architect.server.app import create_server
from schema_architect.server.settings import Settings

from conftest import REPO

pytestmark = pytest.mark.anyio

REFERENCE_SPEC = (REPO / "specs" / "database" / "schema.md").read_text(encoding="utf-8")
REFERENCE_MODELS = (REPO / "specs" / "database" / "models.py").read_text(encoding="utf-8")

# Two drifts a developer makes: shorter strings in two tables.
SHORTER = (("title: str = Field(max_length=200)", "title: str = Field(max_length=100)"),
           ("name: str = Field(max_length=50)", "name: str = Field(max_length=40)"))

# A table only the spec has, with a foreign key whose target it does not name.
NOTES = """
## Table: notes

| Column | Type | Constraints |
|---|---|---|
| id | serial | PRIMARY KEY |
| owner | TEXT | FOREIGN KEY |
"""


def models_with(*edits: tuple[str, str]) -> str:
    text = REFERENCE_MODELS
    for old, new in edits:
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    return text


def make_project(root: Path, *, spec_at: str = "specs/database/schema.md", spec: str = REFERENCE_SPEC,
                 models_at: str = "backend/models.py", models: str = REFERENCE_MODELS) -> Path:
    for where, text in ((spec_at, spec), (models_at, models)):
        (root / where).parent.mkdir(parents=True, exist_ok=True)
        (root / where).write_text(text, encoding="utf-8")
    return root


async def diffs(project: Path, *arguments: dict) -> list[dict]:
    """One call per arguments, in one client session (one server: the models are imported once)."""
    results = []
    async with Client(create_server(Settings(project=project, embedded=False))) as client:
        for args in arguments:
            result = await client.call_tool("diff_models_vs_spec", args)
            assert not result.is_error, result.content
            results.append(result.structured_content)
    return results


async def diff(project: Path, arguments: dict | None = None) -> dict:
    [data] = await diffs(project, arguments or {})
    return data


def objects_and_kinds(data: dict) -> list[tuple[str, str]]:
    return [(d["object"], d["kind"]) for d in data["drifts"]]


async def test_the_spec_and_models_can_be_named_as_a_file_a_module_or_a_folder(tmp_path: Path) -> None:
    project = make_project(tmp_path, spec_at="docs/db/schema.md", models_at="app/models.py",
                           models=models_with(*SHORTER))
    (project / "app" / "__init__.py").write_text("")
    expected = [("tags.name", "column-length"), ("tasks.title", "column-length")]
    forms = (("app/models.py", "app/models.py"), ("app.models", "app/models.py"),
             ("app", "app/__init__.py, app/models.py"))
    results = await diffs(project, *({"spec": "docs/db/schema.md", "models": models} for models, _ in forms))
    for (models, source), data in zip(forms, results, strict=True):
        assert objects_and_kinds(data) == expected, (models, data["drifts"])
        assert [(s["side"], s["source"]) for s in data["sides"]] == [("spec", "docs/db/schema.md"),
                                                                     ("models", source)], models
        spec_side = next(d for d in data["drifts"] if d["object"] == "tasks.title")["sides"]["spec"]
        assert spec_side["value"].startswith("varchar(200)")


async def test_tables_limits_the_diff_to_those_tables(tmp_path: Path) -> None:
    project = make_project(tmp_path, models=models_with(*SHORTER))
    everything, only_tags = await diffs(project, {}, {"tables": ["tags"]})
    assert {d["object"] for d in everything["drifts"]} == {"tags.name", "tasks.title"}
    assert objects_and_kinds(only_tags) == [("tags.name", "column-length")]
    assert only_tags["summary"]["degraded"] == 1


async def test_verdict_summary_and_hashes_say_what_was_compared(tmp_path: Path) -> None:
    drifted = await diff(make_project(tmp_path / "drifted", models=models_with(*SHORTER)), {"detail": "full"})
    assert drifted["verdict"] == "DRIFTED" and drifted["clean"] is False
    assert drifted["summary"] == {"breaking": 0, "data-loss-risk": 0, "cosmetic": 0, "info": 0,
                                  **Counter(d["severity"] for d in drifted["drifts"])}
    assert drifted["reference"] == "spec" and drifted["compared"] == ["spec", "models"]
    spec_bytes = (tmp_path / "drifted" / "specs/database/schema.md").read_bytes()
    assert drifted["spec_hash"] == "sha256:" + hashlib.sha256(spec_bytes).hexdigest()
    assert drifted["stamp"]["spec_hash"] == drifted["spec_hash"]
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", drifted["stamp"]["models_hash"])
    assert "tasks.title" in drifted["report"]  # full detail: the readable report too

    clean = await diff(make_project(tmp_path / "clean"))
    assert clean["verdict"] == "IN_SYNC" and clean["clean"] is True and clean["drifts"] == []
    assert set(clean["summary"].values()) == {0}
    assert clean["stamp"]["models_hash"] != drifted["stamp"]["models_hash"]
    assert "report" not in clean  # summary detail leaves the report out


async def test_spec_warnings_are_findings_and_a_spec_only_table_is_breaking(tmp_path: Path) -> None:
    data = await diff(make_project(tmp_path, spec=REFERENCE_SPEC + NOTES), {"detail": "full"})
    [warning] = [f for f in data["findings"] if f["object"] == "notes.owner"]
    assert warning["rule"] == "spec-unknown-fk-target" and warning["location"]["line"] > 0
    assert "Name the target" in warning["fix"]
    [missing] = [d for d in data["drifts"] if d["object"] == "notes"]
    assert (missing["kind"], missing["severity"]) == ("missing-table", "breaking")
    model_fix = next(f for f in missing["fixes"] if f["side"] == "models")
    assert "class Note" in model_fix["model_change"] and "table=True" in model_fix["model_change"]
    assert data["verdict"] == "DRIFTED"


async def test_listed_with_the_annotations_its_page_states(tmp_path: Path) -> None:
    tool = await listed_tool(Settings(project=make_project(tmp_path), embedded=False), "diff_models_vs_spec")
    assert_annotations_as_its_page_states(tool)
    assert set(tool.input_schema["properties"]) == {"spec", "models", "include_database", "tables",
                                                    "include_managed", "detail", "cursor"}

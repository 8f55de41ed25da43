"""diff_models_vs_spec through MCP and `schema-architect check`, on the reference spec and real drift."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import psycopg
import pytest
from mcp import Client

from schema_architect.server.app import create_server
from schema_architect.server.cli import run
from schema_architect.server.settings import Settings
from schema_architect.tools.database.ddl import schema_ddl
from schema_architect.tools.spec.reader import parse_spec

from conftest import REPO

pytestmark = pytest.mark.anyio

REFERENCE_MODELS = REPO / "specs" / "database" / "models.py"


def make_project(tmp_path: Path, models_text: str | None = None) -> Path:
    """A user project holding the reference spec and a models file (the reference one by default)."""
    spec = tmp_path / "specs" / "database" / "schema.md"
    spec.parent.mkdir(parents=True)
    shutil.copy(REPO / "specs" / "database" / "schema.md", spec)
    backend = tmp_path / "backend"
    backend.mkdir()
    (backend / "models.py").write_text(models_text or REFERENCE_MODELS.read_text())
    return tmp_path


async def call(settings: Settings, arguments: dict | None = None, progress: list | None = None):
    async def on_progress(value, total, message):
        progress.append((value, message))

    async with Client(create_server(settings)) as client:
        return await client.call_tool("diff_models_vs_spec", arguments or {},
                                      progress_callback=on_progress if progress is not None else None)


async def test_reference_spec_and_models_agree(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    result = await call(Settings(project=project, embedded=False))
    assert not result.is_error, result.content
    data = result.structured_content
    assert data["drifts"] == [], data["report"]
    assert data["clean"] is True
    assert data["managed_elsewhere"] == ["users"]
    assert [s["side"] for s in data["sides"]] == ["spec", "models"]
    assert data["sides"][1]["source"] == "backend/models.py"


async def test_three_way_against_a_database_built_from_the_spec(tmp_path: Path, make_database) -> None:
    url = make_database("diff_three_way")
    spec = parse_spec((REPO / "specs/database/schema.md").read_text()).schema
    with psycopg.connect(url, autocommit=True) as conn:
        for statement in schema_ddl(spec):
            conn.execute(statement)
    progress: list = []
    result = await call(Settings(project=make_project(tmp_path), database_url=url),
                        {"include_database": True}, progress)
    data = result.structured_content
    assert not result.is_error, result.content
    assert data["drifts"] == [], data["report"]
    assert [s["side"] for s in data["sides"]] == ["spec", "models", "database"]
    assert "/diff_three_way_" in data["sides"][2]["source"]
    assert progress and progress[-1][0] == 1.0


async def test_a_drifted_model_is_reported_with_fixes(tmp_path: Path) -> None:
    drifted = REFERENCE_MODELS.read_text().replace(
        'title: str = Field(max_length=200)', 'title: str = Field(max_length=100)')
    assert drifted != REFERENCE_MODELS.read_text()
    result = await call(Settings(project=make_project(tmp_path, drifted), embedded=False))
    data = result.structured_content
    [drift] = [d for d in data["drifts"] if d["object"] == "tasks.title"]
    assert drift["kind"] == "column-length"
    assert drift["sides"]["spec"]["value"].startswith("varchar(200)")
    assert drift["sides"]["models"]["location"]["file"] == "backend/models.py"
    fix = next(f for f in drift["fixes"] if f["side"] == "models")
    assert "max_length=200" in fix["model_change"]
    assert data["clean"] is False


async def test_a_broken_models_module_is_a_finding_not_a_crash(tmp_path: Path) -> None:
    project = make_project(tmp_path, "raise RuntimeError('boom at import')\n")
    result = await call(Settings(project=project, embedded=False))
    assert result.is_error
    text = result.content[0].text
    assert "Need two sides" in text and "boom at import" in text


def cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    return run(list(argv), out, err), out.getvalue(), err.getvalue()


def test_check_says_no_drift_on_this_repository() -> None:
    code, out, err = cli("--project", str(REPO), "check", "--models", "specs/database/models.py")
    assert code == 0, out + err
    assert "No drift." in out


def test_check_exits_1_on_drift_and_speaks_json(tmp_path: Path) -> None:
    without_title = REFERENCE_MODELS.read_text().replace("    title: str = Field(max_length=200)\n", "", 1)
    project = make_project(tmp_path, without_title)
    code, out, _ = cli("--project", str(project), "check")
    assert code == 1
    assert "tasks.title" in out and "at or above degraded" in out
    code, out, _ = cli("--project", str(project), "check", "--format", "json", "--fail-on", "cosmetic")
    assert code == 1
    drift = next(d for d in json.loads(out)["drifts"] if d["object"] == "tasks.title")
    assert drift["kind"] == "missing-column"
